"""gunicorn's own error log never repeats a client's request line, URI or address.

A real gunicorn with the project's gunicorn.conf.py (its RedactingLogger) gets a
malformed request line that carries a marker subject id; the log says a request was
refused, and the marker appears nowhere in it. The logger is also checked directly
for the "Error handling request" line gunicorn writes when a worker fails mid-request.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gunicorn.config import Config

from gateway.serving import RedactingLogger

ROOT = Path(__file__).resolve().parents[2]

MARKER = "subject-marker-7f3a91"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(app_config, tmp_path):
    """gunicorn as `make run` starts it (gunicorn.conf.py), on the test's database."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GUNICORN_"))}
    env.update({k: str(v) for k, v in app_config.items() if k.startswith("GATEWAY_")})
    env.update({"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
                "DATABASE_URL": app_config["DATABASE_URL"], "GUNICORN_LOG_LEVEL": "info"})
    log = tmp_path / "gunicorn.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "gateway:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gunicorn not ready after 60 s")
            time.sleep(0.2)
        yield port
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_malformed_request_line_is_logged_without_its_text(app_config, tmp_path):
    gen = _gunicorn(app_config, tmp_path)
    port = next(gen)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # four parts on the request line: gunicorn refuses it as InvalidRequestLine
            sock.sendall(f"GET /v1/subjects/{MARKER}/consents HTTP/1.1 {MARKER}\r\nHost: x\r\n\r\n".encode())
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400")
        log = tmp_path / "gunicorn.log"
        deadline = time.monotonic() + 10
        while "Invalid request refused" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        gen.close()
    text = (tmp_path / "gunicorn.log").read_text()
    assert "Invalid request refused (Invalid HTTP Version; request line and address withheld)" in text
    assert MARKER not in text
    assert "127.0.0.1" not in text.split("Invalid request refused", 1)[1].splitlines()[0]


def test_a_failed_request_is_logged_without_method_and_uri(caplog):
    logger = RedactingLogger(Config())
    logger.error_log.propagate = True
    with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("Error handling request %s %s", "GET", f"/v1/subjects/{MARKER}/consents")
    assert "Error handling request (method and URI withheld)" in caplog.text
    assert MARKER not in caplog.text
    assert "RuntimeError" in caplog.text


def test_other_warnings_pass_unchanged(caplog):
    logger = RedactingLogger(Config())
    logger.error_log.propagate = True
    with caplog.at_level(logging.WARNING, logger="gunicorn.error"):
        logger.warning("Worker with pid %s was terminated due to signal %s", 123, 9)
    assert "Worker with pid 123 was terminated due to signal 9" in caplog.text
