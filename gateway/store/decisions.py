"""Decision rows: what was decided for a subject, with the facts of its explanation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import statements
from .db import rowcount
from .profile_models import Decision


class DecisionRepository:
    def __init__(self, session: Session):
        self.s = session

    def add(self, *, decision_id: str, subject: str, placement: str, purpose: str,
            policy_version: str, personalized: bool, engine: str, rule: str | None,
            content: Mapping[str, Any], explanation: Mapping[str, Any], actor: str,
            made_at: datetime) -> None:
        """One plain INSERT (every decision writes one). `explanation` holds the facts that
        render it again later (`core.explain.Facts`)."""
        self.s.execute(statements.insert_decision(), {
            "id": decision_id, "subject": subject, "placement": placement, "purpose": purpose,
            "policy_version": policy_version, "personalized": personalized, "engine": engine,
            "rule": rule, "content": content, "explanation": explanation, "actor": actor,
            "made_at": made_at})

    def get(self, decision_id: str) -> Decision | None:
        return self.s.get(Decision, decision_id)

    def of_subject(self, pseudonym: str) -> list[Decision]:
        """The subject's decisions, oldest first."""
        return list(self.s.scalars(select(Decision).where(Decision.subject == pseudonym)
                                   .order_by(Decision.made_at)).all())

    def erase(self, pseudonym: str) -> int:
        """Delete the subject's decisions; returns how many."""
        return rowcount(self.s.execute(delete(Decision).where(Decision.subject == pseudonym))) or 0
