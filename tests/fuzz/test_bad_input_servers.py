"""Bad input over a real socket, on both databases and both servers: Werkzeug's development
server in a thread and gunicorn as started in production (gunicorn.conf.py), each decoding
`Transfer-Encoding: chunked` itself, which is where the size limit used to be cut short.

Each request is sent with http.client exactly as written (chunked framing, percent-escapes,
non-finite numbers) and must get the right problem+json status and change no row.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
SUBJECT = "server-bad-input"
TIMEOUT = 10.0


def row_counts(gw) -> dict[str, int]:
    with gw.db.engine.connect() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        return {t: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in tables}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, proc: subprocess.Popen | None, log: Path | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("server not ready after 60 s")


def _werkzeug(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _wait_ready(server.server_port, None, None)
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _gunicorn(app_config, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GUNICORN_"))}
    env.update({k: str(v) for k, v in app_config.items() if k.startswith("GATEWAY_")})
    env.update({"HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
                "DATABASE_URL": app_config["DATABASE_URL"], "GUNICORN_LOG_LEVEL": "warning"})
    log = tmp_path / "gunicorn.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "gateway:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(port, proc, log)
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


@pytest.fixture(params=["werkzeug", pytest.param("gunicorn", marks=pytest.mark.slow)])
def port(request, app, app_config, tmp_path):
    """A real server on the test's database (the `app` fixture's, so rows can be counted)."""
    if request.param == "werkzeug":
        yield from _werkzeug(app)
    else:
        yield from _gunicorn(app_config, tmp_path)


def send(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None,
         chunk: int | None = None) -> tuple[int, str, dict]:
    """One request; with `chunk` the body goes out with Transfer-Encoding: chunked."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        if chunk is None:
            conn.request(method, path, body=body, headers=headers)
        else:
            pieces = (body[i:i + chunk] for i in range(0, len(body), chunk))
            conn.request(method, path, body=pieces, headers=headers, encode_chunked=True)
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheader("Content-Type", ""), json.loads(data) if data else {}
    finally:
        conn.close()


def _consent(**extra) -> bytes:
    return json.dumps({"subject_id": SUBJECT, "purposes": {"ads": "granted"}, **extra}).encode()


def test_a_chunked_body_obeys_the_size_limit(port, gw, banner):
    headers = {**banner, "Content-Type": "application/json"}
    limit = gw.settings.max_body_bytes
    before = row_counts(gw)
    for body, chunk in ((_consent(source={"x": "a" * (2 * limit)}), 4096),
                        (_consent() + b" " * (limit + 100), 1000),  # was cut at the limit and stored
                        (_consent() + b" " * (3 * 1024 * 1024), 65536)):  # past what is drained
        try:
            status, content_type, problem = send(port, "POST", "/v1/consents", headers, body, chunk)
        except (ConnectionResetError, BrokenPipeError):
            assert len(body) > 2 * 1024 * 1024  # only a body far too large may be cut off
            continue
        assert status == 413, problem
        assert content_type == PROBLEM and problem["type"] == "/problems/payload-too-large"
    assert row_counts(gw) == before
    exact = _consent()[:-1] + b" " * (limit - len(_consent())) + b"}"
    status, _, receipt = send(port, "POST", "/v1/consents", headers, exact, chunk=777)
    assert status == 201, receipt
    assert receipt["subject_id"] == SUBJECT


def test_a_path_that_is_not_utf8_is_refused(port, gw, banner):
    before = row_counts(gw)
    for path in ("/v1/subjects/%FF%FE/consents", "/v1/subjects/%FE%FF/consents",
                 f"/v1/subjects/{SUBJECT}/consents?history=%FF"):
        for method in ("GET", "DELETE"):
            status, content_type, problem = send(port, method, path, banner)
            assert status == 400, (method, path, problem)
            assert content_type == PROBLEM and problem["errors"][0]["field"] in ("path", "query")
    assert row_counts(gw) == before


def test_non_finite_numbers_are_refused(port, gw, banner):
    headers = {**banner, "Content-Type": "application/json"}
    before = row_counts(gw)
    for number in ("1e309", "NaN", "-Infinity"):
        body = _consent(source={"n": "N"}).replace(b'"N"', number.encode())
        for chunk in (None, 7):
            status, content_type, problem = send(port, "POST", "/v1/consents", headers, body, chunk)
            assert status == 422, problem
            assert content_type == PROBLEM and problem["errors"][0]["field"] == "source.n"
    assert row_counts(gw) == before
