"""Webhooks: subscriptions of downstream systems, and the events the gateway's changes emit.

`emit` is the one way an event enters the outbox. It is called inside the write transaction
of the change it announces, so that the change and its deliveries commit (or not) together:
an acknowledged change is never lost, a crash included. The delivery worker
(`services/webhooks_worker.py`) sends them, signed, at least once.

Subscriptions: a URL, the events, an optional purpose filter, a description, and a secret in
the Standard Webhooks format (`whsec_` + base64 of 32 random bytes), shown once and stored
wrapped by the master key ring. A rotated secret keeps signing beside the new one for 24 h.
"""

from __future__ import annotations

import base64
import json
import secrets as random_bytes
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog

from ..core import consent as rules
from ..core import webhooks as hooks
from ..core.actor import Actor
from ..core.consent import PurposeRecord, PurposeState
from ..core.errors import Conflict, FieldError, InvalidRequest, NotFound
from ..core.timefmt import iso
from ..security import envelope
from ..security.tokens import new_id
from ..store.db import Transaction
from ..store.errors import StoreError
from ..store.subjects import lock_subject
from ..store.webhook_models import Webhook, WebhookDelivery
from ..store.webhooks import Subscriber, WebhookRepository
from . import audit
from . import webhooks_http as transport
from .context import Gateway

log = structlog.get_logger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
OLD_SECRET_HOURS = 24
MAX_LOG = 500
FIELDS = ("url", "events", "purposes", "description")


# -- emitting (inside the transaction of the change) -----------------------------------------


def _aad(message_id: str) -> bytes:
    return f"webhook-delivery:{message_id}".encode()


def _sealed(gw: Gateway, message_id: str, body: bytes) -> dict[str, Any]:
    """The body encrypted under a data key of its own, wrapped by the current master key."""
    dek = envelope.new_data_key()
    wrapped = envelope.wrap(gw.keyring, dek, subject=_aad(message_id).decode())
    return {"kek_id": wrapped.kek_id, "wrapped_key": wrapped.blob,
            "payload": envelope.encrypt_value(dek, body, aad=_aad(message_id))}


def open_body(gw: Gateway, message_id: str, kek_id: str, wrapped_key: bytes, payload: bytes) -> bytes:
    """The plaintext body of a delivery (the worker, just before sending it)."""
    dek = envelope.unwrap(gw.keyring, envelope.WrappedKey(kek_id, wrapped_key),
                          subject=_aad(message_id).decode())
    return envelope.decrypt_value(dek, payload, aad=_aad(message_id))


def emit(gw: Gateway, session: Transaction, event_type: str, data: Mapping[str, Any], *,
         subject: str | None = None, at: datetime | None = None) -> int:
    """Queue `event_type` with `data` for every active subscription to it, in the caller's
    write transaction `session` (committed, or not, with the change).

    `subject` is the raw id of the subject the event is about, if any (it is also in `data`):
    each subject's deliveries to one subscription are sent in the order they were emitted.
    Call it where the subject's row lock is held (services/consent.py, profiles.py do), so that
    this order is the order of the changes. A `consent.changed` reaches a subscription with a
    purpose filter only with the changes of its purposes, and not at all without one. Returns
    how many deliveries were queued."""
    if event_type not in hooks.EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    return _queue(gw, session, _subscribers(session, event_type), event_type, data, subject, at)


def _subscribers(session: Transaction, event_type: str) -> list[Subscriber]:
    return [s for s in WebhookRepository(session).subscribers() if event_type in s.events]


