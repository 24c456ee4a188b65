"""The one function through which every audited action is written.

It is called inside the same transaction as the change it records. Subjects
appear only as pseudonyms; attributes only by name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..core.actor import Actor
from ..store.models import AuditEvent


def record(
    session: Session,
    type: str,
    *,
    actor: Actor | str,
    at: datetime,
    subject: str | None = None,
    **data: Any,
) -> None:
    actor_id = actor if isinstance(actor, str) else actor.id
    session.add(
        AuditEvent(
            at=at,
            type=type,
            actor=actor_id,
            subject=subject,
            data={k: v for k, v in data.items() if v is not None},
        )
    )
