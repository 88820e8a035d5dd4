"""Tokens end to end: made with the CLI, required by the running server, honoured
by the CLI through GANTRY_TOKEN, revoked within seconds."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.acceptance.server import GANTRY, ServerProcess, clean_env


def gantry(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GANTRY, *args], capture_output=True, text=True, timeout=60, env=clean_env(**env)
    )


def test_tokens_made_and_revoked_with_the_cli_gate_the_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        data = str(server.data_dir)
        made = gantry("token", "create", "ci", "--scope", "submit", "--data-dir", data)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert token.startswith("gty_")
        time.sleep(2.5)  # the server re-reads tokens every 2 s
        refused = gantry("list", GANTRY_URL=server.url)
        assert refused.returncode == 1
        assert "requires an API token" in refused.stderr and "GANTRY_TOKEN" in refused.stderr
        allowed = gantry("submit", "--", "true", GANTRY_URL=server.url, GANTRY_TOKEN=token)
        assert allowed.returncode == 0, allowed.stderr
        listed = gantry("token", "list", "--data-dir", data)
        assert "ci" in listed.stdout and token not in listed.stdout
        assert gantry("token", "revoke", "1", "--data-dir", data).returncode == 0
        time.sleep(2.5)
        revoked = gantry("list", GANTRY_URL=server.url, GANTRY_TOKEN=token)
        assert revoked.returncode == 1 and "unknown or revoked" in revoked.stderr
    finally:
        server.stop()


def test_serve_on_a_public_address_refuses_without_tokens(tmp_path: Path) -> None:
    result = gantry(
        "serve", "--host", "0.0.0.0", "--port", "1", "--data-dir", str(tmp_path / "var")
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API tokens" in result.stderr
