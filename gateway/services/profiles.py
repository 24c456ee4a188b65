"""Profiles: encrypted writes, purpose-filtered reads, subject access, erasure, retention.

`read_view` is the only way attribute values leave the gateway: it computes the
permitted view with `core.view.permitted_view` and audits the release (names
only) in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from ..core import attributes as catalogue
from ..core.actor import Actor
from ..core.audit_chain import timestamp
from ..core.errors import Conflict, FieldError, InvalidRequest
from ..core.policy import Attribute
from ..core.timefmt import iso as _iso
from ..core.view import PermittedView, StoredValue, permitted_view
from ..security import envelope
from ..store.audit import AuditRepository
from ..store.consents import ConsentRepository
from ..store.db import Transaction
from ..store.decisions import DecisionRepository
from ..store.profiles import ProfileRepository, StoredKey
from ..store.subjects import lock_subject
from . import audit, webhooks
from .consent import current_state, granted_since, record_erasure
from .context import Gateway

log = structlog.get_logger(__name__)



def _aad(pseudonym: str, attribute: str) -> bytes:
    return f"{pseudonym}:{attribute}".encode()


def _known(gw: Gateway, name: str) -> Attribute:
    """An attribute the policy defines: a validated patch and a decrypted profile name no other."""
    attribute = gw.policy.attribute(name)
    if attribute is None:
        raise KeyError(f"attribute {name!r} is not in the policy")
    return attribute


def _wrapped(stored: StoredKey) -> envelope.WrappedKey:
    return envelope.WrappedKey(stored.kek_id, stored.wrapped)


def _data_key(gw: Gateway, repo: ProfileRepository, pseudonym: str, now: datetime) -> bytes:
    """The subject's data key for writing, created (and wrapped) on the first write."""
    stored = repo.key(pseudonym)
    if stored is None:
        dek = envelope.new_data_key()
        wrapped = envelope.wrap(gw.keyring, dek, subject=pseudonym)
        repo.add_key(pseudonym, wrapped.kek_id, wrapped.blob, now)
        return dek
    return envelope.unwrap(gw.keyring, _wrapped(stored), subject=pseudonym)


def _decrypt_all(gw: Gateway, repo: ProfileRepository, pseudonym: str) -> dict[str, StoredValue]:
    stored, rows = repo.sealed(pseudonym)
    if stored is None or not rows:
        return {}
    dek = envelope.unwrap(gw.keyring, _wrapped(stored), subject=pseudonym)
    profile = {}
    for row in rows:
        attribute = gw.policy.attribute(row.attribute)
        if attribute is None:
            continue  # no longer in the catalogue: never released, purged by `purge`
        plaintext = envelope.decrypt_value(dek, row.ciphertext, aad=_aad(pseudonym, row.attribute))
        try:
            value = catalogue.decode_value(attribute, plaintext)
        except ValueError:
            log.warning("profile.value_unreadable", attribute=row.attribute)
            continue  # the catalogue changed the type: withhold rather than fail the read
        profile[row.attribute] = StoredValue(value, row.written_at)
    return profile


def update_profile(gw: Gateway, actor: Actor, subject_id: str, changes: Any) -> dict:
    """Merge attributes (None removes); all or nothing; audited as `profile.updated`."""
    to_set, to_remove = catalogue.validate_patch(gw.policy, changes)
    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    with gw.db.write() as s:
        lock_subject(s, pseudonym, now)
        repo = ProfileRepository(s)
        erasure = repo.erasure(pseudonym)
        if erasure is not None and not granted_since(gw, s, pseudonym, erasure.erased_at):
            raise Conflict("the subject was erased: a profile write needs a consent the subject "
                           "gave after the erasure", code="subject_erased",
                           erased_at=_iso(erasure.erased_at))
        if to_set:
            dek = _data_key(gw, repo, pseudonym, now)
            for name, value in to_set.items():
                plaintext = catalogue.encode_value(_known(gw, name), value)
                repo.put(pseudonym, name, envelope.encrypt_value(dek, plaintext,
                                                                 aad=_aad(pseudonym, name)), now)
        removed = repo.remove(pseudonym, to_remove)
        audit.record(s, "profile.updated", actor=actor, at=now, subject=pseudonym,
                     attributes=sorted(to_set), removed=sorted(to_remove) or None)
    return {"subject_id": subject_id, "updated": sorted(to_set), "removed": sorted(to_remove),
            "absent": sorted(set(to_remove) - set(removed)) or None, "updated_at": _iso(now)}


