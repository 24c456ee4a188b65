"""What the records of processing (GDPR Art. 30) read from the database: the clients that
receive personal data. The rest of the report comes from the policy."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth_models import Client


@dataclass(frozen=True)
class ClientRecipient:
    """A client as a recipient: who it is and what it may receive (never its secret's hash)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    purposes: tuple[str, ...]


class ReportRepository:
    def __init__(self, session: Session):
        self.s = session

    def client_recipients(self) -> list[ClientRecipient]:
        """Every client not revoked, oldest first."""
        rows = self.s.execute(
            select(Client.id, Client.name, Client.scopes, Client.purposes)
            .where(Client.revoked_at.is_(None))
            .order_by(Client.created_at)
        )
        return [ClientRecipient(r.id, r.name, tuple(r.scopes), tuple(r.purposes)) for r in rows]
