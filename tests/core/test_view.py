"""The permitted view: table-driven reasons and their order, and properties over random
policies, consent histories, profiles and times. No app, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import consent as c
from gateway.core.errors import InvalidRequest
from gateway.core.policy import LEGAL_BASES, Attribute, Controller, Notice, Policy, Purpose
from gateway.core.view import (
    REASONS,
    PermittedView,
    StoredValue,
    Withheld,
    permitted_view,
    retention_deadline,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)
EN = {"en": Notice("t", "d")}
US = timedelta(microseconds=1)
DAY = timedelta(days=1)


def purpose(pid, basis="consent", version=1, lifetime=None, special=False) -> Purpose:
    return Purpose(id=pid, version=version, legal_basis=basis, data_use="personalize", notices=EN,
                   lifetime_days=lifetime, special_categories=special)


def attribute(aid, purposes, *, special=False, retention=None, atype="string") -> Attribute:
    return Attribute(id=aid, type=atype, data_category="user", purposes=tuple(purposes),
                     special_category=special, retention_days=retention)


POLICY = Policy(
    declared_version="1",
    content_hash="0" * 64,
    controller=Controller("C", "c@example"),
    purposes=(
        purpose("personalization", version=2, lifetime=395),
        purpose("ads", lifetime=395),
        purpose("health_offers", lifetime=180, special=True),
        purpose("analytics", basis="legitimate_interest"),
        purpose("service", basis="contract"),
        purpose("tax", basis="legal_obligation"),
    ),
    attributes=(
        attribute("email", ["service", "tax"]),
        attribute("browsing_categories", ["personalization", "ads", "analytics"], retention=180,
                  atype="list[string]"),
        attribute("age", ["ads"], atype="integer"),
        attribute("health_interests", ["health_offers"], special=True, atype="list[string]"),
        # contradicts the loader's rules (special category for a purpose without
        # special_categories); the view must refuse it anyway
        attribute("mislabelled_health", ["personalization"], special=True),
        attribute("birthday", ["service"], atype="date"),
    ),
)

VALUES = {
    "email": "a@example.org",
    "browsing_categories": ["outdoor"],
    "age": 34,
    "health_interests": ["diabetes"],
    "mislabelled_health": "pregnant",
    "birthday": "1990-05-17",
}
WRITTEN = NOW - 10 * DAY


def profile(written_at=WRITTEN, **overrides) -> dict[str, StoredValue]:
    return {name: StoredValue(overrides.get(name, value), written_at) for name, value in VALUES.items()}


def history(pid, *steps, version=None, policy=POLICY) -> dict[str, c.PurposeRecord]:
    """The record after the choices `steps` = (value, at), made when the purpose had `version`."""
    p = policy.purpose(pid)
    if version is not None:
        p = replace(p, version=version)
    rec = None
    for i, (value, at) in enumerate(steps):
        rec = c.next_record(p, rec, c.Choice(pid, value, "banner"), at=at, receipt_id=f"rcpt_{i}")
    return {pid: rec} if rec else {}


GRANT = ("granted", T0)
DENY = ("denied", T0 + DAY)

CASES = [
    # (case, purpose, records, attribute, written_at, now, expected reason or None = released)
    ("not asked", "personalization", {}, "browsing_categories", WRITTEN, NOW, "no_consent"),
    ("denied", "personalization", history("personalization", ("denied", T0)), "browsing_categories",
     WRITTEN, NOW, "no_consent"),
    ("granted", "personalization", history("personalization", GRANT), "browsing_categories", WRITTEN,
     NOW, None),
    ("withdrawn", "personalization", history("personalization", GRANT, DENY), "browsing_categories",
     WRITTEN, NOW, "consent_withdrawn"),
    ("regranted", "personalization", history("personalization", GRANT, DENY, ("granted", T0 + 2 * DAY)),
     "browsing_categories", WRITTEN, NOW, None),
    ("expired", "personalization", history("personalization", GRANT), "browsing_categories", WRITTEN,
     T0 + 395 * DAY, "consent_expired"),
    ("just before expiry", "personalization", history("personalization", GRANT), "browsing_categories",
     T0 + 300 * DAY, T0 + 395 * DAY - US, None),
    ("older purpose version", "personalization", history("personalization", GRANT, version=1),
     "browsing_categories", WRITTEN, NOW, "reconsent_required"),
    ("not listed", "ads", history("ads", GRANT), "email", WRITTEN, NOW, "not_permitted_for_purpose"),
    ("listed, granted", "ads", history("ads", GRANT), "age", WRITTEN, NOW, None),
    ("legitimate interest, no objection", "analytics", {}, "browsing_categories", WRITTEN, NOW, None),
    ("legitimate interest, objected", "analytics", history("analytics", ("denied", T0)),
     "browsing_categories", WRITTEN, NOW, "objected"),
    ("legitimate interest, objection lifted", "analytics",
     history("analytics", ("denied", T0), ("granted", T0 + DAY)), "browsing_categories", WRITTEN, NOW, None),
    ("contract", "service", {}, "email", WRITTEN, NOW, None),
    ("contract, date value", "service", {}, "birthday", WRITTEN, NOW, None),
    ("legal obligation", "tax", {}, "email", WRITTEN, NOW, None),
    ("special category, explicit consent", "health_offers", history("health_offers", GRANT),
     "health_interests", WRITTEN, T0 + DAY, None),
    ("special category, no consent", "health_offers", {}, "health_interests", WRITTEN, NOW, "no_consent"),
    ("special category, other purpose", "ads", history("ads", GRANT), "health_interests", WRITTEN, NOW,
     "not_permitted_for_purpose"),
    ("special category listed by a purpose without special_categories", "personalization",
     history("personalization", GRANT), "mislabelled_health", WRITTEN, NOW, "not_permitted_for_purpose"),
    ("retention: at exactly retention_days", "personalization", history("personalization", GRANT),
     "browsing_categories", NOW - 180 * DAY, NOW, "retention_expired"),
    ("retention: one microsecond younger", "personalization", history("personalization", GRANT),
     "browsing_categories", NOW - 180 * DAY + US, NOW, None),
    ("retention: one second younger", "personalization", history("personalization", GRANT),
     "browsing_categories", NOW - 180 * DAY + timedelta(seconds=1), NOW, None),
    ("retention applies to legitimate interest too", "analytics", {}, "browsing_categories",
     NOW - 181 * DAY, NOW, "retention_expired"),
    # the order of reasons
    ("order: not permitted before withdrawn", "personalization",
     history("personalization", GRANT, DENY), "age", WRITTEN, NOW, "not_permitted_for_purpose"),
    ("order: not permitted before retention", "service", {}, "browsing_categories", NOW - 400 * DAY, NOW,
     "not_permitted_for_purpose"),
    ("order: no consent before retention", "personalization", {}, "browsing_categories",
     NOW - 400 * DAY, NOW, "no_consent"),
    ("order: withdrawn before retention", "personalization", history("personalization", GRANT, DENY),
     "browsing_categories", NOW - 400 * DAY, NOW, "consent_withdrawn"),
    ("order: expired before retention", "personalization", history("personalization", GRANT),
     "browsing_categories", T0 - 400 * DAY, T0 + 400 * DAY, "consent_expired"),
    ("order: reconsent before retention", "personalization", history("personalization", GRANT, version=1),
     "browsing_categories", NOW - 400 * DAY, NOW, "reconsent_required"),
    ("order: objected before retention", "analytics", history("analytics", ("denied", T0)),
     "browsing_categories", NOW - 400 * DAY, NOW, "objected"),
    ("order: special category not permitted before no consent", "personalization", {},
     "mislabelled_health", WRITTEN, NOW, "not_permitted_for_purpose"),
]


@pytest.mark.parametrize(
    "purpose_id, records, name, written_at, now, expected",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_reason(purpose_id, records, name, written_at, now, expected):
    view = permitted_view(POLICY, records, profile(written_at), purpose_id, now)
    if expected is None:
        assert view.released[name] == VALUES[name]
        assert view.withheld_reason(name) is None
    else:
        assert name not in view.released
        assert view.withheld_reason(name) == expected


def test_every_reason_code_is_covered():
    assert {case[-1] for case in CASES} - {None} == set(REASONS)
    assert REASONS == (
        "not_permitted_for_purpose", "no_consent", "consent_withdrawn", "consent_expired",
        "reconsent_required", "objected", "retention_expired",
    )


def test_whole_view_in_catalogue_order():
    view = permitted_view(POLICY, history("personalization", GRANT), profile(), "personalization", NOW)
    assert isinstance(view, PermittedView)
    assert view.effective and view.state.status == "granted" and view.state.receipt_id == "rcpt_0"
    assert view.released == {"browsing_categories": ["outdoor"]}
    assert view.withheld == (
        Withheld("email", "not_permitted_for_purpose"),
        Withheld("age", "not_permitted_for_purpose"),
        Withheld("health_interests", "not_permitted_for_purpose"),
        Withheld("mislabelled_health", "not_permitted_for_purpose"),
        Withheld("birthday", "not_permitted_for_purpose"),
    )
    assert view.as_dict() == {
        "purpose": "personalization",
        "effective": True,
        "attributes": {"browsing_categories": ["outdoor"]},
        "withheld": [{"attribute": w.attribute, "reason": w.reason} for w in view.withheld],
    }


def test_withheld_entries_carry_names_and_reasons_never_values():
    view = permitted_view(POLICY, {}, profile(), "personalization", NOW)
    assert not view.effective and view.released == {}
    text = repr(view.withheld) + repr([w.as_dict() for w in view.withheld])
    for value in ("a@example.org", "outdoor", "34", "diabetes", "pregnant", "1990-05-17"):
        assert value not in text


def test_only_attributes_the_subject_has_appear_and_retired_ones_are_ignored():
    held = {
        "age": StoredValue(34, WRITTEN),
        "shoe_size": StoredValue(44, WRITTEN),  # no longer in the catalogue
    }
    view = permitted_view(POLICY, history("ads", GRANT), held, "ads", NOW)
    assert view.released == {"age": 34}
    assert view.withheld == ()
    view = permitted_view(POLICY, {}, held, "service", NOW)
    assert view.released == {} and view.withheld == (Withheld("age", "not_permitted_for_purpose"),)


def test_unknown_subject_is_an_empty_view():
    view = permitted_view(POLICY, {}, {}, "service", NOW)
    assert (view.effective, dict(view.released), view.withheld) == (True, {}, ())


def test_unknown_purpose_is_invalid_request():
    with pytest.raises(InvalidRequest) as err:
        permitted_view(POLICY, {}, profile(), "x", NOW)
    assert [e.as_dict() for e in err.value.errors] == [{"field": "purpose", "message": "unknown purpose 'x'"}]


def test_records_of_other_purposes_do_not_count():
    records = {**history("ads", GRANT), **history("personalization", GRANT, DENY)}
    view = permitted_view(POLICY, records, profile(), "ads", NOW)
    assert view.released == {"browsing_categories": ["outdoor"], "age": 34}


def test_retention_deadline():
    assert retention_deadline(POLICY.attribute("email"), T0) is None
    assert retention_deadline(POLICY.attribute("browsing_categories"), T0) == T0 + 180 * DAY


# ---------------------------------------------------------------- properties

offsets = st.one_of(
    st.integers(0, 60).map(lambda d: timedelta(days=d)),
    st.integers(0, 60 * 86400).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def scenarios(draw, first_basis=None):
    """A random small policy, consent history, profile and time."""
    purposes = []
    for i in range(draw(st.integers(1, 4))):
        basis = first_basis if i == 0 and first_basis else draw(st.sampled_from(LEGAL_BASES))
        purposes.append(purpose(
            f"p{i}", basis, version=draw(st.integers(1, 3)),
            lifetime=draw(st.none() | st.integers(1, 30)) if basis == "consent" else None,
            special=draw(st.booleans()),
        ))
    pids = [p.id for p in purposes]
    attributes = [
        attribute(f"a{j}", draw(st.lists(st.sampled_from(pids), unique=True, max_size=len(pids))),
                  special=draw(st.booleans()), retention=draw(st.none() | st.integers(1, 30)))
        for j in range(draw(st.integers(0, 5)))
    ]
    policy = Policy("1", "0" * 64, Controller("C", "c"), tuple(purposes), tuple(attributes))
    records = {}
    for p in purposes:
        if not p.settable:
            continue
        at = T0
        steps = []
        for value, gap in draw(st.lists(st.tuples(st.sampled_from(c.CHOICES), offsets), max_size=4)):
            at += gap
            steps.append((value, at))
        records |= history(p.id, *steps, version=draw(st.integers(1, p.version)), policy=policy)
    held = {
        a.id: StoredValue(f"value-of-{a.id}", T0 + draw(offsets))
        for a in attributes
        if draw(st.booleans())
    }
    if draw(st.booleans()):
        held["retired"] = StoredValue("value-of-retired", T0)
    now = T0 + draw(offsets) + draw(offsets)
    return policy, records, held, draw(st.sampled_from(pids)), now


def expected_reason(a: Attribute, p: Purpose, state: c.PurposeState, stored: StoredValue, now) -> str | None:
    """The README's rule ("How data leaves the gateway"), written out independently of the implementation."""
    listed = p.id in a.purposes and (p.special_categories or not a.special_category)
    fresh = a.retention_days is None or now < stored.written_at + timedelta(days=a.retention_days)
    if not listed:
        return "not_permitted_for_purpose"
    if not state.effective:
        return state.withheld_reason
    return None if fresh else "retention_expired"


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_released_only_when_every_condition_holds(scenario):
    """Property (a): a value is released iff the attribute lists the purpose, special
    categories are allowed, the legal basis is effective per `evaluate` and the value is
    within retention; otherwise the first failing reason is given."""
    policy, records, held, pid, now = scenario
    p = policy.purpose(pid)
    state = c.evaluate(p, records.get(pid), now)
    view = permitted_view(policy, records, held, pid, now)
    assert view.state == state and view.effective == state.effective
    for a in policy.attributes:
        if a.id not in held:
            continue
        reason = expected_reason(a, p, state, held[a.id], now)
        if a.id in view.released:
            assert pid in a.purposes
            assert p.special_categories or not a.special_category
            assert state.effective
            assert a.retention_days is None or now < held[a.id].written_at + timedelta(days=a.retention_days)
            assert view.released[a.id] == held[a.id].value
        assert view.withheld_reason(a.id) == reason


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_released_and_withheld_partition_the_catalogue_attributes_held(scenario):
    """Property (b): released ∪ withheld == catalogue attributes in the profile, disjoint,
    each once, in catalogue order; reasons are known codes; no value leaks into withheld."""
    policy, records, held, pid, now = scenario
    view = permitted_view(policy, records, held, pid, now)
    withheld_names = [w.attribute for w in view.withheld]
    present = [a.id for a in policy.attributes if a.id in held]
    assert set(view.released).isdisjoint(withheld_names)
    assert len(withheld_names) == len(set(withheld_names))
    assert set(view.released) | set(withheld_names) == set(present)
    assert list(view.released) == [n for n in present if n in view.released]
    assert withheld_names == [n for n in present if n in withheld_names]
    assert all(w.reason in REASONS for w in view.withheld)
    assert "retired" not in view.released and "retired" not in withheld_names


