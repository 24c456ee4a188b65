"""Consent rules: table-driven cases and properties, no app, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import consent as c
from gateway.core.errors import InvalidRequest
from gateway.core.policy import Controller, Notice, Policy, Purpose

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EN = {"en": Notice("t", "d")}


def purpose(pid="p", basis="consent", version=1, lifetime=30, **kw) -> Purpose:
    return Purpose(id=pid, version=version, legal_basis=basis, data_use="personalize",
                   notices=EN, lifetime_days=lifetime, **kw)


def record(status="granted", version=1, at=T0, lifetime=30, pid="p") -> c.PurposeRecord:
    expires = at + timedelta(days=lifetime) if status == "granted" and lifetime else None
    return c.PurposeRecord(pid, status, version, at, expires, "rcpt_1", "banner")


POLICY = Policy(
    declared_version="1",
    content_hash="0" * 64,
    controller=Controller("C", "c@example"),
    purposes=(
        purpose("personalization", tcf_purposes=(5, 6), consent_mode=("personalization_storage",)),
        purpose("ads", gpc=True, tcf_purposes=(2, 3, 4),
                consent_mode=("ad_storage", "ad_user_data", "ad_personalization")),
        purpose("analytics", basis="legitimate_interest", lifetime=None,
                consent_mode=("analytics_storage",)),
        purpose("service", basis="contract", lifetime=None,
                consent_mode=("functionality_storage", "security_storage")),
    ),
)


@pytest.mark.parametrize(
    "p, rec, now, status, effective",
    [
        (purpose(), None, T0, "not_asked", False),
        (purpose(), record(), T0, "granted", True),
        (purpose(), record(), T0 + timedelta(days=30) - timedelta(microseconds=1), "granted", True),
        (purpose(), record(), T0 + timedelta(days=30), "expired", False),  # exactly lifetime_days
        (purpose(lifetime=None), record(lifetime=None), T0 + timedelta(days=3650), "granted", True),
        (purpose(version=2), record(version=1), T0, "reconsent_required", False),
        (purpose(version=2), record(version=2), T0, "granted", True),
        (purpose(), record("denied"), T0, "denied", False),
        (purpose(), record("withdrawn"), T0, "withdrawn", False),
        (purpose(version=2), record("denied", version=1), T0, "denied", False),
        (purpose(basis="legitimate_interest"), None, T0, "permitted", True),
        (purpose(basis="legitimate_interest"), record("objected"), T0, "objected", False),
        (purpose(basis="legitimate_interest"), record("permitted"), T0, "permitted", True),
        (purpose(basis="contract"), None, T0, "permitted", True),
        (purpose(basis="legal_obligation"), record("denied"), T0, "permitted", True),
    ],
)
def test_evaluate(p, rec, now, status, effective):
    state = c.evaluate(p, rec, now)
    assert (state.status, state.effective) == (status, effective)
    assert (state.withheld_reason is None) == effective


@pytest.mark.parametrize(
    "basis, previous, value, expected",
    [
        ("consent", None, "granted", "granted"),
        ("consent", None, "denied", "denied"),
        ("consent", "granted", "denied", "withdrawn"),
        ("consent", "withdrawn", "denied", "withdrawn"),
        ("consent", "denied", "denied", "denied"),
        ("consent", "withdrawn", "granted", "granted"),
        ("legitimate_interest", None, "denied", "objected"),
        ("legitimate_interest", "objected", "granted", "permitted"),
    ],
)
def test_next_record(basis, previous, value, expected):
    p = purpose(basis=basis, lifetime=30 if basis == "consent" else None)
    prev = record(previous) if previous else None
    rec = c.next_record(p, prev, c.Choice("p", value, "banner"), at=T0, receipt_id="rcpt_2")
    assert rec.status == expected
    assert rec.receipt_id == "rcpt_2" and rec.decided_at == T0 and rec.purpose_version == 1
    assert rec.expires_at == (T0 + timedelta(days=30) if expected == "granted" else None)


def test_resolve_choices_precedence_body_tcf_gpc():
    choices = c.resolve_choices(
        POLICY, {"personalization": "denied", "ads": "granted", "analytics": "denied"},
        method="banner", tcf_consents=[1, 2, 3, 4, 5, 6], gpc=True,
    )
    got = {ch.purpose: (ch.value, ch.method) for ch in choices}
    assert got == {
        "personalization": ("granted", "tcf"),  # the TC string wins over the body
        "ads": ("denied", "gpc"),  # GPC wins over everything
        "analytics": ("denied", "banner"),
    }
    assert [ch.purpose for ch in choices] == ["personalization", "ads", "analytics"]


def test_tcf_grants_only_when_every_mapped_purpose_is_set():
    choices = c.resolve_choices(POLICY, {}, method="api", tcf_consents=[2, 3, 5])
    assert {ch.purpose: ch.value for ch in choices} == {"personalization": "denied", "ads": "denied"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"nope": "granted"}, "purposes.nope"),
        ({"service": "denied"}, "purposes.service"),
        ({"ads": "maybe"}, "purposes.ads"),
    ],
)
def test_resolve_choices_rejects(body, field):
    with pytest.raises(InvalidRequest) as err:
        c.resolve_choices(POLICY, body, method="banner")
    assert [e.field for e in err.value.errors] == [field]


def test_withdraw_all_covers_consent_purposes_only():
    assert [ch.purpose for ch in c.withdraw_all(POLICY, method="banner")] == ["personalization", "ads"]


def test_consent_mode_granted_iff_every_listing_purpose_effective():
    records = {"personalization": record(pid="personalization")}
    states = c.states(POLICY, records, T0)
    assert c.consent_mode(POLICY, states) == {
        "ad_storage": "denied",
        "ad_user_data": "denied",
        "ad_personalization": "denied",
        "analytics_storage": "granted",
        "functionality_storage": "granted",
        "personalization_storage": "granted",
        "security_storage": "granted",
    }


def test_consent_mode_type_listed_by_no_purpose_is_denied():
    policy = Policy("1", "0" * 64, Controller("C", "c"), (purpose("only", basis="contract"),))
    assert set(c.consent_mode(policy, c.states(policy, {}, T0)).values()) == {"denied"}


choice_values = st.sampled_from(["granted", "denied"])


@given(
    history=st.lists(st.tuples(choice_values, st.integers(0, 400)), min_size=1, max_size=12),
    lifetime=st.one_of(st.none(), st.integers(1, 400)),
    current_version=st.integers(1, 3),
    later=st.integers(0, 900),
)
def test_effective_only_for_a_current_unexpired_grant(history, lifetime, current_version, later):
    """Property: consent is effective iff the last choice is a grant, for the current
    version, younger than lifetime_days; a denial after any grant reads as withdrawn."""
    p = purpose(lifetime=lifetime, version=1)
    at = T0
    rec = None
    for value, gap in history:
        at = at + timedelta(days=gap)
        rec = c.next_record(p, rec, c.Choice("p", value, "banner"), at=at, receipt_id="r")
    now = at + timedelta(days=later)
    bumped = purpose(lifetime=lifetime, version=current_version)
    state = c.evaluate(bumped, rec, now)
    last_value = history[-1][0]
    fresh = lifetime is None or later < lifetime
    assert state.effective == (last_value == "granted" and current_version == 1 and fresh)
    if last_value == "denied":
        ever_granted = any(v == "granted" for v, _ in history[:-1])
        assert state.status == ("withdrawn" if ever_granted else "denied")
