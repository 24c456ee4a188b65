"""Hostile concurrency, on both databases: 50 threads, each with its own client, post grants,
denials and withdraw-alls for a handful of shared subjects at once.

Afterwards the ledger must be whole: every receipt handed out is stored with all of its events
(no lost event, no event without a receipt), each subject's current state per purpose points at
that purpose's last event and carries its status, every event's status follows from the one
before it, and no request failed (no 5xx, no deadlock, no pool exhaustion).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import sqlalchemy as sa

THREADS = 50
PER_THREAD = 10
SUBJECTS = [f"hostile-{i}" for i in range(6)]
PURPOSES = ("personalization", "ads")
JOIN_TIMEOUT = 120.0


def test_fifty_threads_for_six_subjects(app, banner, gw):
    errors: list[str] = []
    receipts: list[tuple[str, str, dict]] = []  # (subject id, kind, receipt)
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS, timeout=60)

    def worker(n: int) -> None:
        rng = random.Random(n)
        client = app.test_client()
        try:
            barrier.wait()
            for _ in range(PER_THREAD):
                subject = rng.choice(SUBJECTS)
                if rng.random() < 0.15:
                    kind = "withdraw"
                    r = client.delete(f"/v1/subjects/{subject}/consents", headers=banner)
                    expected = 200
                else:
                    kind = "choice"
                    r = client.post("/v1/consents", headers=banner, json={
                        "subject_id": subject,
                        "purposes": {p: rng.choice(("granted", "denied")) for p in PURPOSES}})
                    expected = 201
                with lock:
                    if r.status_code == expected:
                        receipts.append((subject, kind, r.get_json()))
                    else:
                        errors.append(f"{kind} {subject}: {r.status_code} {r.get_data(as_text=True)[:300]}")
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the test below
            with lock:
                errors.append(f"thread {n}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.1, JOIN_TIMEOUT - (time.monotonic() - started)))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} threads still running after {JOIN_TIMEOUT}s (deadlock?)"
    assert errors == [], errors[:5]
    assert len(receipts) == THREADS * PER_THREAD

    with gw.db.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, subject FROM receipts")).all())
        events = conn.execute(sa.text(
            "SELECT id, receipt_id, subject, purpose, value, status FROM consent_events ORDER BY id")).all()
        state = {(row.subject, row.purpose): row for row in conn.execute(sa.text(
            "SELECT subject, purpose, status, event_id, receipt_id FROM consent_state"))}

    # every receipt handed out is stored, for its subject, and nothing else is
    pseudonyms = {s: gw.pseudonymize(s) for s in SUBJECTS}
    handed_out = {receipt["receipt_id"]: (subject, receipt) for subject, _, receipt in receipts}
    assert len(handed_out) == len(receipts), "a receipt id was handed out twice"
    assert set(stored) == set(handed_out)
    for rid, (subject, _) in handed_out.items():
        assert stored[rid] == pseudonyms[subject]

    # every receipt has exactly its events, with the statuses it reported
    by_receipt: dict[str, dict[str, str]] = defaultdict(dict)
    for e in events:
        assert e.purpose not in by_receipt[e.receipt_id], f"two events for {e.purpose} in {e.receipt_id}"
        by_receipt[e.receipt_id][e.purpose] = e.status
    assert set(by_receipt) == set(handed_out), "an event without its receipt, or a receipt without events"
    for rid, (_, receipt) in handed_out.items():
        assert by_receipt[rid] == {line["purpose"]: line["status"] for line in receipt["purposes"]}, rid
    for subject, kind, receipt in receipts:
        if kind == "choice":
            assert {line["purpose"] for line in receipt["purposes"]} == set(PURPOSES)

    # per subject and purpose: the status chain holds and the state row is the last event
    per_key: dict[tuple[str, str], list] = defaultdict(list)
    for e in events:
        per_key[(e.subject, e.purpose)].append(e)
    assert set(state) == set(per_key)
    for key, mine in per_key.items():
        previous = None
        for e in mine:
            if e.status in ("permitted", "objected"):  # a legitimate-interest purpose: no chain
                break
            given = previous is not None and previous.status in ("granted", "withdrawn")
            expected = "granted" if e.value == "granted" else ("withdrawn" if given else "denied")
            assert e.status == expected, (key, e)
            previous = e
        last = mine[-1]
        row = state[key]
        assert row.event_id == last.id, key
        assert row.status == last.status, key
        assert row.receipt_id == last.receipt_id, key

    # and the API tells the same story
    client = app.test_client()
    for subject in SUBJECTS:
        r = client.get(f"/v1/subjects/{subject}/consents?history=true", headers=banner)
        assert r.status_code == 200
        body = r.get_json()
        mine = [e for e in events if e.subject == pseudonyms[subject]]
        assert len(body["history"]) == len(mine)
        assert [h["receipt_id"] for h in body["history"]] == [e.receipt_id for e in mine]
        for line in body["purposes"]:
            key = (pseudonyms[subject], line["purpose"])
            if key in state and line["purpose"] in PURPOSES:
                assert line["status"] == state[key].status
                assert line["receipt_id"] == state[key].receipt_id