@settings(max_examples=200, deadline=None)
@given(scenarios(first_basis="consent"), offsets, offsets)
def test_withdrawal_withholds_on_the_very_next_read(scenario, to_grant, to_withdraw):
    """Property (c): a grant is effective at once; a denial after it withholds every
    attribute of the purpose at the withdrawal time itself."""
    policy, records, held, _, _ = scenario
    p = policy.purpose("p0")
    previous = records.get("p0")
    granted_at = (previous.decided_at if previous else T0) + to_grant
    grant = c.next_record(p, previous, c.Choice("p0", "granted", "api"), at=granted_at, receipt_id="g")
    withdrawn_at = granted_at + to_withdraw
    withdrawal = c.next_record(p, grant, c.Choice("p0", "denied", "api"), at=withdrawn_at, receipt_id="w")

    before = permitted_view(policy, {"p0": grant}, held, "p0", granted_at)
    after = permitted_view(policy, {"p0": withdrawal}, held, "p0", withdrawn_at)
    assert before.effective and not after.effective and after.released == {}
    for a in policy.attributes:
        if a.id in held and "p0" in a.purposes and (p.special_categories or not a.special_category):
            assert before.withheld_reason(a.id) in (None, "retention_expired")
            assert after.withheld_reason(a.id) == "consent_withdrawn"


