"""What the DPO console shows: consent rates per purpose and day, and the latest audit events.

Both read without writing. Subjects appear only as the pseudonyms the audit log
already holds; a raw subject id given as a filter is turned into its pseudonym
here and never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.audit_chain import timestamp
from ..store.audit import AuditRepository
from ..store.consents import ConsentRepository
from .context import Gateway

MAX_DAYS = 366
MAX_RECENT = 500
SETTABLE = ("consent", "legitimate_interest")  # the legal bases a person's choice can change


def _rate(granted: int, denied: int) -> float | None:
    total = granted + denied
    return None if total == 0 else round(granted / total, 4)


def consent_rates(gw: Gateway, *, days: int = 30) -> dict[str, Any]:
    """Choices per purpose and UTC day over the last `days` days (today included).

    `granted` and `denied` count the choices recorded (a withdrawal or an objection
    is a `denied`), `rate` is granted / (granted + denied), null on a day without
    choices. Every purpose a person can decide about is listed, with or without
    choices, and so is any other purpose that has choices in the window.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    now = gw.now()
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with gw.db.read() as s:
        rows = ConsentRepository(s).choices_per_day(since)
    calendar = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for day, purpose, value, n in rows:
        per_day = counts.setdefault(purpose, {})
        cell = per_day.setdefault(day, {"granted": 0, "denied": 0})
        if value in cell:
            cell[value] += n
    policy = gw.policy
    ids = [p.id for p in policy.purposes if p.legal_basis in SETTABLE]
    ids += sorted(p for p in counts if p not in ids)
    purposes = []
    for purpose_id in ids:
        defined = policy.purpose(purpose_id)
        per_day = counts.get(purpose_id, {})
        series: list[dict[str, Any]] = []
        for d in calendar:
            cell = per_day.get(d, {"granted": 0, "denied": 0})
            series.append({"date": d, "granted": cell["granted"], "denied": cell["denied"],
                           "total": cell["granted"] + cell["denied"],
                           "rate": _rate(cell["granted"], cell["denied"])})
        granted = sum(p["granted"] for p in series)
        denied = sum(p["denied"] for p in series)
        purposes.append({
            "purpose": purpose_id,
            "title": defined.notice("en")[1].title if defined else purpose_id,
            "legal_basis": defined.legal_basis if defined else None,
            "granted": granted,
            "denied": denied,
            "total": granted + denied,
            "rate": _rate(granted, denied),
            "series": series,
        })
    return {
        "generated_at": timestamp(now),
        "days": days,
        "since": calendar[0],
        "until": calendar[-1],
        "policy_version": policy.version,
        "purposes": purposes,
    }


def recent_events(
    gw: Gateway, *, limit: int = 50, types: Sequence[str] = (), subject_id: str | None = None,
) -> dict[str, Any]:
    """The latest audit events, newest first, sealed or not yet sealed.

    Events carry what the audit log holds: the subject's pseudonym, attribute
    names, ids; never a raw subject id or an attribute value. Reading them is not
    itself audited (the signed export, which is, remains the record of proof).
    """
    if not 1 <= limit <= MAX_RECENT:
        raise ValueError(f"limit must be 1 to {MAX_RECENT}")
    subject = gw.pseudonymize(subject_id) if subject_id is not None else None
    with gw.db.read() as s:
        rows = AuditRepository(s).recent(limit, types, subject)
    events = [
        {
            "id": row.id,
            "seq": row.seq,
            "sealed": row.seq is not None,
            "at": timestamp(row.at),
            "type": row.type,
            "actor": row.actor,
            "subject": row.subject,
            "data": {k: v for k, v in (row.data or {}).items() if k != "subject_id"},
            "hash": row.hash,
        }
        for row in rows
    ]
    return {"events": events, "count": len(events), "limit": limit}
