"""GATEWAY_RATE_LIMITS for the banner endpoints: fixed-window counters in the database.

A banner request (property key) to an endpoint with a configured limit counts
against its (limit, property, client address) bucket; past the limit it is a
429 with Retry-After until the window ends. The counters live in the database,
so every gateway process sees the same counts; a bucket is a keyed hash, never
a raw address.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog

from ..core.errors import RateLimited
from ..core.limits import window
from ..store.rate_limits import RateCounterRepository
from .context import Gateway

log = structlog.get_logger(__name__)
SWEEP_SECONDS = 60  # how often one process deletes the windows that have ended


def hit(gw: Gateway, name: str, property_id: str, remote_addr: str | None) -> None:
    """Count one request against the limit `name`; RateLimited past it. No limit: nothing."""
    limit = gw.settings.rate_limits.get(name)
    if limit is None:
        return
    now = gw.now()
    start, retry_after = window(int(now.timestamp()), limit.seconds)
    window_start = datetime.fromtimestamp(start, UTC)
    bucket = gw.pseudonymize(f"rate\x00{name}\x00{property_id}\x00{remote_addr or ''}")
    with gw.db.write() as s:
        counters = RateCounterRepository(s)
        count = counters.count(bucket, window_start, window_start + timedelta(seconds=limit.seconds))
        if _sweep_due(gw):
            counters.sweep(now)
    if count > limit.count:
        log.info("rate.limited", limit=name, retry_after=retry_after)
        raise RateLimited(f"too many requests to this endpoint ({name}: {limit}); try again later",
                          retry_after=retry_after)


def _sweep_due(gw: Gateway) -> bool:
    last = gw.caches.rate_sweep_at
    now = time.monotonic()
    if now - last < SWEEP_SECONDS:
        return False
    gw.caches.rate_sweep_at = now
    return True
