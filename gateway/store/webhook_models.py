"""Webhooks: subscriptions of downstream systems, the outbox of deliveries, and the marks of
changes noticed at a read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Pseudonym, PublicId
from .types import BigId


class Webhook(Base):
    """A subscription: where to post which events, signed with its secret.

    The secret (32 random bytes) is stored only wrapped by a key-encryption key of the master
    key ring, bound to the subscription's id. After a rotation the previous secret is kept
    (wrapped) until `previous_until`, and signs beside the new one.
    """

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column()
    purposes: Mapped[list[Any] | None] = mapped_column()
    description: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    secret_kek_id: Mapped[str] = mapped_column(String(40))
    secret_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    previous_kek_id: Mapped[str | None] = mapped_column(String(40))
    previous_wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_until: Mapped[datetime | None]
    # when its deliveries began to fail without a success since (5 days of it disables it)
    failing_since: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """The outbox: one event for one subscription, written in the transaction of the change.

    `message_id` is the `webhook-id` header, the same on every attempt. The body is stored
    encrypted (it holds the raw subject id) under a data key of its own, wrapped by the key
    ring; the three columns are emptied once the delivery is delivered (or, when failed, once
    it can no longer be retried). `ordering_key` (the subject's pseudonym) keeps each
    subject's deliveries to one subscription in order; `next_attempt_at` is also the lease of
    a worker that took the delivery.
    """

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # 128 random bits (security.tokens.new_id); nothing looks a delivery up by it, so no index
    # (every index is one more write on a consent's hot path)
    message_id: Mapped[str] = mapped_column(PublicId)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    ordering_key: Mapped[str | None] = mapped_column(Pseudonym)
    occurred_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(40))
    kek_id: Mapped[str | None] = mapped_column(String(40))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        # the worker's claim: open deliveries that are due
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'retrying')"),
              sqlite_where=text("status IN ('pending', 'retrying')")),
        # a subject's earlier open delivery to the same subscription holds back later ones; also
        # the delivery log of a subscription
        Index("ix_webhook_deliveries_order", "webhook_id", "ordering_key", "id"),
    )


class WebhookNotice(Base):
    """A change no choice recorded, noticed at a read (a consent expired, or a policy version
    needs it given again): sent once per subject, purpose, grant and status."""

    __tablename__ = "webhook_notices"
    subject: Mapped[str] = mapped_column(Pseudonym, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    receipt_id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    status: Mapped[str] = mapped_column(String(24), primary_key=True)
    noticed_at: Mapped[datetime]
