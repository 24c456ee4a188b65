"""Concurrent posts for one subject never lose an event, on either database."""

from __future__ import annotations

import threading

import sqlalchemy as sa

THREADS = 8
PER_THREAD = 6


def test_concurrent_choices_for_one_subject(app, banner, gw):
    errors: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        for i in range(PER_THREAD):
            value = "granted" if (n + i) % 2 else "denied"
            r = client.post("/v1/consents", headers=banner, json={
                "subject_id": "shared-subject",
                "purposes": {"personalization": value, "ads": value}})
            if r.status_code != 201:
                errors.append(f"{r.status_code} {r.get_data(as_text=True)[:200]}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []

    with gw.db.engine.connect() as conn:
        events = conn.execute(sa.text(
            "SELECT purpose, value, status, id FROM consent_events ORDER BY id")).all()
        state = dict(conn.execute(sa.text("SELECT purpose, event_id FROM consent_state")).all())
        receipts = conn.execute(sa.text("SELECT COUNT(*) FROM receipts")).scalar_one()
    assert receipts == THREADS * PER_THREAD
    assert len(events) == 2 * THREADS * PER_THREAD
    for purpose in ("personalization", "ads"):
        mine = [e for e in events if e.purpose == purpose]
        # the current state points at the last event of the purpose
        assert state[purpose] == mine[-1].id
        # and each event's derived status follows from the one before it
        seen_grant = False
        for e in mine:
            expected = "granted" if e.value == "granted" else ("withdrawn" if seen_grant else "denied")
            assert e.status == expected
            seen_grant = seen_grant or e.value == "granted"
