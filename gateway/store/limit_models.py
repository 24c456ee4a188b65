"""Counters that must hold across every gateway process: token-endpoint throttles and banner
rate limits. Keys are keyed hashes (never a raw client id or address)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class TokenThrottle(Base):
    """Failed token requests in a row of one (client id, address) pair and how long it is locked.

    A success deletes the row; a pair without failures for a day is forgotten.
    """

    __tablename__ = "token_throttles"
    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int]
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


class RateCounter(Base):
    """Requests of one (limit, property, address) bucket in one fixed window."""

    __tablename__ = "rate_counters"
    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(index=True)
