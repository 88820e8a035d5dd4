# gantry server image.
# BASE may be python:3.11-slim (the default) or any Debian-like image with
# python3 >= 3.11, python3-venv, bash and apt (tests pass a local debootstrap
# base). docs/container.md: building, running, SIGTERM, the data volume.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GANTRY_DATA_DIR=/var/lib/gantry \
    GANTRY_HOST=0.0.0.0 \
    GANTRY_PORT=8000 \
    PATH=/opt/venv/bin:$PATH

# tini as PID 1 reaps what jobs leave behind: a job's background process that
# outlives it goes to PID 1, and gantry reaps only its own children.
RUN apt-get -qq update \
 && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid, so a bind-mounted data dir can be given to it (chown 10001).
# --no-log-init: no huge sparse /var/log/lastlog for a high uid.
ARG GANTRY_UID=10001
RUN useradd --uid "$GANTRY_UID" --user-group --no-log-init --no-create-home \
      --home-dir /var/lib/gantry --shell /usr/sbin/nologin gantry \
 && mkdir -p /var/lib/gantry && chown gantry:gantry /var/lib/gantry

WORKDIR /opt/gantry
# Dependencies first, from pyproject.toml alone, so editing the code does not
# reinstall them.
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv \
 && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --quiet -r requirements.txt
COPY README.md ./
COPY app app
COPY backends backends
COPY drivers drivers
COPY alembic alembic
# A plain (not editable) install: the wheel carries the migrations as
# gantry/migrations, so the source can go.
RUN /opt/venv/bin/pip install --no-cache-dir --quiet --no-deps . \
 && cd / && rm -rf /opt/gantry

WORKDIR /var/lib/gantry
USER gantry
VOLUME ["/var/lib/gantry"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('GANTRY_PORT', '8000')}/healthz\", timeout=2)"]
# tini passes SIGTERM on to gantry; uvicorn shuts down gracefully and then
# re-raises it, so gantry ends by SIGTERM: -e 143 makes that exit 0.
ENTRYPOINT ["tini", "-e", "143", "--"]
CMD ["gantry", "serve"]
