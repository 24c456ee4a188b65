#!/usr/bin/env python3
"""An example webhook receiver for Consent Gateway: a small "CRM" that follows withdrawals
and erasures.

It verifies every delivery with the `standardwebhooks` library (the signing secret of the
subscription, `whsec_…`), applies each event once (it remembers every `webhook-id` it applied,
in the same SQLite transaction as the change, so a retried or replayed delivery changes
nothing), and keeps its contacts in line with the gateway:

- `consent.changed`: each purpose's status and whether it is effective, per contact; a
  contact whose `ads` consent is no longer effective leaves the mailing list;
- `subject.erased`: the contact and everything the CRM holds about them is deleted (Art. 17(2):
  the recipient erases too); only the erasure itself is remembered;
- `subject.linked`: the visitor's consents move to the account.

    WEBHOOK_SECRET=whsec_… CRM_DB=crm.db python examples/webhook_receiver.py --port 9002
    flask --app gateway webhooks create --url http://127.0.0.1:9002/hooks \\
        --event consent.changed --event subject.erased --event subject.linked

Answers 204 when it applied or already had the event, 401 for a bad signature, 400 for a body
it cannot read. Needs only the standard library and `standardwebhooks`.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 256 * 1024
MAILING_PURPOSE = "ads"

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    subject_id TEXT PRIMARY KEY, on_mailing_list INTEGER NOT NULL DEFAULT 0, updated_at TEXT);
CREATE TABLE IF NOT EXISTS consents (
    subject_id TEXT NOT NULL, purpose TEXT NOT NULL, status TEXT NOT NULL, effective INTEGER NOT NULL,
    PRIMARY KEY (subject_id, purpose));
CREATE TABLE IF NOT EXISTS erasures (subject_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (webhook_id TEXT PRIMARY KEY, type TEXT NOT NULL);
"""


class CRM:
    """The receiver's state: a SQLite file, one writer at a time."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def apply(self, webhook_id: str, event: dict) -> bool:
        """Apply `event` once; False when this webhook-id was applied before."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                seen = self.db.execute("SELECT 1 FROM applied WHERE webhook_id = ?", (webhook_id,))
                if seen.fetchone() is not None:
                    self.db.execute("ROLLBACK")
                    return False
                self.db.execute("INSERT INTO applied (webhook_id, type) VALUES (?, ?)",
                                (webhook_id, event["type"]))
                HANDLERS.get(event["type"], _ignore)(self.db, event["data"], event["timestamp"])
                self.db.execute("COMMIT")
                return True
            except Exception:
                self.db.execute("ROLLBACK")
                raise


def _ignore(db, data, at) -> None:
    pass


def _consent_changed(db: sqlite3.Connection, data: dict, at: str) -> None:
    subject = data["subject_id"]
    if db.execute("SELECT 1 FROM erasures WHERE subject_id = ? AND erased_at >= ?",
                  (subject, data["recorded_at"])).fetchone():
        return  # a change from before the erasure, arriving after it
    db.execute("INSERT OR IGNORE INTO contacts (subject_id) VALUES (?)", (subject,))
    for change in data["changes"]:
        db.execute("INSERT INTO consents (subject_id, purpose, status, effective) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (subject_id, purpose) DO UPDATE SET status = excluded.status, "
                   "effective = excluded.effective",
                   (subject, change["purpose"], change["to"], 1 if change["effective"] else 0))
    mailing = db.execute("SELECT effective FROM consents WHERE subject_id = ? AND purpose = ?",
                         (subject, MAILING_PURPOSE)).fetchone()
    db.execute("UPDATE contacts SET on_mailing_list = ?, updated_at = ? WHERE subject_id = ?",
               (1 if mailing and mailing[0] else 0, at, subject))


def _subject_erased(db: sqlite3.Connection, data: dict, at: str) -> None:
    subject = data["subject_id"]
    db.execute("DELETE FROM consents WHERE subject_id = ?", (subject,))
    db.execute("DELETE FROM contacts WHERE subject_id = ?", (subject,))
    db.execute("INSERT INTO erasures (subject_id, erased_at) VALUES (?, ?) ON CONFLICT (subject_id) "
               "DO UPDATE SET erased_at = excluded.erased_at", (subject, data["erased_at"]))


def _subject_linked(db: sqlite3.Connection, data: dict, at: str) -> None:
    account, visitor = data["subject_id"], data["visitor_id"]
    db.execute("INSERT OR IGNORE INTO contacts (subject_id) VALUES (?)", (account,))
    db.execute("INSERT OR IGNORE INTO consents SELECT ?, purpose, status, effective FROM consents "
               "WHERE subject_id = ?", (account, visitor))
    db.execute("DELETE FROM consents WHERE subject_id = ?", (visitor,))
    db.execute("DELETE FROM contacts WHERE subject_id = ?", (visitor,))


HANDLERS = {"consent.changed": _consent_changed, "subject.erased": _subject_erased,
            "subject.linked": _subject_linked}


def make_handler(hook: Webhook, crm: CRM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # the path and body carry subject ids: no access log
            pass

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                self._answer(400)
                return
            body = self.rfile.read(length)
            try:
                event = hook.verify(body, dict(self.headers.items()))
            except (WebhookVerificationError, ValueError):
                self._answer(401)
                return
            if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
                self._answer(400)
                return
            crm.apply(self.headers["webhook-id"], event)
            self._answer(204)

    return Handler


def serve(host: str, port: int, secret: str, db_path: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(Webhook(secret), CRM(db_path)))
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("set WEBHOOK_SECRET to the subscription's secret (whsec_…)")
    server = serve(args.host, args.port, secret, os.environ.get("CRM_DB", "crm.db"))
    print(json.dumps({"listening": f"http://{args.host}:{server.server_address[1]}/hooks"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
