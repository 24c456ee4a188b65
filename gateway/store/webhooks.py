"""Webhook rows: subscriptions, the outbox (claimed by workers), the delivery log, notices.

Deliveries are written in the caller's transaction (the change they announce). Workers take
due deliveries in short transactions: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so that
several workers share the outbox without taking the same row; on SQLite the write lock
(BEGIN IMMEDIATE) serializes the claims. A claim moves `next_attempt_at` forward by a lease:
a worker that dies mid-delivery leaves the row to be claimed again when the lease ends.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from .db import dialect_name, rowcount
from .models import PolicyVersion
from .webhook_models import Webhook, WebhookDelivery, WebhookNotice

OPEN = ("pending", "retrying")
OPEN_SQL = "webhook_deliveries.status IN ('pending', 'retrying')"


@dataclass(frozen=True)
class Subscriber:
    """What emitting needs to know of an active subscription."""

    id: str
    events: tuple[str, ...]
    purposes: tuple[str, ...] | None


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker took, with what it needs to send it."""

    id: int
    message_id: str
    webhook_id: str
    event_type: str
    attempts: int
    kek_id: str | None
    wrapped_key: bytes | None
    payload: bytes | None
    url: str
    secret_kek_id: str
    secret_wrapped: bytes
    previous_kek_id: str | None
    previous_wrapped: bytes | None
    previous_until: datetime | None


# -- statements on the hot path (built once, on first use) ------------------------------------


@functools.cache
def _active_subscribers() -> Select:
    return select(Webhook.id, Webhook.events, Webhook.purposes).where(Webhook.status == "active")


def _deliveries() -> Table:
    """The deliveries' Table, for plain Core statements."""
    return cast(Table, WebhookDelivery.__table__)


@functools.cache
def _insert_deliveries() -> Insert:
    return insert(_deliveries())