def _view(gw: Gateway, s: Transaction, pseudonym: str, purpose: str, now: datetime) -> PermittedView:
    records = ConsentRepository(s).records(pseudonym)
    profile = _decrypt_all(gw, ProfileRepository(s), pseudonym)
    return permitted_view(gw.policy, records, profile, purpose, now)


def permitted(gw: Gateway, actor: Actor, subject_id: str, purpose: str, *,
              audit_type: str | None = "profile.released", **audit_data: Any) -> PermittedView:
    """The permitted view for `purpose` now, with its release audited (names only)."""
    if gw.policy.purpose(purpose) is None:
        raise InvalidRequest("unknown purpose", errors=[FieldError("purpose",
                                                                   f"unknown purpose {purpose!r}")])
    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    if not audit_type:
        # the caller audits what it does with the view (a decision, in its own transaction)
        with gw.db.read() as s:
            return _view(gw, s, pseudonym, purpose, now)
    with gw.db.write() as s:
        view = _view(gw, s, pseudonym, purpose, now)
        audit.record(s, audit_type, actor=actor, at=now, subject=pseudonym, purpose=purpose,
                     attributes=sorted(view.released),
                     withheld=[w.attribute for w in view.withheld] or None,
                     policy_version=gw.policy.version, **audit_data)
    return view


def read_view(gw: Gateway, actor: Actor, subject_id: str, purpose: str) -> dict:
    view = permitted(gw, actor, subject_id, purpose)
    return {
        "subject_id": subject_id,
        "purpose": purpose,
        "policy_version": gw.policy.version,
        "effective": view.effective,
        "status": view.state.status,
        "attributes": dict(view.released),
        "withheld": [w.as_dict() for w in view.withheld],
    }


def export_subject(gw: Gateway, actor: Actor, subject_id: str) -> dict:
    """GDPR Art. 15/20: everything held about the subject, decrypted, machine-readable."""
    from .reports import processing_records

    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    with gw.db.write() as s:
        erasure = ProfileRepository(s).erasure(pseudonym)
        audit.record(s, "subject.exported", actor=actor, at=now, subject=pseudonym)
    audit.seal(gw, wait=True)
    generated = _iso(now)
    # After an erasure the profile and decisions are gone; the consent history stays as proof,
    # with the withdrawals and objections the erasure recorded.
    consents = current_state(gw, subject_id, history=True)
    with gw.db.read() as s:
        repo = ProfileRepository(s)
        profile = _decrypt_all(gw, repo, pseudonym)
        notices = ConsentRepository(s).notices_of(pseudonym)
        decisions = DecisionRepository(s).of_subject(pseudonym)
        events = AuditRepository(s).of_subject(pseudonym)
    attributes = []
    for name, stored in profile.items():
        a = _known(gw, name)
        attributes.append({
            "attribute": name, "value": stored.value, "type": a.type,
            "data_category": a.data_category, "special_category": a.special_category,
            "purposes": list(a.purposes), "written_at": _iso(stored.written_at),
            "retention_days": a.retention_days,
            "delete_after": _iso(stored.written_at + timedelta(days=a.retention_days))
            if a.retention_days else None,
        })
    report: dict[str, Any] = processing_records(gw)
    return {
        "subject_id": subject_id,
        "generated_at": generated,
        "erasure": {"erased_at": _iso(erasure.erased_at), "actor": erasure.actor}
        if erasure is not None else None,
        "consents": {k: v for k, v in consents.items() if k != "subject_id"},
        "notices": [{"notice_id": n.id, "purposes": n.purposes, "locale": n.locale,
                     "served_at": _iso(n.served_at), "policy_version": n.policy_version}
                    for n in notices],
        "profile": attributes,
        "decisions": [
            {"decision_id": d.id, "placement": d.placement, "purpose": d.purpose,
             "made_at": _iso(d.made_at), "personalized": d.personalized, "content": d.content,
             "explanation": d.explanation, "policy_version": d.policy_version}
            for d in decisions
        ],
        "audit_events": [
            {"seq": e.seq, "at": timestamp(e.at), "type": e.type, "actor": e.actor, **e.data}
            for e in events
        ],
        "processing": {
            "controller": report["controller"],
            "purposes": [
                {k: a[k] for k in ("purpose", "title", "legal_basis", "legal_basis_text", "data_use",
                                   "data_categories", "recipients", "retention")}
                for a in report["activities"]
            ],
        },
    }


