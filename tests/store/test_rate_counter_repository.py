"""RateCounterRepository on both engines: one upsert counts a request in its bucket's window,
and a sweep forgets exactly the windows that have ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.store.rate_limits import RateCounterRepository

W0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _count(db, bucket: str, start: datetime) -> int:
    with db.write() as s:
        return RateCounterRepository(s).count(bucket, start, start + MINUTE)


def _windows(db) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.text("SELECT bucket, count FROM rate_counters ORDER BY bucket, window_start"))]


def test_each_request_counts_in_its_own_bucket_and_window(db):
    assert [_count(db, "a" * 64, W0) for _ in range(3)] == [1, 2, 3]
    assert _count(db, "b" * 64, W0) == 1  # another bucket
    assert _count(db, "a" * 64, W0 + MINUTE) == 1  # the next window starts again
    assert _windows(db) == [("a" * 64, 3), ("a" * 64, 1), ("b" * 64, 1)]


def test_a_count_rolled_back_with_its_transaction_is_not_kept(db):
    try:
        with db.write() as s:
            assert RateCounterRepository(s).count("a" * 64, W0, W0 + MINUTE) == 1
            raise RuntimeError("after the count")
    except RuntimeError:
        pass
    assert _windows(db) == []
    assert _count(db, "a" * 64, W0) == 1


def test_a_sweep_deletes_the_windows_ended_by_now_and_keeps_the_others(db):
    _count(db, "a" * 64, W0)  # ends at W0 + 1 min
    _count(db, "b" * 64, W0 + MINUTE)  # ends at W0 + 2 min
    with db.write() as s:
        RateCounterRepository(s).sweep(W0 + MINUTE)  # the end of a window is its last moment
    assert _windows(db) == [("b" * 64, 1)]
    with db.write() as s:
        RateCounterRepository(s).sweep(W0 + MINUTE + timedelta(seconds=59))
    assert _windows(db) == [("b" * 64, 1)]
    with db.write() as s:
        RateCounterRepository(s).sweep(W0 + 2 * MINUTE)
    assert _windows(db) == []
