"""Decision rows: what was decided for a subject, with the facts of its explanation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import statements
from .db import rowcount
from .profile_models import Decision


class DecisionRepository:
    def __init__(self, session: Session):
        self.s = session

    def add(self, values: dict[str, Any]) -> None:
        """One plain INSERT (every decision writes one)."""
        self.s.execute(statements.insert_decision(), values)

    def get(self, decision_id: str) -> Decision | None:
        return self.s.get(Decision, decision_id)

    def of_subject(self, pseudonym: str) -> list[Decision]:
        """The subject's decisions, oldest first."""
        return list(self.s.scalars(select(Decision).where(Decision.subject == pseudonym)
                                   .order_by(Decision.made_at)).all())

    def erase(self, pseudonym: str) -> int:
        """Delete the subject's decisions; returns how many."""
        return rowcount(self.s.execute(delete(Decision).where(Decision.subject == pseudonym))) or 0
