"""Profiles: encrypted attribute values and each subject's wrapped data key; decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Pseudonym, PublicId


class SubjectKey(Base):
    """A subject's data key, wrapped by a key-encryption key. Erasure deletes this row:
    without it no value of the subject can ever be decrypted again (crypto-shredding)."""

    __tablename__ = "subject_keys"
    subject: Mapped[str] = mapped_column(Pseudonym, primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(40), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    rewrapped_at: Mapped[datetime | None]


class ProfileValue(Base):
    """One attribute value, AES-GCM encrypted under the subject's data key."""

    __tablename__ = "profile_values"
    subject: Mapped[str] = mapped_column(
        Pseudonym, ForeignKey("subject_keys.subject", ondelete="CASCADE"), primary_key=True
    )
    attribute: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[datetime] = mapped_column(index=True)


class Erasure(Base):
    """The record that a subject was erased (Art. 17): all that an export holds afterwards."""

    __tablename__ = "erasures"
    subject: Mapped[str] = mapped_column(Pseudonym, primary_key=True)
    erased_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))


class Decision(Base):
    """A personalization decision and its explanation, kept for "why am I seeing this"."""

    __tablename__ = "decisions"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    subject: Mapped[str] = mapped_column(Pseudonym)
    placement: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(ForeignKey("policy_versions.version"))
    personalized: Mapped[bool]
    engine: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column()
    explanation: Mapped[dict[str, Any]] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    made_at: Mapped[datetime]

    __table_args__ = (Index("ix_decisions_subject_made_at", "subject", "made_at"),)
