"""Policy versions: every policy that was ever in force, stored once per version."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .db import dialect_name, rowcount, upsert_insert
from .models import PolicyVersion


class PolicyRepository:
    def __init__(self, session: Session):
        self.s = session

    def store(self, *, version: str, declared_version: str, content_hash: str,
              files: dict[str, Any], loaded_at: datetime) -> bool:
        """Insert the version unless it is stored already (safe under concurrency); True when
        this transaction inserted it."""
        insert = upsert_insert(dialect_name(self.s))
        result = self.s.execute(
            insert(PolicyVersion)
            .values(version=version, declared_version=declared_version, content_hash=content_hash,
                    files=files, loaded_at=loaded_at)
            .on_conflict_do_nothing()
        )
        return bool(rowcount(result))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once, after this transaction has committed (never if it rolls back)."""
        event.listen(self.s, "after_commit", lambda _session: callback(), once=True)
