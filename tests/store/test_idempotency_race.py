"""Concurrent posts with one Idempotency-Key record one receipt, on either database: the
request that loses the race on the key gets the store's DuplicateKey and replays the winner's."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from gateway.store.consents import ConsentRepository
from gateway.store.errors import DuplicateKey

THREADS = 6


def test_concurrent_posts_with_one_key_record_once(app, banner, gw):
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, str | None, str]] = []
    headers = {**banner, "Idempotency-Key": "race-1"}

    def worker() -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post("/v1/consents", headers=headers, json={
            "subject_id": "racing-subject", "purposes": {"personalization": "granted"}})
        answers.append((r.status_code, r.headers.get("Idempotent-Replayed"),
                        r.get_json().get("receipt_id")))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [status for status, _, _ in answers] == [201] * THREADS
    assert sorted(str(replayed) for _, replayed, _ in answers) == ["None"] + ["true"] * (THREADS - 1)
    assert len({receipt for _, _, receipt in answers}) == 1
    with gw.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM receipts")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT COUNT(*) FROM idempotency_keys")).scalar_one() == 1


def test_a_key_remembered_twice_is_a_duplicate_key(client, banner, gw):
    r = client.post("/v1/consents", headers={**banner, "Idempotency-Key": "dup-1"},
                    json={"subject_id": "dup-subject", "purposes": {"personalization": "granted"}})
    assert r.status_code == 201
    actor = _actor(gw)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(DuplicateKey), gw.db.write() as s:
        ConsentRepository(s).remember_idempotency(actor, "dup-1", "0" * 64,
                                                  r.get_json()["receipt_id"], now)


def _actor(gw) -> str:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT actor FROM idempotency_keys")).scalar_one()
