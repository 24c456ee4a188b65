"""Never lost, with real processes, on both databases.

1. The gateway (gunicorn, 2 web workers and the delivery worker its master starts) takes
   consents from four client threads and is killed with SIGKILL in the middle of that load;
   after a restart every consent that got a 201 reaches the receiver (at least once), each
   subject's events in the order of its receipts, and duplicates carry the same `webhook-id`.
2. A delivery worker (`flask --app gateway webhooks work`) is killed with SIGKILL while its
   posts are in flight; a new one sends what the first did not finish, with the same ids.
3. The master's delivery worker comes back when it dies, and goes when the master stops.

Every wait has a timeout, so no test can hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from receiver import Receiver
from test_durability import ORIGIN, ROOT, Server, _env, _flask, _free_port, _request

pytestmark = pytest.mark.slow

CLIENTS = 4
LOAD_SECONDS = 1.5


def _subscribe(env: dict[str, str], url: str) -> dict:
    return json.loads(_flask(env, "webhooks", "create", "--url", url, "--event", "consent.changed"))


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _check_delivered(receiver: Receiver, secret: str, acknowledged: dict[str, list[str]]) -> None:
    """Every acknowledged receipt arrived, verified; per subject in order; duplicates the same."""
    from standardwebhooks.webhooks import Webhook

    hook = Webhook(secret)
    first_body: dict[str, bytes] = {}
    per_subject: dict[str, list[str]] = defaultdict(list)
    for got in list(receiver.received):
        data = hook.verify(got.body, got.headers)["data"]
        if got.message_id in first_body:
            assert first_body[got.message_id] == got.body, "a duplicate with another body"
            continue
        first_body[got.message_id] = got.body
        per_subject[data["subject_id"]].append(data["receipt_id"])
    for subject, receipts in acknowledged.items():
        arrived = per_subject.get(subject, [])
        missing = [r for r in receipts if r not in arrived]
        assert not missing, f"{subject}: acknowledged but never delivered: {missing[:3]}"
        positions = [arrived.index(r) for r in receipts]
        assert positions == sorted(positions), f"{subject}: events out of order"


def test_sigkill_of_the_gateway_under_load_loses_no_event(database_url, tmp_path):
    instance = tmp_path / "instance"
    log = tmp_path / "gunicorn.log"
    fast = {"GATEWAY_WEBHOOK_POLL_MS": "100", "GATEWAY_WEBHOOK_TIMEOUT": "2"}  # a short lease
    env = _env(database_url, instance, _free_port()) | fast
    _flask(env, "db", "upgrade")
    prop = json.loads(_flask(env, "properties", "create", "--name", "Shop", "--origin", ORIGIN))
    banner = {"X-Property-Key": prop["property_key"], "Origin": ORIGIN}
    receiver = Receiver().start()
    hook = _subscribe(env, receiver.url)
    server = Server(env, log)
    restarted = None
    try:
        server.wait_ready()
        acknowledged: dict[str, list[str]] = defaultdict(list)
        stop = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            subject, i = f"hooked-{n}", 0
            while not stop.is_set():
                body = {"subject_id": subject, "purposes": {"ads": ("granted", "denied")[i % 2]}}
                i += 1
                try:
                    status, answer = _request(server.url + "/v1/consents", "POST", banner, body)
                except Exception:  # noqa: BLE001 - killed mid-request: not acknowledged
                    return
                if status == 201:
                    with lock:
                        acknowledged[subject].append(answer["receipt_id"])

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        total = sum(len(v) for v in acknowledged.values())
        assert total >= CLIENTS, f"too little load before the kill ({total})"

        restarted = Server(_env(database_url, instance, _free_port()) | fast, log)
        restarted.wait_ready()
        wanted = {r for receipts in acknowledged.values() for r in receipts}

        def all_arrived() -> bool:
            got = set()
            for r in list(receiver.received):
                got.add(json.loads(r.body)["data"]["receipt_id"])
            return wanted <= got

        _wait(all_arrived, 90, f"{len(wanted)} acknowledged consents to be delivered")
        _check_delivered(receiver, hook["secret"], acknowledged)
    finally:
        for s in (server, restarted):
            if s is not None:
                s.stop()
        receiver.stop()


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "gateway", "webhooks", "work"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_sigkill_of_the_delivery_worker_mid_delivery(database_url, tmp_path):
    env = _env(database_url, tmp_path / "instance", _free_port())
    env.update({"GATEWAY_WEBHOOK_TIMEOUT": "1", "GATEWAY_WEBHOOK_CONCURRENCY": "8",
                "GATEWAY_WEBHOOK_POLL_MS": "100"})
    _flask(env, "db", "upgrade")
    receiver = Receiver(behaviour=lambda n: (200, 0.4)).start()  # slow: posts are in flight
    hook = _subscribe(env, receiver.url)
    # the consents, from the command line's own process (the gateway is not needed for them)
    script = ("from gateway import create_app\n"
              "from gateway.core.actor import CLI\n"
              "from gateway.services import consent\n"
              "import json\n"
              "gw = create_app().extensions['gateway']\n"
              "out = {}\n"
              "for n in range(48):\n"
              "    s = f'mid-{n % 12}'\n"
              "    r, _ = consent.record_consent(gw, CLI, subject_id=s,"
              " purposes={'ads': ('granted', 'denied')[n // 12 % 2]})\n"
              "    out.setdefault(s, []).append(r['receipt_id'])\n"
              "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    acknowledged = json.loads(done.stdout.strip().splitlines()[-1])
    log = tmp_path / "worker.log"
    first = _worker(env, log)
    second = None
    try:
        _wait(lambda: receiver.requests - len(receiver.received) >= 4 and len(receiver.received) >= 4,
              60, "posts in flight")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=15)
        in_flight_at_kill = receiver.requests
        second = _worker(env, log)
        wanted = {r for receipts in acknowledged.values() for r in receipts}
        _wait(lambda: wanted <= {json.loads(r.body)["data"]["receipt_id"] for r in list(receiver.received)},
              120, "every consent to be delivered after the kill")
        _check_delivered(receiver, hook["secret"], acknowledged)
        ids = [r.message_id for r in receiver.received]
        assert len(ids) > len(set(ids)), "the posts in flight at the kill were not sent again"
        assert in_flight_at_kill < receiver.requests
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
        receiver.stop()


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(t) for t in text)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _delivery_workers(master: int) -> set[int]:
    return {p for p in _children(master) if "webhooks work" in _cmdline(p)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_master_keeps_one_delivery_worker(database_url, tmp_path):
    env = _env(database_url, tmp_path / "instance", _free_port())
    env["GATEWAY_WEBHOOK_POLL_MS"] = "100"
    _flask(env, "db", "upgrade")
    server = Server(env, tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        _wait(lambda: len(_delivery_workers(server.proc.pid)) == 1, 30, "the delivery worker")
        [first] = _delivery_workers(server.proc.pid)
        assert len(_children(server.proc.pid)) == 3  # two web workers and one delivery worker
        os.kill(first, signal.SIGKILL)
        _wait(lambda: _delivery_workers(server.proc.pid) - {first}, 30, "a new delivery worker")
        assert len(_delivery_workers(server.proc.pid)) == 1
        [second] = _delivery_workers(server.proc.pid)
    finally:
        server.stop()
    _wait(lambda: not Path(f"/proc/{second}").exists() or "webhooks work" not in _cmdline(second),
          30, "the delivery worker to stop with the master")
