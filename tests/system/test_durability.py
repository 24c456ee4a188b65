"""Durability, on both databases: the gateway runs as real gunicorn processes, takes consents
from four client threads, is killed with SIGKILL in the middle of that load, and restarted.

After the restart every consent that got a 201 is there with all of its purposes (no lost
commit), and nothing is half-written: no receipt without its events or with other events than
its body lists, no event without its receipt, and each current-state row points at the last
event of its subject and purpose. Every wait has a timeout, so the test cannot hang.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.db import make_engine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://shop.example"
PURPOSES = ("personalization", "ads")
CLIENTS = 4
LOAD_SECONDS = 1.5
HTTP_TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(database_url: str, instance: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GUNICORN_"))}
    env.update({
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": database_url,
        "GATEWAY_INSTANCE_DIR": str(instance),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_PSEUDONYM_KEY": base64.b64encode(b"p" * 32).decode(),
        "GATEWAY_MASTER_KEY": base64.b64encode(b"q" * 32).decode(),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GUNICORN_LOG_LEVEL": "warning",
    })
    return env


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Server:
    """One gunicorn master and its workers, in their own process group."""

    def __init__(self, env: dict[str, str], log: Path):
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "gateway:create_app()"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        pytest.fail(f"gunicorn not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass


def _request(url: str, method: str, headers: dict[str, str], body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")[:300]}


def test_sigkill_mid_load_loses_no_commit_and_leaves_no_half_write(database_url, tmp_path):
    instance = tmp_path / "instance"
    log = tmp_path / "gunicorn.log"
    env = _env(database_url, instance, _free_port())
    _flask(env, "db", "upgrade")
    prop = json.loads(_flask(env, "properties", "create", "--name", "Durable shop", "--origin", ORIGIN))
    banner = {"X-Property-Key": prop["property_key"], "Origin": ORIGIN}

    server = Server(env, log)
    restarted = None
    try:
        server.wait_ready()
        acknowledged: dict[str, list[dict]] = defaultdict(list)  # subject id -> receipts with a 201
        unanswered: list[str] = []
        failures: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            subject = f"durable-{n}"
            i = 0
            while not stop.is_set():
                value = ("granted", "denied")[(n + i) % 2]
                body = {"subject_id": subject, "purposes": {p: value for p in PURPOSES}}
                i += 1
                try:
                    status, answer = _request(server.url + "/v1/consents", "POST", banner, body)
                except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as exc:
                    # killed mid-request, or mid-response (IncompleteRead): not acknowledged
                    with lock:
                        unanswered.append(f"{subject}: {exc!r}")
                    return
                with lock:
                    if status == 201:
                        acknowledged[subject].append(answer)
                    else:
                        failures.append(f"{subject}: {status} {answer}")

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=HTTP_TIMEOUT + 5)
        assert not [t for t in threads if t.is_alive()], "a client thread hung"
        assert failures == []
        total = sum(len(v) for v in acknowledged.values())
        assert total >= CLIENTS, f"too little load before the kill ({total} receipts)"
        assert unanswered, "the kill came between requests: nothing was in flight"

        env = _env(database_url, instance, _free_port())
        restarted = Server(env, log)
        restarted.wait_ready()

        # every acknowledged consent is in the subject's history with all of its purposes
        for n in range(CLIENTS):
            subject = f"durable-{n}"
            status, state = _request(f"{restarted.url}/v1/subjects/{subject}/consents?history=true",
                                     "GET", banner)
            assert status == 200, state
            history = defaultdict(dict)  # history entries: `status` is the choice, `result` its effect
            for entry in state["history"]:
                history[entry["receipt_id"]][entry["purpose"]] = (entry["status"], entry["result"])
            for receipt in acknowledged[subject]:
                assert history.get(receipt["receipt_id"]) == {
                    line["purpose"]: (line["choice"], line["status"]) for line in receipt["purposes"]
                }, f"lost commit: {receipt['receipt_id']} of {subject}"
            # the current state is the last recorded choice per purpose
            last = {}
            for entry in state["history"]:
                last[entry["purpose"]] = entry
            for line in state["purposes"]:
                if line["purpose"] in last:
                    assert line["receipt_id"] == last[line["purpose"]]["receipt_id"]
                    assert line["status"] == last[line["purpose"]]["result"]
    finally:
        for s in (server, restarted):
            if s is not None:
                s.stop()

    _check_ledger_is_whole(database_url, sum(len(v) for v in acknowledged.values()))


def _check_ledger_is_whole(database_url: str, acknowledged: int) -> None:
    engine = make_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            receipts = {r.id: r.body for r in conn.execute(sa.text("SELECT id, body FROM receipts"))}
            events = conn.execute(sa.text(
                "SELECT id, receipt_id, subject, purpose, status FROM consent_events ORDER BY id")).all()
            state = conn.execute(sa.text(
                "SELECT subject, purpose, status, event_id FROM consent_state")).all()
    finally:
        engine.dispose()
    assert len(receipts) >= acknowledged
    by_receipt: dict[str, dict[str, str]] = defaultdict(dict)
    last: dict[tuple[str, str], object] = {}
    for e in events:
        by_receipt[e.receipt_id][e.purpose] = e.status
        last[(e.subject, e.purpose)] = e
    assert set(by_receipt) <= set(receipts), "an event without its receipt"
    for rid, body in receipts.items():
        if isinstance(body, str):
            body = json.loads(body)
        assert body and body.get("receipt_id") == rid, f"receipt {rid} has no body"
        assert by_receipt.get(rid) == {line["purpose"]: line["status"] for line in body["purposes"]}, (
            f"receipt {rid} is half-written")
    assert {(row.subject, row.purpose) for row in state} == set(last)
    for row in state:
        event = last[(row.subject, row.purpose)]
        assert row.event_id == event.id and row.status == event.status, (row, event)