def _queue(gw: Gateway, session: Transaction, subscribers: Sequence[Subscriber], event_type: str,
           data: Mapping[str, Any], subject: str | None, at: datetime | None) -> int:
    if not subscribers:
        return 0
    at = at or gw.now()
    key = gw.pseudonymize(subject) if subject is not None else None
    rows = []
    for sub in subscribers:
        payload: Mapping[str, Any] | None = data
        if event_type == hooks.CONSENT_CHANGED:
            payload = hooks.only_purposes(data, sub.purposes)
        if payload is None:
            continue
        message_id = new_id("msg")
        body = json.dumps(hooks.body(event_type, at, payload), separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
        rows.append({"message_id": message_id, "webhook_id": sub.id, "event_type": event_type,
                     "ordering_key": key, "occurred_at": at, "status": hooks.PENDING,
                     "attempts": 0, "next_attempt_at": at, "last_attempt_at": None,
                     "finished_at": None, "response_status": None, "latency_ms": None,
                     "error": None, **_sealed(gw, message_id, body)})
    WebhookRepository(session).add_deliveries(rows)
    return len(rows)


def consent_recorded(gw: Gateway, session: Transaction, actor: Actor, subject_id: str,
                     before: Mapping[str, PurposeRecord], after: Mapping[str, PurposeRecord],
                     receipt: Mapping[str, Any], now: datetime) -> int:
    """`consent.changed` for the purposes whose status a recorded set of choices moved
    (banner, API, GPC, TCF, erasure, linking: whatever recorded them)."""
    subscribers = _subscribers(session, hooks.CONSENT_CHANGED)
    if not subscribers:
        return 0  # the one statement a change costs without a subscription
    found = hooks.changes(rules.states(gw.policy, before, now), rules.states(gw.policy, after, now))
    if not found:
        return 0
    return _queue(gw, session, subscribers, hooks.CONSENT_CHANGED, {
        "subject_id": subject_id,
        "changes": [c.as_dict() for c in found],
        "receipt_id": receipt["receipt_id"],
        "method": hooks.common_method(found, actor.method),
        "recorded_at": receipt["recorded_at"],
        "policy_version": receipt["policy_version"],
    }, subject_id, now)


def subject_erased(gw: Gateway, session: Transaction, subject_id: str, now: datetime) -> int:
    return emit(gw, session, hooks.SUBJECT_ERASED, {"subject_id": subject_id, "erased_at": iso(now)},
                subject=subject_id, at=now)


def policy_changed(gw: Gateway, session: Transaction, version: str, now: datetime) -> int:
    """`policy.changed` when a policy version is stored for the first time, with the consent
    purposes whose new version needs every consent given again."""
    previous = WebhookRepository(session).previous_policy_files(version)
    versions = hooks.purpose_versions((previous or {}).get("purposes.yaml"))
    return emit(gw, session, hooks.POLICY_CHANGED, {
        "policy_version": version,
        "reconsent_required": hooks.reconsent_required(gw.policy, versions),
    }, at=now)


_NOTICED = {rules.EXPIRED: hooks.METHOD_EXPIRY, rules.RECONSENT_REQUIRED: hooks.METHOD_POLICY_CHANGE}


def noticed_at_read(gw: Gateway, subject_id: str, pseudonym: str,
                    records: Mapping[str, PurposeRecord], states: Sequence[PurposeState],
                    now: datetime) -> int:
    """A read found a consent that expired, or whose purpose's new version needs it given
    again: announce it as `consent.changed` (once per grant and status). Costs nothing when
    no state changed without a choice; a failure to announce is retried by the next read."""
    derived = [st for st in states if st.status in _NOTICED and st.receipt_id is not None
               and records.get(st.purpose) is not None
               and records[st.purpose].status == rules.GRANTED]
    if not derived:
        return 0
    try:
        return _announce_noticed(gw, subject_id, pseudonym, derived, now)
    except StoreError as exc:
        log.warning("webhook.notice_failed", error=type(exc).__name__)
        return 0


def _announce_noticed(gw: Gateway, subject_id: str, pseudonym: str,
                      derived: Sequence[PurposeState], now: datetime) -> int:
    keys = [(st.purpose, str(st.receipt_id), st.status) for st in derived]
    with gw.db.read() as s:
        repo = WebhookRepository(s)
        if not any(hooks.CONSENT_CHANGED in sub.events for sub in repo.subscribers()):
            return 0
        fresh = [k for k in keys if k not in repo.noticed(pseudonym, keys)]
    if not fresh:
        return 0
    sent = 0
    with gw.db.write() as s:
        lock_subject(s, pseudonym, now)
        repo = WebhookRepository(s)
        by_key = {(st.purpose, str(st.receipt_id), st.status): st for st in derived}
        for key in fresh:
            if not repo.notice_once(pseudonym, *key, now):
                continue
            st = by_key[key]
            change = hooks.Change(st.purpose, rules.GRANTED, st.status, False, _NOTICED[st.status],
                                  st.expires_at)
            sent += emit(gw, s, hooks.CONSENT_CHANGED, {
                "subject_id": subject_id, "changes": [change.as_dict()], "receipt_id": st.receipt_id,
                "method": _NOTICED[st.status], "recorded_at": iso(now),
                "policy_version": gw.policy.version,
            }, subject=subject_id, at=now)
    return sent


# -- subscriptions ---------------------------------------------------------------------------


def _new_secret() -> tuple[str, bytes]:
    raw = random_bytes.token_bytes(SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(raw).decode(), raw


def _secret_subject(webhook_id: str) -> str:
    return f"webhook-secret:{webhook_id}"


def signing_secrets(gw: Gateway, webhook_id: str, kek_id: str, wrapped: bytes,
                    previous_kek_id: str | None, previous_wrapped: bytes | None,
                    previous_until: datetime | None, now: datetime) -> list[bytes]:
    """The secrets that sign a delivery now: the current one, and the previous one for 24 h
    after a rotation."""
    subject = _secret_subject(webhook_id)
    out = [envelope.unwrap(gw.keyring, envelope.WrappedKey(kek_id, wrapped), subject=subject)]
    if previous_kek_id and previous_wrapped and previous_until and previous_until > now:
        out.append(envelope.unwrap(gw.keyring, envelope.WrappedKey(previous_kek_id, previous_wrapped),
                                   subject=subject))
    return out


def _check(gw: Gateway, values: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """The subscription's fields, checked; raises InvalidRequest naming every bad field."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    if "url" in values or not partial:
        url = values.get("url")
        problems = hooks.url_problems(url, https_only=gw.settings.production)
        if not problems:
            problems = transport.address_problems(str(url), gw.settings.webhook_allow_private)
        errors += problems
        out["url"] = url
    if "events" in values or not partial:
        events = values.get("events")
        problems = hooks.event_problems(events)
        errors += problems
        out["events"] = list(dict.fromkeys(events)) if not problems and isinstance(events, list) else events
    if "purposes" in values:
        purposes = values.get("purposes")
        if purposes is not None:
            if not isinstance(purposes, list) or not purposes:
                errors.append(FieldError("purposes", "a non-empty list of purposes, or null for all"))
            else:
                unknown = [FieldError(f"purposes[{i}]", f"unknown purpose {str(p)[:70]!r}")
                           for i, p in enumerate(purposes)
                           if not isinstance(p, str) or gw.policy.purpose(p) is None]
                errors += unknown
                purposes = list(dict.fromkeys(purposes)) if not unknown else purposes
        out["purposes"] = purposes
    elif not partial:
        out["purposes"] = None
    if "description" in values:
        description = values.get("description")
        if description is not None and (not isinstance(description, str)
                                        or len(description) > hooks.MAX_DESCRIPTION):
            errors.append(FieldError("description", f"a text of at most {hooks.MAX_DESCRIPTION} "
                                                    "characters, or null"))
        out["description"] = description
    elif not partial:
        out["description"] = None
    if errors:
        raise InvalidRequest("the subscription is not valid", errors=errors)
    return out


def _view(row: Webhook, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    return {
        "webhook_id": row.id,
        "url": row.url,
        "events": list(row.events),
        "purposes": list(row.purposes) if row.purposes is not None else None,
        "description": row.description,
        "status": row.status,
        "disabled_reason": row.disabled_reason,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "previous_secret_until": iso(row.previous_until),
        "failing_since": iso(row.failing_since),
        "deliveries": {s: int((counts or {}).get(s, 0)) for s in hooks.DELIVERY_STATUSES},
    }


def _actor_id(actor: Actor | str) -> str:
    return actor if isinstance(actor, str) else actor.id


def create(gw: Gateway, actor: Actor | str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A new subscription; the answer carries its `secret`, shown this once."""
    checked = _check(gw, values, partial=False)
    now = gw.now()
    webhook_id = new_id("whk")
    secret, raw = _new_secret()
    wrapped = envelope.wrap(gw.keyring, raw, subject=_secret_subject(webhook_id))
    with gw.db.write() as s:
        row = WebhookRepository(s).add({
            "id": webhook_id, **checked, "status": hooks.ACTIVE, "disabled_reason": None,
            "secret_kek_id": wrapped.kek_id, "secret_wrapped": wrapped.blob,
            "previous_kek_id": None, "previous_wrapped": None, "previous_until": None,
            "failing_since": None, "created_by": _actor_id(actor), "created_at": now,
            "updated_at": now,
        })
        audit.record(s, "webhook.created", actor=actor, at=now, webhook_id=webhook_id,
                     host=urlsplit(checked["url"]).hostname, events=checked["events"],
                     purposes=checked["purposes"])
        view = _view(row)
    return {**view, "secret": secret}


def list_all(gw: Gateway) -> dict[str, Any]:
    with gw.db.read() as s:
        repo = WebhookRepository(s)
        rows = repo.all()
        counts = repo.counts([r.id for r in rows])
        return {"webhooks": [_view(r, counts.get(r.id)) for r in rows]}


def _found(repo: WebhookRepository, webhook_id: str, *, lock: bool = False) -> Webhook:
    row = repo.get(webhook_id, lock=lock) if isinstance(webhook_id, str) else None
    if row is None:
        raise NotFound(f"no webhook with id {webhook_id!r}")
    return row


def show(gw: Gateway, webhook_id: str) -> dict[str, Any]:
    with gw.db.read() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id)
        return _view(row, repo.counts([row.id]).get(row.id))


def update(gw: Gateway, actor: Actor | str, webhook_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Change the URL, events, purposes, description or status (`active` | `disabled`).
    Switching a subscription on again resumes the deliveries it holds."""
    unknown = sorted(set(values) - {*FIELDS, "status"})
    if unknown:
        raise InvalidRequest("unknown fields", errors=[FieldError(k, "unknown field") for k in unknown])
    status = values.get("status")
    if "status" in values and status not in (hooks.ACTIVE, hooks.DISABLED):
        raise InvalidRequest("'status' is active or disabled",
                             errors=[FieldError("status", "active or disabled")])
    checked = _check(gw, {k: v for k, v in values.items() if k != "status"}, partial=True)
    now = gw.now()
    with gw.db.write() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id, lock=True)
        for name, value in checked.items():
            setattr(row, name, value)
        if status is not None and status != row.status:
            row.status = status
            row.disabled_reason = "manual" if status == hooks.DISABLED else None
            row.failing_since = None
        row.updated_at = now
        s.flush()
        audit.record(s, "webhook.updated", actor=actor, at=now, webhook_id=row.id,
                     fields=sorted([*checked, *(["status"] if status is not None else [])]),
                     status=row.status)
        return _view(row, repo.counts([row.id]).get(row.id))


def disable(gw: Gateway, actor: Actor | str, webhook_id: str) -> dict[str, Any]:
    return update(gw, actor, webhook_id, {"status": hooks.DISABLED})


def delete(gw: Gateway, actor: Actor | str, webhook_id: str) -> dict[str, Any]:
    """Delete the subscription with its delivery log and every body still waiting."""
    now = gw.now()
    with gw.db.write() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id, lock=True)
        dropped = repo.remove(row.id)
        audit.record(s, "webhook.deleted", actor=actor, at=now, webhook_id=row.id,
                     deliveries_deleted=dropped)
    return {"webhook_id": webhook_id, "deleted_at": iso(now), "deliveries_deleted": dropped}


def rotate_secret(gw: Gateway, actor: Actor | str, webhook_id: str) -> dict[str, Any]:
    """A new secret, shown once; the one it replaces signs beside it for 24 h."""
    now = gw.now()
    secret, raw = _new_secret()
    wrapped = envelope.wrap(gw.keyring, raw, subject=_secret_subject(webhook_id))
    with gw.db.write() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id, lock=True)
        row.previous_kek_id, row.previous_wrapped = row.secret_kek_id, row.secret_wrapped
        row.previous_until = now + timedelta(hours=OLD_SECRET_HOURS)
        row.secret_kek_id, row.secret_wrapped = wrapped.kek_id, wrapped.blob
        row.updated_at = now
        s.flush()
        audit.record(s, "webhook.secret_rotated", actor=actor, at=now, webhook_id=row.id,
                     previous_until=iso(row.previous_until))
        view = _view(row, repo.counts([row.id]).get(row.id))
    return {**view, "secret": secret}


# -- the delivery log, retry and replay ------------------------------------------------------


def delivery_id(row: WebhookDelivery) -> str:
    return f"dlv_{row.id}"


def parse_delivery_id(value: str) -> int | None:
    if not isinstance(value, str) or not value.startswith("dlv_") or not value[4:].isdigit() \
            or len(value) > 24:
        return None
    return int(value[4:])


def _delivery_view(row: WebhookDelivery) -> dict[str, Any]:
    """A line of the log: never the body, nor the subject."""
    return {
        "delivery_id": delivery_id(row),
        "webhook_id": row.webhook_id,
        "message_id": row.message_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "occurred_at": iso(row.occurred_at),
        "last_attempt_at": iso(row.last_attempt_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status in hooks.OPEN else None,
        "finished_at": iso(row.finished_at),
        "response_status": row.response_status,
        "latency_ms": row.latency_ms,
        "error": row.error,
        "retryable": row.status == hooks.FAILED and row.payload is not None,
    }


def deliveries(gw: Gateway, webhook_id: str, *, status: str | None = None,
               limit: int = 100) -> dict[str, Any]:
    """The delivery log: failed first, then retrying, pending and delivered; newest first."""
    if status is not None and status not in hooks.DELIVERY_STATUSES:
        raise InvalidRequest(f"'status' is one of {', '.join(hooks.DELIVERY_STATUSES)}",
                             errors=[FieldError("status", "unknown delivery status")])
    if not 1 <= limit <= MAX_LOG:
        raise InvalidRequest(f"'limit' must be 1 to {MAX_LOG}",
                             errors=[FieldError("limit", f"1 to {MAX_LOG}")])
    with gw.db.read() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id)
        lines = [_delivery_view(d) for d in repo.deliveries(row.id, status=status, limit=limit)]
    return {"webhook_id": webhook_id, "deliveries": lines, "count": len(lines)}


def retry(gw: Gateway, actor: Actor | str, webhook_id: str, delivery: str) -> dict[str, Any]:
    """Send one failed delivery again (same `webhook-id`), due now, with fresh attempts."""
    number = parse_delivery_id(delivery)
    now = gw.now()
    with gw.db.write() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id)
        found = repo.delivery(row.id, number) if number is not None else None
        if found is None:
            raise NotFound(f"no delivery {delivery!r} of webhook {webhook_id!r}")
        if found.status != hooks.FAILED:
            raise Conflict(f"the delivery is {found.status}: only a failed delivery is retried",
                           code="not_failed")
        if found.payload is None:
            raise Conflict("the delivery's body was deleted when its retry window ended",
                           code="body_deleted")
        repo.resend([found.id], now)
        audit.record(s, "webhook.retried", actor=actor, at=now, webhook_id=row.id,
                     message_id=found.message_id)
        s.flush()
        s.refresh(found)
        return _delivery_view(found)


def replay(gw: Gateway, actor: Actor | str, webhook_id: str, since: datetime) -> dict[str, Any]:
    """Send again every event since `since` whose body the gateway still holds (same
    `webhook-id`s). A delivered event's body (with its raw subject id) is deleted on delivery,
    so those are counted as `unavailable`, not sent."""
    now = gw.now()
    with gw.db.write() as s:
        repo = WebhookRepository(s)
        row = _found(repo, webhook_id)
        again, still_open, gone = repo.replayable(row.id, since)
        repo.resend(again, now)
        audit.record(s, "webhook.replayed", actor=actor, at=now, webhook_id=row.id,
                     since=iso(since), replayed=len(again), unavailable=gone)
    return {"webhook_id": webhook_id, "since": iso(since), "replayed": len(again),
            "already_queued": still_open, "unavailable": gone}


# -- records of processing -------------------------------------------------------------------


def recipients(gw: Gateway, purpose: str) -> list[dict[str, Any]]:
    """The active subscriptions that receive changes of `purpose` (Art. 30(1)(d) recipients):
    every subscription to consent or subject events without a purpose filter, or with one
    that names the purpose."""
    with gw.db.read() as s:
        rows = [r for r in WebhookRepository(s).all() if r.status == hooks.ACTIVE]
    out = []
    for r in rows:
        personal = [e for e in r.events if e != hooks.POLICY_CHANGED]
        if not personal or (r.purposes is not None and purpose not in r.purposes):
            continue
        out.append({"type": "webhook", "id": r.id,
                    "name": r.description or urlsplit(r.url).hostname or r.url,
                    "url": r.url, "events": personal})
    return out
