"""Consent rows <-> consent domain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.consent import PurposeRecord
from .models import ConsentEvent, ConsentState, IdempotencyKey, Notice, Receipt
from .subjects import lock_subject


class ConsentRepository:
    def __init__(self, session: Session):
        self.s = session

    def lock_subject(self, pseudonym: str, now: datetime) -> None:
        lock_subject(self.s, pseudonym, now)

    def records(self, pseudonym: str) -> dict[str, PurposeRecord]:
        rows = self.s.scalars(select(ConsentState).where(ConsentState.subject == pseudonym))
        return {
            r.purpose: PurposeRecord(
                purpose=r.purpose,
                status=r.status,
                purpose_version=r.purpose_version,
                decided_at=r.decided_at,
                expires_at=r.expires_at,
                receipt_id=r.receipt_id,
                method=r.method,
            )
            for r in rows
        }

    def add_receipt(self, receipt: Receipt) -> None:
        self.s.add(receipt)
        self.s.flush()

    def append(self, pseudonym: str, value: str, record: PurposeRecord) -> None:
        """Append one event and move the current-state row to it (same transaction)."""
        event = ConsentEvent(
            receipt_id=record.receipt_id,
            subject=pseudonym,
            purpose=record.purpose,
            value=value,
            status=record.status,
            purpose_version=record.purpose_version,
            method=record.method,
            recorded_at=record.decided_at,
            expires_at=record.expires_at,
        )
        self.s.add(event)
        self.s.flush()
        state = self.s.get(ConsentState, (pseudonym, record.purpose))
        if state is None:
            state = ConsentState(subject=pseudonym, purpose=record.purpose)
            self.s.add(state)
        state.status = record.status
        state.purpose_version = record.purpose_version
        state.decided_at = record.decided_at
        state.expires_at = record.expires_at
        state.receipt_id = record.receipt_id
        state.method = record.method
        state.event_id = event.id

    def history(self, pseudonym: str) -> list[dict[str, Any]]:
        rows = self.s.execute(
            select(ConsentEvent, Receipt.notice_id)
            .join(Receipt, Receipt.id == ConsentEvent.receipt_id)
            .where(ConsentEvent.subject == pseudonym)
            .order_by(ConsentEvent.id)
        )
        return [
            {
                "receipt_id": e.receipt_id,
                "purpose": e.purpose,
                "status": e.value,
                "result": e.status,
                "method": e.method,
                "recorded_at": e.recorded_at,
                "purpose_version": e.purpose_version,
                "expires_at": e.expires_at,
                "notice_id": notice_id,
            }
            for e, notice_id in rows
        ]

    def notice(self, notice_id: str) -> Notice | None:
        return self.s.get(Notice, notice_id)

    def idempotency(self, actor: str, key: str) -> tuple[IdempotencyKey, Receipt] | None:
        row = self.s.get(IdempotencyKey, (actor, key))
        if row is None:
            return None
        return row, self.s.get_one(Receipt, row.receipt_id)
