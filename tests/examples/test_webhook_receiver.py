"""The example receiver (examples/webhook_receiver.py) end to end: a real process that the
gateway's worker posts to. It verifies signatures, applies each webhook-id once, and follows
withdrawals and erasures in its SQLite "CRM"."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from gateway.core.actor import CLI
from gateway.services import consent, profiles, webhooks
from gateway.services.webhooks_worker import Worker

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def crm(gw, tmp_path):
    """The subscription and the receiver process that holds its secret."""
    port = _free_port()
    hook = webhooks.create(gw, "cli", {"url": f"http://127.0.0.1:{port}/hooks",
                                       "events": ["consent.changed", "subject.erased"]})
    db = tmp_path / "crm.db"
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "webhook_receiver.py"),
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={"WEBHOOK_SECRET": hook["secret"], "CRM_DB": str(db),
                                 "PATH": "/usr/bin:/bin"})
    assert "listening" in proc.stdout.readline()
    yield {"hook": hook, "db": db, "url": hook["url"]}
    proc.terminate()
    proc.wait(timeout=10)


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def post(url: str, body: bytes, headers: dict) -> int:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_crm_follows_withdrawals_and_erasures_once_each(gw, crm):
    worker = Worker(gw)
    try:
        consent.record_consent(gw, CLI, subject_id="anna", purposes={"ads": "granted",
                                                                       "personalization": "granted"})
        consent.record_consent(gw, CLI, subject_id="ben", purposes={"ads": "granted"})
        worker.drain()
        assert rows(crm["db"], "SELECT subject_id, on_mailing_list FROM contacts ORDER BY 1") == [
            ("anna", 1), ("ben", 1)]
        consent.withdraw_all(gw, CLI, "anna")
        profiles.erase_subject(gw, CLI, "ben")
        worker.drain()
    finally:
        worker.close()
    assert rows(crm["db"], "SELECT subject_id, on_mailing_list FROM contacts") == [("anna", 0)]
    assert dict(rows(crm["db"], "SELECT purpose, status FROM consents WHERE subject_id = 'anna'")) == {
        "ads": "withdrawn", "personalization": "withdrawn", "health_offers": "denied"}
    assert rows(crm["db"], "SELECT subject_id FROM erasures") == [("ben",)]
    assert rows(crm["db"], "SELECT count(*) FROM consents WHERE subject_id = 'ben'") == [(0,)]
    delivered = {d["message_id"] for d in webhooks.deliveries(gw, crm["hook"]["webhook_id"])["deliveries"]
                 if d["status"] == "delivered"}
    assert {r[0] for r in rows(crm["db"], "SELECT webhook_id FROM applied")} == delivered


def test_a_duplicate_is_applied_once_and_a_bad_signature_not_at_all(gw, crm):
    now = datetime.now(UTC)
    body = json.dumps({"type": "consent.changed", "timestamp": now.isoformat(), "data": {
        "subject_id": "carl", "changes": [{"purpose": "ads", "from": "not_asked", "to": "granted",
                                           "effective": True}],
        "receipt_id": "rcpt_x", "method": "api", "recorded_at": now.isoformat(),
        "policy_version": "v"}}).encode()
    signature = Webhook(crm["hook"]["secret"]).sign("msg_dup", now, body.decode())
    headers = {"webhook-id": "msg_dup", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature}
    assert post(crm["url"], body, headers) == 204
    assert post(crm["url"], body, headers) == 204  # the retry of a delivery it already applied
    assert rows(crm["db"], "SELECT count(*) FROM applied") == [(1,)]
    # the same event, withdrawn, under another id, signed with another secret: refused
    forged = body.replace(b'"granted"', b'"withdrawn"').replace(b'"effective": true', b'"effective": false')
    bad = Webhook("whsec_" + "QUJD" * 8).sign("msg_forged", now, forged.decode())
    assert post(crm["url"], forged, {**headers, "webhook-id": "msg_forged",
                                     "webhook-signature": bad}) == 401
    assert post(crm["url"], body, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}) == 401
    assert rows(crm["db"], "SELECT subject_id, on_mailing_list FROM contacts") == [("carl", 1)]
    assert post(crm["url"], b"", headers) == 400