def erase_subject(gw: Gateway, actor: Actor, subject_id: str) -> dict:
    """GDPR Art. 17: destroy the data key (crypto-shredding) and delete the profile.

    Consent events, receipts and the notices they point to stay as proof under the
    pseudonym (they hold no attribute value); decisions about the person go. Processing
    stops in the same transaction: every consent purpose is recorded withdrawn and every
    legitimate-interest purpose objected (method `erasure`). The erasure record is permanent
    (a later erasure moves its time); profile writes are refused until a new consent.
    """
    pseudonym = gw.pseudonymize(subject_id)
    now = gw.now()
    with gw.db.write() as s:
        lock_subject(s, pseudonym, now)
        repo = ProfileRepository(s)
        values = repo.erase(pseudonym)
        decisions = DecisionRepository(s).erase(pseudonym)
        repo.record_erasure(pseudonym, actor.id, now)
        receipt = record_erasure(gw, s, actor, subject_id, now)
        audit.record(s, "subject.erased", actor=actor, at=now, subject=pseudonym,
                     values_deleted=values, decisions_deleted=decisions, data_key="destroyed",
                     receipt_id=receipt["receipt_id"] if receipt else None)
        webhooks.subject_erased(gw, s, subject_id, now)
    return {"subject_id": subject_id, "erased_at": _iso(now)}


def purge_expired(gw: Gateway, actor: Actor | str = "cli") -> dict:
    """Storage limitation (Art. 5(1)(e)): delete values older than their retention_days,
    and values of attributes the catalogue no longer has."""
    now = gw.now()
    purged: dict[str, int] = {}
    with gw.db.write() as s:
        repo = ProfileRepository(s)
        known = {a.id for a in gw.policy.attributes}
        for a in gw.policy.attributes:
            if not a.retention_days:
                continue
            n = repo.purge_older(a.id, now - timedelta(days=a.retention_days))
            if n:
                purged[a.id] = n
        orphans = repo.purge_unknown(known)
        if orphans:
            purged["(not in the catalogue)"] = orphans
        audit.record(s, "profile.purged", actor=actor, at=now, counts=purged or None)
    return {"purged": purged, "at": _iso(now)}


def rotate_master(gw: Gateway, actor: Actor | str = "cli", *, new_dev_key: bool = False) -> dict:
    """Re-wrap every data key under the current key-encryption key; values are untouched."""
    if new_dev_key:
        if gw.settings.master_key:
            raise RuntimeError("GATEWAY_MASTER_KEY is set: put the new key first in it (keep the "
                               "old ones after it, comma-separated) and run this again")
        gw.keyring = envelope.rotate_dev_master_key(gw.settings.instance_dir)
    current = gw.keyring.current
    now = gw.now()

    def rewrap(stored: StoredKey) -> tuple[str, bytes]:
        wrapped = envelope.rewrap(gw.keyring, _wrapped(stored), subject=stored.subject)
        return wrapped.kek_id, wrapped.blob

    with gw.db.write() as s:
        count = ProfileRepository(s).rewrap_all(current, rewrap, now)
        audit.record(s, "key.rotated", actor=actor, at=now, key="master", key_id=current,
                     rewrapped=count)
    return {"key_id": current, "rewrapped": count}
