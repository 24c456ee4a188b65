"""Use cases of the consent ledger: notices served, choices recorded, withdrawal, state."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from ..core import consent as rules
from ..core import tcf
from ..core.actor import Actor
from ..core.errors import Conflict, FieldError, InvalidRequest
from ..core.timefmt import iso as _iso
from ..security.tokens import new_id
from ..store.consents import ConsentRepository
from ..store.db import Transaction
from ..store.errors import DuplicateKey
from . import audit, webhooks
from .context import Gateway
from .policy import ensure_stored


def _check_purposes(gw: Gateway, purposes: list[str], field: str = "purposes") -> None:
    unknown = [
        FieldError(f"{field}[{i}]", f"unknown purpose {p!r}")
        for i, p in enumerate(purposes)
        if gw.policy.purpose(p) is None
    ]
    if unknown:
        raise InvalidRequest("the request names purposes the policy does not define",
                             errors=unknown)


def serve_notice(
    gw: Gateway, actor: Actor, *, subject_id: str, purposes: list[str], locale: str,
    source: dict | None = None,
) -> dict:
    """Record that a notice for `purposes` was shown to the subject (proof for Art. 7(1))."""
    _check_purposes(gw, purposes)
    now = gw.now()
    pseudonym = gw.pseudonymize(subject_id)
    notice_id = new_id("ntc")
    with gw.db.write() as s:
        version = ensure_stored(gw, s)
        ConsentRepository(s).add_notice({
            "id": notice_id,
            "subject": pseudonym,
            "purposes": list(dict.fromkeys(purposes)),
            "purpose_versions": {p: gw.policy.purpose(p).version for p in purposes},
            "locale": locale,
            "source": source,
            "policy_version": version,
            "actor": actor.id,
            "served_at": now,
        })
        audit.record(s, "notice.served", actor=actor, at=now, subject=pseudonym,
                     notice_id=notice_id, purposes=list(dict.fromkeys(purposes)),
                     policy_version=version)
    return {"notice_id": notice_id, "served_at": _iso(now), "policy_version": version,
            "subject_id": subject_id, "purposes": list(dict.fromkeys(purposes)),
            "locale": locale}


def _request_hash(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_consent(
    gw: Gateway,
    actor: Actor,
    *,
    subject_id: str,
    purposes: dict[str, str] | None = None,
    locale: str | None = None,
    tc_string: str | None = None,
    notice_id: str | None = None,
    source: dict | None = None,
    gpc: bool = False,
    idempotency_key: str | None = None,
) -> tuple[dict, bool]:
    """Record a set of choices; returns (receipt, created). Nothing is written on error."""
    purposes = purposes or {}
    decoded = None
    if tc_string is not None:
        try:
            decoded = tcf.parse_for_consent(tc_string)
        except tcf.TCFError as exc:
            raise InvalidRequest(
                f"the TC string is not valid: {exc.message}",
                errors=[FieldError("tc_string", exc.message)],
                code=exc.code,
            ) from exc
    choices = rules.resolve_choices(
        gw.policy,
        purposes,
        method=actor.method,
        tcf_consents=decoded.purposes_consent if decoded else None,
        gpc=gpc,
    )
    if not choices:
        raise InvalidRequest(
            "nothing to record: give 'purposes' or a 'tc_string'",
            errors=[FieldError("purposes", "at least one purpose is required without a tc_string")],
        )
    params = {"subject_id": subject_id, "purposes": purposes, "locale": locale,
              "tc_string": tc_string, "notice_id": notice_id, "source": source, "gpc": gpc}
    request_hash = _request_hash(params)
    for attempt in range(3):
        try:
            return _record(gw, actor, choices, params, decoded, request_hash, idempotency_key)
        except DuplicateKey:
            # another request with the same idempotency key won the race: replay its receipt
            if not idempotency_key or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record(
    gw: Gateway,
    actor: Actor,
    choices: list[rules.Choice],
    params: dict[str, Any],
    decoded: tcf.TCString | None,
    request_hash: str,
    idempotency_key: str | None,
) -> tuple[dict, bool]:
    subject_id = params["subject_id"]
    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    with gw.db.write() as s:
        repo = ConsentRepository(s)
        if idempotency_key:
            found = repo.idempotency(actor.id, idempotency_key)
            if found is not None:
                key_row, receipt_row = found
                if key_row.request_hash != request_hash:
                    raise Conflict(
                        "this Idempotency-Key was already used with a different request",
                        errors=[FieldError("Idempotency-Key", "reused with another body")],
                    )
                return {"subject_id": subject_id, **receipt_row.body}, False
        notice_id = params["notice_id"]
        if notice_id is not None:
            notice = repo.notice(notice_id)
            if notice is None or notice.subject != pseudonym:
                raise InvalidRequest(
                    "unknown notice_id",
                    errors=[FieldError("notice_id", "no notice with this id was served to "
                                                    "this subject")],
                )
        body = record_in(gw, s, actor, pseudonym, choices, params, decoded, now)
        if idempotency_key:
            repo.remember_idempotency(actor.id, idempotency_key, request_hash,
                                      body["receipt_id"], now)
    return {"subject_id": subject_id, **body}, True


def record_in(
    gw: Gateway,
    s: Transaction,
    actor: Actor,
    pseudonym: str,
    choices: list[rules.Choice],
    params: dict[str, Any],
    decoded: tcf.TCString | None,
    now: datetime,
) -> dict:
    """Apply `choices` in the caller's write transaction `s`: the receipt, one event per
    choice, the current-state rows and their audit events. Returns the receipt body."""
    repo = ConsentRepository(s)
    notice_id = params["notice_id"]
    version = ensure_stored(gw, s)
    repo.lock_subject(pseudonym, now)
    current = repo.records(pseudonym)
    before = dict(current)
    receipt_id = new_id("rcpt")
    lines, entries = [], []
    for choice in choices:
        purpose = gw.policy.purpose(choice.purpose)
        record = rules.next_record(
            purpose, current.get(choice.purpose), choice, at=now, receipt_id=receipt_id
        )
        entries.append((choice.value, record))
        current[choice.purpose] = record
        lines.append(
            {
                "purpose": record.purpose,
                "status": record.status,
                "choice": choice.value,
                "purpose_version": record.purpose_version,
                "method": record.method,
                "expires_at": _iso(record.expires_at),
            }
        )
    states = rules.states(gw.policy, current, now)
    body = {
        "receipt_id": receipt_id,
        "recorded_at": _iso(now),
        "policy_version": version,
        "notice_id": notice_id,
        "locale": params["locale"],
        "purposes": lines,
        "gpc_applied": [c.purpose for c in choices if c.method == rules.METHOD_GPC],
        "consent_mode": rules.consent_mode(gw.policy, states),
        "tcf": decoded.to_dict() if decoded else None,
    }
    # The receipt is complete before it is written: one INSERT, no update afterwards.
    repo.add_receipt({
        "id": receipt_id, "subject": pseudonym, "recorded_at": now, "policy_version": version,
        "actor": actor.id, "notice_id": notice_id, "locale": params["locale"],
        "gpc": params["gpc"], "tc_string": params["tc_string"], "source": params["source"],
        "body": body,
    })
    repo.append(pseudonym, entries)
    audit.record_each(s, "consent.recorded", actor=actor, at=now, subject=pseudonym, each=[
        {"purpose": record.purpose, "status": record.status, "method": record.method,
         "receipt_id": receipt_id, "policy_version": version}
        for _value, record in entries
    ])
    webhooks.consent_recorded(gw, s, actor, params["subject_id"], before, current, body, now)
    return body


def withdraw_all(gw: Gateway, actor: Actor, subject_id: str, *, gpc: bool = False) -> dict:
    """Art. 7(3): withdraw every consent-based purpose in one call."""
    choices = rules.withdraw_all(gw.policy, method=actor.method)
    params = {"subject_id": subject_id, "withdraw_all": True, "locale": None, "tc_string": None,
              "notice_id": None, "source": None, "gpc": gpc}
    receipt, _ = _record(gw, actor, choices, params, None, _request_hash(params), None)
    return receipt


def record_erasure(gw: Gateway, s: Transaction, actor: Actor, subject_id: str, now: datetime) -> dict | None:
    """Art. 17 stops processing: in the erasure's own transaction `s`, every consent-based
    purpose is recorded withdrawn (denied if it was never given) and every legitimate-interest
    purpose objected, method `erasure`, with a receipt like any other choice."""
    choices = rules.erasure_choices(gw.policy)
    if not choices:
        return None
    params = {"subject_id": subject_id, "erasure": True, "locale": None, "tc_string": None,
              "notice_id": None, "source": None, "gpc": False}
    return record_in(gw, s, actor, gw.pseudonymize(subject_id), choices, params, None, now)


def granted_since(gw: Gateway, s: Transaction, pseudonym: str, since: datetime) -> bool:
    """Whether the subject gave a consent (a consent-based purpose granted) after `since`."""
    purposes = [p.id for p in gw.policy.purposes if p.legal_basis == "consent"]
    return ConsentRepository(s).granted_since(pseudonym, since, purposes)


def current_state(gw: Gateway, subject_id: str, *, history: bool = False) -> dict:
    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    with gw.db.query() as conn:
        repo = ConsentRepository(conn)
        records = repo.records(pseudonym)
        events = repo.history(pseudonym) if history else None
    states = rules.states(gw.policy, records, now)
    webhooks.noticed_at_read(gw, subject_id, pseudonym, records, states, now)
    result = {
        "subject_id": subject_id,
        "policy_version": gw.policy.version,
        "evaluated_at": _iso(now),
        "purposes": [
            {
                "purpose": st.purpose,
                "legal_basis": st.legal_basis,
                "status": st.status,
                "effective": st.effective,
                "decided_at": _iso(st.decided_at),
                "expires_at": _iso(st.expires_at),
                "purpose_version": st.purpose_version,
                "current_version": gw.policy.purpose(st.purpose).version,
                "receipt_id": st.receipt_id,
                "method": st.method,
            }
            for st in states
        ],
        "consent_mode": rules.consent_mode(gw.policy, states),
    }
    if events is not None:
        for e in events:
            e["recorded_at"] = _iso(e["recorded_at"])
            e["expires_at"] = _iso(e["expires_at"])
        result["history"] = events
    return result