@settings(max_examples=200, deadline=None)
@given(
    lifetime=st.integers(1, 400),
    retention=st.integers(1, 400),
    version=st.integers(2, 5),
    granted_at=st.integers(0, 10**9).map(lambda us: T0 + timedelta(microseconds=us)),
    written_at=st.integers(0, 10**9).map(lambda us: T0 + timedelta(microseconds=us)),
)
def test_expiry_reconsent_and_retention_hold_at_the_boundary(lifetime, retention, version, granted_at,
                                                             written_at):
    """Property (d): one microsecond before a boundary the value is released, at it withheld."""
    policy = Policy("1", "0" * 64, Controller("C", "c"), (
        purpose("consented", version=version, lifetime=lifetime),
        purpose("contracted", basis="contract"),
    ), (
        attribute("kept", ["consented"]),
        attribute("aging", ["contracted"], retention=retention),
    ))
    held = {"kept": StoredValue("k", granted_at), "aging": StoredValue("a", written_at)}
    grant = history("consented", ("granted", granted_at), policy=policy)

    def reason(records, pid, name, now):
        return permitted_view(policy, records, held, pid, now).withheld_reason(name)

    expires = granted_at + timedelta(days=lifetime)
    assert grant["consented"].expires_at == expires
    assert reason(grant, "consented", "kept", granted_at) is None  # effective at the grant itself
    assert reason(grant, "consented", "kept", expires - US) is None
    assert reason(grant, "consented", "kept", expires) == "consent_expired"

    stale = history("consented", ("granted", granted_at), version=version - 1, policy=policy)
    assert reason(stale, "consented", "kept", granted_at) == "reconsent_required"
    renewed = history("consented", ("granted", granted_at), ("granted", expires - US), policy=policy)
    assert reason(renewed, "consented", "kept", expires - US) is None  # renewal counts at once

    deadline = retention_deadline(policy.attribute("aging"), written_at)
    assert deadline == written_at + timedelta(days=retention)
    assert reason({}, "contracted", "aging", deadline - US) is None
    assert reason({}, "contracted", "aging", deadline) == "retention_expired"
