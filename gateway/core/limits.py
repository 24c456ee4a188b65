"""Rate limits as pure functions: the GATEWAY_RATE_LIMITS syntax, fixed windows, token backoff.

No clock and no storage here: callers pass the time and keep the counters
(in the database, so that they hold across every gateway process).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The banner endpoints a limit can name. `visitors` and `outcomes` are accepted for the
# endpoints that carry those names (POST /v1/visitors, POST /v1/decisions/{id}/outcomes).
LIMIT_NAMES = ("notices", "consents", "state", "withdraw", "explanations", "visitors", "outcomes")
PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
MAX_COUNT = 1_000_000
_ENTRY = re.compile(r"^([a-z]+)=([0-9]{1,7})/([a-z]+)$")


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per `seconds`-long fixed window."""

    count: int
    seconds: int

    def __str__(self) -> str:
        unit = next(name for name, size in PERIODS.items() if size == self.seconds)
        return f"{self.count}/{unit}"


class LimitSyntaxError(ValueError):
    """GATEWAY_RATE_LIMITS cannot be read; the message says which entry and why."""


def parse_rate_limits(text: str | None) -> dict[str, Limit]:
    """`consents=20/minute;visitors=10/minute` -> {"consents": Limit(20, 60), ...}.

    Empty or absent: no limits. Entries are separated by `;` (spaces around them are
    ignored); a name may appear once; the count is 1 to 1,000,000; the period is
    second, minute, hour or day.
    """
    limits: dict[str, Limit] = {}
    if text is None or not text.strip():
        return limits
    for raw in text.split(";"):
        entry = raw.strip().replace(" ", "")
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if match is None:
            raise LimitSyntaxError(
                f"{raw.strip()!r} is not NAME=COUNT/PERIOD (for example consents=20/minute)")
        name, count, period = match.group(1), int(match.group(2)), match.group(3)
        if name not in LIMIT_NAMES:
            raise LimitSyntaxError(f"{name!r} is not a limit name; valid: {', '.join(LIMIT_NAMES)}")
        if name in limits:
            raise LimitSyntaxError(f"{name!r} is given twice")
        if not 1 <= count <= MAX_COUNT:
            raise LimitSyntaxError(f"{name}: the count must be 1 to {MAX_COUNT:,}, not {count}")
        if period not in PERIODS:
            raise LimitSyntaxError(f"{name}: the period must be one of {', '.join(PERIODS)}, "
                                   f"not {period!r}")
        limits[name] = Limit(count, PERIODS[period])
    return limits


def window(timestamp: int, seconds: int) -> tuple[int, int]:
    """The fixed window that holds `timestamp`: its start and the seconds until it ends (>= 1)."""
    start = timestamp - timestamp % seconds
    return start, max(1, start + seconds - timestamp)


def backoff_seconds(failures: int, free: int, cap: int) -> int:
    """How long a (client, address) pair is locked after its `failures`-th failure in a row.

    The first `free` failures cost nothing; each one after them locks the pair for twice
    as long as the one before: 1, 2, 4, 8 ... seconds, never more than `cap`.
    """
    if failures <= free:
        return 0
    exponent = failures - free - 1
    if exponent >= cap.bit_length():
        return cap
    return min(cap, 1 << exponent)
