"""Typed SQLAlchemy models. Subjects appear only as keyed pseudonyms (64 hex)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import BigId, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Pseudonym = String(64)
PublicId = String(40)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class PolicyVersion(Base):
    """Every policy that was ever in force, so past answers can be explained again."""

    __tablename__ = "policy_versions"
    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    declared_version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict[str, Any]] = mapped_column()
    loaded_at: Mapped[datetime]


class Property(Base):
    """A website or app whose banner posts choices with a public property key."""

    __tablename__ = "properties"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    origins: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Subject(Base):
    """One row per pseudonym: the lock that orders a subject's concurrent writes."""

    __tablename__ = "subjects"
    pseudonym: Mapped[str] = mapped_column(Pseudonym, primary_key=True)
    created_at: Mapped[datetime]


class Notice(Base):
    """Proof that a notice was shown (Art. 7(1))."""

    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    subject: Mapped[str] = mapped_column(Pseudonym, index=True)
    purposes: Mapped[list[Any]] = mapped_column()
    purpose_versions: Mapped[dict[str, Any]] = mapped_column()
    locale: Mapped[str] = mapped_column(String(16))
    source: Mapped[dict[str, Any] | None] = mapped_column()
    policy_version: Mapped[str] = mapped_column(ForeignKey("policy_versions.version"))
    actor: Mapped[str] = mapped_column(String(64))
    served_at: Mapped[datetime]


class Receipt(Base):
    """One recorded set of choices; the body is the receipt minus the raw subject id."""

    __tablename__ = "receipts"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    subject: Mapped[str] = mapped_column(Pseudonym, index=True)
    recorded_at: Mapped[datetime]
    policy_version: Mapped[str] = mapped_column(ForeignKey("policy_versions.version"))
    actor: Mapped[str] = mapped_column(String(64))
    notice_id: Mapped[str | None] = mapped_column(ForeignKey("notices.id"))
    locale: Mapped[str | None] = mapped_column(String(16))
    gpc: Mapped[bool]
    tc_string: Mapped[str | None] = mapped_column(Text)
    source: Mapped[dict[str, Any] | None] = mapped_column()
    body: Mapped[dict[str, Any]] = mapped_column()


class ConsentEvent(Base):
    """Append-only: one choice about one purpose. Never updated or deleted."""

    __tablename__ = "consent_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    receipt_id: Mapped[str] = mapped_column(ForeignKey("receipts.id"), index=True)
    subject: Mapped[str] = mapped_column(Pseudonym)
    purpose: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    purpose_version: Mapped[int]
    method: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_consent_events_subject_id", "subject", "id"),)


class ConsentState(Base):
    """Current-state projection: the last event per subject and purpose."""

    __tablename__ = "consent_state"
    subject: Mapped[str] = mapped_column(Pseudonym, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(24))
    purpose_version: Mapped[int]
    decided_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    receipt_id: Mapped[str] = mapped_column(ForeignKey("receipts.id"))
    method: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("consent_events.id"))


class IdempotencyKey(Base):
    """Makes retried consent posts safe: same key and body, same receipt."""

    __tablename__ = "idempotency_keys"
    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    receipt_id: Mapped[str] = mapped_column(ForeignKey("receipts.id"))
    created_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only audit log: pseudonyms and attribute names, never values.

    Rows are inserted in the transaction of the change they record, without a
    place in the chain. The sealer (services/audit.py) later gives them, in
    batches and in commit order, their `seq`, `prev_hash` and `hash`, as a
    transparency log does, so the hot path never waits for the chain head.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(Pseudonym, index=True)
    data: Mapped[dict[str, Any]] = mapped_column()
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditKey(Base):
    """Every public key that signed an audit export, so old exports stay verifiable."""

    __tablename__ = "audit_keys"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_pem: Mapped[str] = mapped_column(Text)
    first_used_at: Mapped[datetime]


# the other modules' tables join Base.metadata here, so Alembic sees every table
from . import auth_models, limit_models, profile_models  # noqa: E402,F401
