# gantry server image.
# BASE may be python:3.11-slim (the default) or any Debian-like image with
# python3 >= 3.11, python3-venv and bash (tests pass a local debootstrap base).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GANTRY_DATA_DIR=/var/lib/gantry \
    GANTRY_HOST=0.0.0.0 \
    GANTRY_PORT=8000 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /opt/gantry
# Dependencies first, so editing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN python3 -m venv /opt/venv \
 && mkdir -p app backends drivers \
 && touch app/__init__.py backends/__init__.py drivers/__init__.py \
 && /opt/venv/bin/pip install --no-cache-dir --quiet . \
 && /opt/venv/bin/pip uninstall --yes --quiet gantry \
 && rm -rf app backends drivers build *.egg-info
COPY app app
COPY backends backends
COPY drivers drivers
COPY alembic alembic
# Editable, so the alembic/ migrations next to app/ are found at run time.
RUN /opt/venv/bin/pip install --no-cache-dir --quiet --no-deps -e . \
 && useradd --system --create-home --home-dir /var/lib/gantry gantry \
 && mkdir -p /var/lib/gantry && chown gantry /var/lib/gantry

USER gantry
VOLUME ["/var/lib/gantry"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('GANTRY_PORT', '8000')}/healthz\", timeout=2)"]
# uvicorn handles SIGTERM itself (graceful shutdown), also as PID 1.
CMD ["gantry", "serve"]
