"""Property rows: the websites and apps whose banners post with a public property key.

The key itself is never stored, only its hash; origins are kept normalized (services do it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from . import statements
from .models import Property


@dataclass(frozen=True)
class KeyedProperty:
    """What a banner's property key stands for: the property and its Origin allow-list."""

    id: str
    origins: list[str]
    revoked_at: datetime | None


@dataclass(frozen=True)
class StoredProperty:
    """A property as listed (without its key hash)."""

    id: str
    name: str
    origins: list[str]
    created_at: datetime
    revoked_at: datetime | None


class PropertyRepository:
    def __init__(self, session: Session | Connection):
        """A session in write transactions; a plain connection is enough for every read."""
        self.s = session

    def add(self, *, property_id: str, name: str, key_hash: str, origins: list[str],
            created_at: datetime) -> None:
        self.s.execute(insert(Property), {
            "id": property_id, "name": name, "key_hash": key_hash, "origins": origins,
            "created_at": created_at, "revoked_at": None})

    def by_key_hash(self, key_hash: str) -> KeyedProperty | None:
        """The property whose key has this hash, revoked or not (every banner request)."""
        row = self.s.execute(statements.property_by_key_hash(), {"key_hash": key_hash}).first()
        return None if row is None else KeyedProperty(row.id, row.origins, row.revoked_at)

    def active_origins(self) -> list[list[str]]:
        """The Origin allow-list of every property not revoked."""
        return list(self.s.scalars(select(Property.origins).where(Property.revoked_at.is_(None))))

    def all(self) -> list[StoredProperty]:
        """Every property, revoked ones too, oldest first."""
        rows = self.s.execute(
            select(Property.id, Property.name, Property.origins, Property.created_at,
                   Property.revoked_at)
            .order_by(Property.created_at)
        )
        return [StoredProperty(r.id, r.name, r.origins, r.created_at, r.revoked_at) for r in rows]