def _due(now: datetime, limit: int, dialect: str) -> Select:
    """Open, due deliveries of active subscriptions that no earlier open delivery of the same
    subject to the same subscription holds back, oldest first. Driven by the partial index of
    open deliveries (both conditions on other rows are correlated, so no engine starts from
    the subscription and walks its whole log)."""
    earlier = aliased(WebhookDelivery)
    d = WebhookDelivery
    query = (
        select(d.id)
        # written as the partial index's own condition (literals), so that SQLite uses the index
        .where(text(OPEN_SQL), d.next_attempt_at <= now,
               exists().where(Webhook.id == d.webhook_id, Webhook.status == "active"),
               ~exists().where(earlier.webhook_id == d.webhook_id,
                               earlier.ordering_key == d.ordering_key,
                               earlier.id < d.id, earlier.status.in_(OPEN)))
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


class WebhookRepository:
    def __init__(self, session: Session):
        self.s = session

    @property
    def dialect(self) -> str:
        return dialect_name(self.s)

    # -- subscriptions ------------------------------------------------------------------------

    def add(self, values: dict[str, Any]) -> Webhook:
        row = Webhook(**values)
        self.s.add(row)
        self.s.flush()
        return row

    def get(self, webhook_id: str, *, lock: bool = False) -> Webhook | None:
        if lock and self.dialect == "postgresql":
            return self.s.scalars(select(Webhook).where(Webhook.id == webhook_id)
                                  .with_for_update()).first()
        return self.s.get(Webhook, webhook_id)

    def all(self) -> list[Webhook]:
        return list(self.s.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id)).all())

    def remove(self, webhook_id: str) -> int:
        """Delete the subscription and its deliveries (with their encrypted bodies); returns how
        many deliveries went."""
        gone = rowcount(self.s.execute(delete(WebhookDelivery)
                                       .where(WebhookDelivery.webhook_id == webhook_id)))
        self.s.execute(delete(Webhook).where(Webhook.id == webhook_id))
        return int(gone or 0)

    def subscribers(self) -> list[Subscriber]:
        """The active subscriptions (every change that may be announced reads this)."""
        # through the session's connection: no ORM work on a statement every change runs
        rows = self.s.connection().execute(_active_subscribers())
        return [Subscriber(r.id, tuple(r.events or ()),
                           tuple(r.purposes) if r.purposes is not None else None) for r in rows]

    def counts(self, webhook_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Deliveries per subscription and status."""
        if not webhook_ids:
            return {}
        rows = self.s.execute(
            select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
            .where(WebhookDelivery.webhook_id.in_(list(webhook_ids)))
            .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)).all()
        out: dict[str, dict[str, int]] = {}
        for webhook_id, status, n in rows:
            out.setdefault(webhook_id, {})[status] = int(n)
        return out

    # -- the outbox ---------------------------------------------------------------------------

    def add_deliveries(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.s.connection().execute(_insert_deliveries(), rows)

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Take up to `limit` due deliveries: count the attempt and hold them until
        `lease_until`. Call in a write transaction of its own and commit before sending."""
        ids = list(self.s.scalars(_due(now, limit, self.dialect)).all())
        if not ids:
            return []
        d = WebhookDelivery
        self.s.execute(update(d).where(d.id.in_(ids))
                       .values(attempts=d.attempts + 1, next_attempt_at=lease_until,
                               last_attempt_at=now))
        rows = self.s.execute(
            select(d.id, d.message_id, d.webhook_id, d.event_type, d.attempts, d.kek_id,
                   d.wrapped_key, d.payload, Webhook.url, Webhook.secret_kek_id,
                   Webhook.secret_wrapped, Webhook.previous_kek_id, Webhook.previous_wrapped,
                   Webhook.previous_until)
            .join(Webhook, Webhook.id == d.webhook_id).where(d.id.in_(ids)).order_by(d.id)).all()
        return [Claimed(*row) for row in rows]  # type: ignore[call-arg]  # the columns, in order

    def record_results(self, results: Sequence[dict[str, Any]]) -> None:
        """Each claimed delivery's outcome: `id`, `attempts` (as claimed: a row claimed again
        since, after its lease ended, is left to the later claim), `status`, `next_attempt_at`, `finished_at`,
        `response_status`, `latency_ms`, `error`, and `clear` (forget the encrypted body)."""
        if not results:
            return
        keep = [r for r in results if not r["clear"]]
        clear = [r for r in results if r["clear"]]
        base: dict[str, Any] = dict(status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                    finished_at=bindparam("b_finished"), response_status=bindparam("b_code"),
                    latency_ms=bindparam("b_latency"), error=bindparam("b_error"))
        for group, extra in ((keep, {}), (clear, {"kek_id": None, "wrapped_key": None,
                                                  "payload": None})):
            if group:
                self.s.execute(
                    update(_deliveries()).where(_deliveries().c.id == bindparam("b_id"),
                                                _deliveries().c.attempts == bindparam("b_attempts"))
                    .values(**base, **extra),
                    [{"b_id": r["id"], "b_attempts": r["attempts"], "b_status": r["status"],
                      "b_next": r["next_attempt_at"],
                      "b_finished": r["finished_at"], "b_code": r["response_status"],
                      "b_latency": r["latency_ms"], "b_error": r["error"]} for r in group])

    def mark_health(self, succeeded: Iterable[str], failed: Iterable[str], now: datetime) -> None:
        """A success ends a subscription's failing streak; a failure starts one (if none is on)."""
        ok, bad = set(succeeded), set(failed) - set(succeeded)
        if ok:
            self.s.execute(update(Webhook).where(Webhook.id.in_(list(ok)))
                           .values(failing_since=None))
        if bad:
            self.s.execute(update(Webhook).where(Webhook.id.in_(list(bad)),
                                                 Webhook.failing_since.is_(None))
                           .values(failing_since=now))

    def disable_failing(self, since: datetime, now: datetime) -> list[str]:
        """Disable every active subscription whose deliveries have all failed since `since`;
        returns their ids."""
        ids = list(self.s.scalars(select(Webhook.id).where(
            Webhook.status == "active", Webhook.failing_since.is_not(None),
            Webhook.failing_since <= since)).all())
        if ids:
            self.s.execute(update(Webhook).where(Webhook.id.in_(ids))
                           .values(status="disabled", disabled_reason="failing", updated_at=now))
        return ids

    def forget_failed_before(self, before: datetime) -> int:
        """Empty the encrypted bodies of deliveries that failed before `before` (no longer
        retried); returns how many."""
        d = WebhookDelivery
        return rowcount(self.s.execute(
            update(d).where(d.status == "failed", d.finished_at < before, d.payload.is_not(None))
            .values(kek_id=None, wrapped_key=None, payload=None))) or 0

    def prune_finished_before(self, before: datetime) -> int:
        """Delete the log lines of deliveries finished before `before`."""
        d = WebhookDelivery
        return rowcount(self.s.execute(
            delete(d).where(d.status.in_(("delivered", "failed")), d.finished_at < before,
                            d.payload.is_(None)))) or 0

    def open_count(self) -> int:
        return int(self.s.scalar(select(func.count()).select_from(WebhookDelivery)
                                 .where(WebhookDelivery.status.in_(OPEN))) or 0)

    # -- the delivery log ---------------------------------------------------------------------

    def deliveries(self, webhook_id: str, *, status: str | None, limit: int,
                   before_id: int | None = None) -> list[WebhookDelivery]:
        """The subscription's deliveries: failed first, then retrying, pending and delivered,
        newest first within each."""
        d = WebhookDelivery
        rank = case({"failed": 0, "retrying": 1, "pending": 2}, value=d.status, else_=3)
        query = select(d).where(d.webhook_id == webhook_id)
        if status is not None:
            query = query.where(d.status == status)
        if before_id is not None:
            query = query.where(d.id < before_id)
        return list(self.s.scalars(query.order_by(rank, d.id.desc()).limit(limit)).all())

    def delivery(self, webhook_id: str, delivery_id: int) -> WebhookDelivery | None:
        row = self.s.get(WebhookDelivery, delivery_id)
        return row if row is not None and row.webhook_id == webhook_id else None

    def resend(self, ids: Sequence[int], now: datetime) -> None:
        """Put deliveries back in the outbox, due now, with a fresh count of attempts."""
        if ids:
            d = WebhookDelivery
            self.s.execute(update(d).where(d.id.in_(list(ids)))
                           .values(status="pending", attempts=0, next_attempt_at=now,
                                   finished_at=None, error=None))

    def replayable(self, webhook_id: str, since: datetime) -> tuple[list[int], int, int]:
        """Of the subscription's deliveries of events since `since`: (ids that can be sent
        again, how many are open anyway, how many no longer have their body)."""
        d = WebhookDelivery
        rows = self.s.execute(select(d.id, d.status, d.payload.is_not(None))
                              .where(d.webhook_id == webhook_id, d.occurred_at >= since)
                              .order_by(d.id)).all()
        again = [r[0] for r in rows if r[1] not in OPEN and r[2]]
        open_ = sum(1 for r in rows if r[1] in OPEN)
        gone = sum(1 for r in rows if r[1] not in OPEN and not r[2])
        return again, open_, gone

    # -- changes noticed at a read, the previous policy -----------------------------------------

    def notice_once(self, subject: str, purpose: str, receipt_id: str, status: str,
                    now: datetime) -> bool:
        """Remember that this change was announced; False when it was already."""
        found = self.s.get(WebhookNotice, (subject, purpose, receipt_id, status))
        if found is not None:
            return False
        self.s.add(WebhookNotice(subject=subject, purpose=purpose, receipt_id=receipt_id,
                                 status=status, noticed_at=now))
        self.s.flush()
        return True

    def noticed(self, subject: str, keys: Sequence[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of (purpose, receipt_id, status) were already announced for the subject."""
        if not keys:
            return set()
        n = WebhookNotice
        rows = self.s.execute(select(n.purpose, n.receipt_id, n.status).where(
            n.subject == subject,
            or_(*[and_(n.purpose == p, n.receipt_id == r, n.status == st) for p, r, st in keys]))).all()
        return {(r[0], r[1], r[2]) for r in rows}

    def previous_policy_files(self, version: str) -> dict[str, Any] | None:
        """The files of the policy stored last before `version`, None if there is none."""
        row = self.s.execute(select(PolicyVersion.files).where(PolicyVersion.version != version)
                             .order_by(PolicyVersion.loaded_at.desc()).limit(1)).first()
        return row[0] if row is not None else None
