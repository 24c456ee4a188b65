"""The gateway's wiring: what every service needs, built once by create_app or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..core.policy import Policy
from ..security.envelope import KeyRing
from ..security.pseudonym import Pseudonymizer
from ..settings import Settings
from ..store.db import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gateway:
    settings: Settings
    db: Database
    policy: Policy
    policy_files: dict[str, str]
    pseudonymize: Pseudonymizer
    keyring: KeyRing | None = None
    clock: Callable[[], datetime] = utcnow
    state: dict = field(default_factory=dict)  # caches that are safe to lose (never correctness)

    def now(self) -> datetime:
        """The current time, truncated to microseconds and always aware UTC."""
        return self.clock().astimezone(UTC)
