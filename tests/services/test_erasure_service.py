"""Erasure in the services and the store, on both databases: one transaction, a permanent record.

The withdrawals and objections an erasure records are written in the erasure's own
transaction: when one part fails, nothing of it is kept. `ConsentRepository.granted_since`
is what lets a subject's profile be written again after a new consent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from gateway.core.actor import CLI, Actor
from gateway.core.errors import Conflict
from gateway.services import consent, profiles
from gateway.store.consents import ConsentRepository

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BANNER = Actor(kind="property", id="prop_test")
BACKEND = Actor(kind="client", id="cli_backend", scopes=frozenset({"profile:write"}))


def rows(gw, sql: str, **params) -> list:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def test_erasure_and_its_withdrawals_are_one_transaction(gw, monkeypatch):
    with freeze_time(T0):
        consent.record_consent(gw, BANNER, subject_id="u-1", purposes={"personalization": "granted"})
        profiles.update_profile(gw, BACKEND, "u-1", {"loyalty_tier": "gold"})
        before = {t: rows(gw, f"SELECT COUNT(*) FROM {t}")[0][0]  # noqa: S608 (fixed names)
                  for t in ("consent_events", "receipts", "erasures", "profile_values", "audit_events")}

        def broken(*args, **kwargs):
            raise RuntimeError("the disk is full")

        monkeypatch.setattr(consent, "record_in", broken)
        with pytest.raises(RuntimeError):
            profiles.erase_subject(gw, CLI, "u-1")
        after = {t: rows(gw, f"SELECT COUNT(*) FROM {t}")[0][0]  # noqa: S608 (fixed names)
                 for t in before}
    assert after == before
    assert consent.current_state(gw, "u-1")["purposes"][0]["status"] == "granted"


def test_erasure_records_one_receipt_with_method_erasure(gw):
    with freeze_time(T0) as frozen:
        consent.record_consent(gw, BANNER, subject_id="u-1",
                               purposes={"personalization": "granted", "analytics": "granted"})
        frozen.tick(timedelta(minutes=1))
        result = profiles.erase_subject(gw, CLI, "u-1")
    pseudonym = gw.pseudonymize("u-1")
    events = rows(gw, "SELECT purpose, value, status, method, receipt_id FROM consent_events "
                      "WHERE subject = :s AND method = 'erasure' ORDER BY id", s=pseudonym)
    assert [(e.purpose, e.value, e.status) for e in events] == [
        ("personalization", "denied", "withdrawn"), ("ads", "denied", "denied"),
        ("health_offers", "denied", "denied"), ("analytics", "denied", "objected")]
    [receipt] = {e.receipt_id for e in events}
    [(actor, recorded_at)] = rows(gw, "SELECT actor, recorded_at FROM receipts WHERE id = :r", r=receipt)
    assert actor == "cli"
    assert result["erased_at"] == "2026-11-20T12:01:00Z"
    [(erased_at,)] = rows(gw, "SELECT erased_at FROM erasures WHERE subject = :s", s=pseudonym)
    assert erased_at is not None


def test_granted_since_counts_only_consents_given_after(gw):
    with freeze_time(T0) as frozen:
        consent.record_consent(gw, BANNER, subject_id="u-1", purposes={"personalization": "granted"})
        frozen.tick(timedelta(minutes=1))
        consent.record_consent(gw, BANNER, subject_id="u-1",
                               purposes={"ads": "denied", "analytics": "granted"})
        frozen.tick(timedelta(minutes=1))
        consent.record_consent(gw, BANNER, subject_id="u-1", purposes={"ads": "granted"})
    pseudonym = gw.pseudonymize("u-1")
    with gw.db.write() as s:
        repo = ConsentRepository(s)
        assert repo.granted_since(pseudonym, T0 - timedelta(seconds=1), ["personalization"])
        assert not repo.granted_since(pseudonym, T0, ["personalization"])
        assert repo.granted_since(pseudonym, T0, ["analytics"])  # the store does not know legal bases
        assert not repo.granted_since(pseudonym, T0 + timedelta(minutes=1), ["personalization"])
        assert repo.granted_since(pseudonym, T0 + timedelta(minutes=1), ["ads"])
        assert not repo.granted_since(pseudonym, T0 + timedelta(minutes=2), ["ads"])
        assert not repo.granted_since(pseudonym, T0, [])
        assert not repo.granted_since(gw.pseudonymize("nobody"), T0 - timedelta(days=1), ["ads"])


def test_a_profile_write_for_an_erased_subject_changes_nothing(gw):
    with freeze_time(T0) as frozen:
        profiles.erase_subject(gw, CLI, "u-1")
        frozen.tick(timedelta(seconds=1))
        audit_before = rows(gw, "SELECT COUNT(*) FROM audit_events")[0][0]
        with pytest.raises(Conflict) as refused:
            profiles.update_profile(gw, BACKEND, "u-1", {"loyalty_tier": "gold"})
        assert refused.value.extra == {"code": "subject_erased", "erased_at": "2026-11-20T12:00:00Z"}
        assert rows(gw, "SELECT COUNT(*) FROM subject_keys")[0][0] == 0
        assert rows(gw, "SELECT COUNT(*) FROM audit_events")[0][0] == audit_before
        # a legitimate-interest objection lifted is not a consent
        consent.record_consent(gw, BANNER, subject_id="u-1", purposes={"analytics": "granted"})
        with pytest.raises(Conflict):
            profiles.update_profile(gw, BACKEND, "u-1", {"loyalty_tier": "gold"})
        frozen.tick(timedelta(seconds=1))
        consent.record_consent(gw, BANNER, subject_id="u-1", purposes={"health_offers": "granted"})
        assert profiles.update_profile(gw, BACKEND, "u-1", {"loyalty_tier": "gold"})["updated"] == [
            "loyalty_tier"]
    assert len(rows(gw, "SELECT * FROM erasures")) == 1
