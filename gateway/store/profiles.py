"""Profile rows <-> encrypted values, each subject's wrapped data key, erasure records.

The store keeps bytes: a wrapped key is its key-encryption key's id and a blob, a value
is a ciphertext. Wrapping, unwrapping and decryption happen in services with the key ring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import statements
from .db import rowcount
from .profile_models import Erasure, ProfileValue, SubjectKey


@dataclass(frozen=True)
class StoredKey:
    """A subject's data key as stored: wrapped under the key-encryption key `kek_id`."""

    subject: str
    kek_id: str
    wrapped: bytes


class ProfileRepository:
    def __init__(self, session: Session):
        self.s = session

    def key(self, pseudonym: str) -> StoredKey | None:
        row = self.s.get(SubjectKey, pseudonym)
        return None if row is None else StoredKey(row.subject, row.kek_id, row.wrapped)

    def add_key(self, pseudonym: str, kek_id: str, wrapped: bytes, now: datetime) -> None:
        self.s.add(SubjectKey(subject=pseudonym, kek_id=kek_id, wrapped=wrapped,
                              created_at=now, rewrapped_at=None))
        self.s.flush()

    def sealed(self, pseudonym: str) -> tuple[StoredKey | None, list[Any]]:
        """The subject's wrapped data key and encrypted values in one query (the read path).

        Rows have `attribute`, `ciphertext` and `written_at`. Values without a key cannot be
        decrypted and are not returned.
        """
        rows = self.s.execute(statements.sealed_profile(), {"subject": pseudonym}).all()
        if not rows:
            return None, []
        key = StoredKey(pseudonym, rows[0].kek_id, rows[0].wrapped)
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
        count = rowcount(self.s.execute(
            delete(ProfileValue).where(ProfileValue.subject == pseudonym)
        ))
        self.s.execute(delete(SubjectKey).where(SubjectKey.subject == pseudonym))
        return count or 0

    def erasure(self, pseudonym: str) -> Erasure | None:
        return self.s.get(Erasure, pseudonym)

    def record_erasure(self, pseudonym: str, actor: str, now: datetime) -> None:
        """The permanent erasure record; a later erasure moves its time and actor."""
        erasure = self.s.get(Erasure, pseudonym)
        if erasure is None:
            self.s.add(Erasure(subject=pseudonym, erased_at=now, actor=actor))
        else:
            erasure.erased_at, erasure.actor = now, actor

    def purge_older(self, attribute: str, before: datetime) -> int:
        """Delete the values of `attribute` written at or before `before`; returns how many."""
        return rowcount(self.s.execute(delete(ProfileValue).where(
            ProfileValue.attribute == attribute, ProfileValue.written_at <= before,
        ))) or 0

    def purge_unknown(self, known: set[str]) -> int:
        """Delete the values of attributes not in `known`; returns how many."""
        return rowcount(self.s.execute(
            delete(ProfileValue).where(ProfileValue.attribute.not_in(known))
        )) or 0

    def rewrap_all(self, current: str, rewrap: Callable[[StoredKey], tuple[str, bytes]],
                   now: datetime) -> int:
        """Give every data key not wrapped under `current` the (kek_id, blob) `rewrap` returns
        for it; returns how many were re-wrapped."""
        rows = self.s.scalars(select(SubjectKey).where(SubjectKey.kek_id != current)).all()
        for row in rows:
            row.kek_id, row.wrapped = rewrap(StoredKey(row.subject, row.kek_id, row.wrapped))
            row.rewrapped_at = now
        return len(rows)
