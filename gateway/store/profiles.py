"""Profile rows <-> encrypted values. Decryption happens in services with the key ring."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.orm import Session

from ..security.envelope import WrappedKey
from .profile_models import Erasure, ProfileValue, SubjectKey


@functools.cache
def _sealed_profile() -> Select:
    """Built once, on first use: every profile view runs it."""
    return (
        select(SubjectKey.kek_id, SubjectKey.wrapped, ProfileValue.attribute,
               ProfileValue.ciphertext, ProfileValue.written_at)
        .select_from(SubjectKey)
        .outerjoin(ProfileValue, ProfileValue.subject == SubjectKey.subject)
        .where(SubjectKey.subject == bindparam("subject"))
        .order_by(ProfileValue.attribute)
    )


class ProfileRepository:
    def __init__(self, session: Session):
        self.s = session

    def key(self, pseudonym: str) -> SubjectKey | None:
        return self.s.get(SubjectKey, pseudonym)

    def add_key(self, pseudonym: str, wrapped: WrappedKey, now: datetime) -> SubjectKey:
        row = SubjectKey(subject=pseudonym, kek_id=wrapped.kek_id, wrapped=wrapped.blob,
                         created_at=now, rewrapped_at=None)
        self.s.add(row)
        self.s.flush()
        return row

    def sealed(self, pseudonym: str) -> tuple[WrappedKey | None, list[Any]]:
        """The subject's wrapped data key and encrypted values in one query (the read path).

        Rows have `attribute`, `ciphertext` and `written_at`. Values without a key cannot be
        decrypted and are not returned.
        """
        rows = self.s.execute(_sealed_profile(), {"subject": pseudonym}).all()
        if not rows:
            return None, []
        key = WrappedKey(rows[0].kek_id, rows[0].wrapped)
        return key, [r for r in rows if r.attribute is not None]

    def put(self, pseudonym: str, attribute: str, ciphertext: bytes, now: datetime) -> None:
        row = self.s.get(ProfileValue, (pseudonym, attribute))
        if row is None:
            self.s.add(ProfileValue(subject=pseudonym, attribute=attribute, ciphertext=ciphertext,
                                    written_at=now))
        else:
            row.ciphertext = ciphertext
            row.written_at = now

    def remove(self, pseudonym: str, attributes: list[str]) -> list[str]:
        if not attributes:
            return []
        removed = self.s.scalars(
            delete(ProfileValue)
            .where(ProfileValue.subject == pseudonym, ProfileValue.attribute.in_(attributes))
            .returning(ProfileValue.attribute)
        ).all()
        return sorted(removed)

    def erase(self, pseudonym: str) -> int:
        """Delete every value and then the data key (crypto-shredding)."""
        count = self.s.execute(
            delete(ProfileValue).where(ProfileValue.subject == pseudonym)
        ).rowcount
        self.s.execute(delete(SubjectKey).where(SubjectKey.subject == pseudonym))
        return count or 0

    def erasure(self, pseudonym: str) -> Erasure | None:
        return self.s.get(Erasure, pseudonym)
