"""Rate-limit counters: requests per (limit, property, address) bucket in fixed windows.

Buckets are keyed hashes computed by services (never a raw address); the windows and the
limits themselves are `core/limits.py`'s.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from . import statements
from .limit_models import RateCounter


class RateCounterRepository:
    def __init__(self, session: Session):
        self.s = session

    def count(self, bucket: str, window_start: datetime, expires_at: datetime) -> int:
        """Count one request in the bucket's window (the first creates it) and return how many
        the window holds now: one upsert, safe when processes count the same bucket at once."""
        return self.s.execute(statements.count_request(self.s.get_bind().dialect.name), {
            "bucket": bucket, "window_start": window_start, "count": 1, "expires_at": expires_at,
        }).scalar_one()

    def sweep(self, now: datetime) -> None:
        """Forget the windows that have ended by `now`."""
        self.s.execute(delete(RateCounter).where(RateCounter.expires_at <= now))
