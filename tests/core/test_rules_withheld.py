"""Rules see only the permitted view: a withheld attribute changes no rule outcome.

A withheld attribute is one the subject has but the purpose may not see now.
Whether the subject has it, and what its value is, must not change whether a
rule matches, the `used_attributes`, or the attributes named in `blocked_by`
(only their reason says "withheld for this reason" rather than `absent`; the
view's `withheld` list, which names it anyway, is where that reason comes from).
`has(profile.X)` is false for a withheld X exactly as for an absent one.

Two levels: table-driven over hand-made views (every withheld reason, every
kind of condition), and Hypothesis over the real pipeline
(`permitted_view` of the demo policy, then `evaluate` of the demo placements
and of placements made here), with random values for the withheld attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.conditions import evaluate
from gateway.core.consent import PurposeRecord
from gateway.core.policy import parse_policy, parse_rules
from gateway.core.taxonomy import fides_taxonomy
from gateway.core.view import REASONS, StoredValue, permitted_view

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
ABSENT = "absent"


@dataclass(frozen=True)
class Withheld:
    attribute: str
    reason: str


@dataclass(frozen=True)
class View:
    effective: bool
    released: dict[str, Any]
    withheld: tuple[Withheld, ...] = ()


@pytest.fixture(scope="module")
def policy():
    files = {p.name: p.read_text() for p in POLICIES.glob("*.yaml")}
    return parse_policy(files, fides_taxonomy())


def one_placement(policy, *whens: str, purpose: str = "personalization"):
    """A placement whose rules are `whens`, in order (ids r0, r1, ...), checked like rules.yaml."""
    doc = {"placements": [{
        "id": "slot", "purpose": purpose,
        "default": {"content": {"id": "default"}, "explanation": {"en": "The same for everyone."}},
        "rules": [{"id": f"r{i}", "when": when, "content": {"id": f"c{i}"},
                   "explanation": {"en": f"Rule {i}."}} for i, when in enumerate(whens)],
    }]}
    placements, problems = parse_rules(doc, {p.id: p for p in policy.purposes},
                                       {a.id: a for a in policy.attributes})
    assert problems == [], problems
    return placements[0]


def summary(outcome) -> dict:
    """What a rule outcome says: the winner, and per rule matched / attributes / blocked_by."""
    return {
        "rule": outcome.rule.id if outcome.rule else None,
        "used": outcome.used_attributes,
        "reasons": [(r.rule, r.matched, r.attributes, r.blocked_by) for r in outcome.reasons],
    }


def as_absent(summary_: dict) -> dict:
    """The same summary with every blocked_by reason read as `absent` (only the names count)."""
    return {**summary_, "reasons": [(rule, matched, attrs, tuple((a, ABSENT) for a, _ in blocked))
                                    for rule, matched, attrs, blocked in summary_["reasons"]]}


# --- table-driven: hand-made views, every withheld reason -------------------------------------

# (condition over loyalty_tier, does it match when loyalty_tier is not released)
CONDITIONS = [
    ("has(profile.loyalty_tier)", False),
    ('has(profile.loyalty_tier) && profile.loyalty_tier == "gold"', False),
    ('profile.loyalty_tier == "gold"', False),
    ('profile.loyalty_tier != "gold"', False),
    ('profile.loyalty_tier in ["gold", "platinum"]', False),
    ("size(profile.loyalty_tier) > 0", False),
    ('has(profile.loyalty_tier) || profile.orders_count >= 2', False),
    # true whenever loyalty_tier cannot be seen: the same for withheld and for absent
    ("!has(profile.loyalty_tier)", True),
]
WITHHELD_VALUES = ["gold", "platinum", "", "bronze"]


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize(("when", "matches_unseen"), CONDITIONS)
def test_a_withheld_attribute_is_as_good_as_absent(policy, when, matches_unseen, reason):
    placement = one_placement(policy, when, "profile.orders_count >= 2")
    released = {"orders_count": 1}
    withheld = View(True, released, (Withheld("loyalty_tier", reason),))
    absent = View(True, released)
    got, without = evaluate(placement, withheld, {}, NOW), evaluate(placement, absent, {}, NOW)

    assert (got.rule.id if got.rule else None) == ("r0" if matches_unseen else None)
    assert got.used_attributes == without.used_attributes
    assert as_absent(summary(got)) == summary(without)
    if not matches_unseen:
        assert got.reasons[0].blocked_by == (("loyalty_tier", reason),)
        assert without.reasons[0].blocked_by == (("loyalty_tier", ABSENT),)
        assert "loyalty_tier" not in got.used_attributes


@pytest.mark.parametrize("reason", REASONS)
def test_has_is_false_for_a_withheld_attribute_and_true_once_released(policy, reason):
    placement = one_placement(policy, "has(profile.loyalty_tier)")
    hidden = evaluate(placement, View(True, {}, (Withheld("loyalty_tier", reason),)), {}, NOW)
    assert hidden.rule is None
    assert hidden.reasons[0].blocked_by == (("loyalty_tier", reason),)
    shown = evaluate(placement, View(True, {"loyalty_tier": "gold"}), {}, NOW)
    assert shown.rule.id == "r0" and shown.used_attributes == ("loyalty_tier",)


@pytest.mark.parametrize("placement_id", ["homepage_hero", "product_recommendations", "basket_banner",
                                          "partner_ads"])
@pytest.mark.parametrize("reason", REASONS)
def test_demo_placements_ignore_withheld_attributes(policy, placement_id, reason):
    """Every demo rule, with every attribute it reads withheld: no match, names blocked."""
    placement = policy.placement(placement_id)
    reads = sorted({a for rule in placement.rules for a in rule.reads})
    view = View(True, {}, tuple(Withheld(a, reason) for a in reads))
    outcome = evaluate(placement, view, {"device": "mobile"}, NOW)
    assert outcome.rule is None and outcome.used_attributes == ()
    for rule, why in zip(placement.rules, outcome.reasons, strict=True):
        assert why.matched is False
        assert why.blocked_by == tuple((a, reason) for a in sorted(rule.reads))


# --- Hypothesis: the real view, random withheld values -----------------------------------------

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["gold", "platinum", "outdoor", "2026-10-30"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# values a subject may really hold for the personalization attributes (released or expired)
VALUES = {
    "browsing_categories": st.lists(st.sampled_from(["outdoor", "running", "home", "kitchen"]), max_size=3),
    "purchase_categories": st.lists(st.sampled_from(["outdoor", "running", "home", "kitchen"]), max_size=3),
    "orders_count": st.integers(0, 12),
    "last_purchase_date": st.dates(datetime(2025, 1, 1).date(), NOW.date()).map(str),
    "total_spend_eur": st.floats(0, 5000, allow_nan=False),
    "loyalty_tier": st.sampled_from(["bronze", "silver", "gold", "platinum"]),
}
RETENTION = {"browsing_categories": 180, "purchase_categories": 730, "total_spend_eur": 730}
# whens over every personalization attribute, has() included
WHENS = [
    "has(profile.loyalty_tier)",
    'has(profile.browsing_categories) && "outdoor" in profile.browsing_categories',
    "has(profile.total_spend_eur) || has(profile.purchase_categories)",
    "!has(profile.browsing_categories)",
    "profile.total_spend_eur > 100.0",
    'profile.purchase_categories.exists(c, c == "home")',
    "profile.orders_count >= 2",
    'now - profile.last_purchase_date < duration("2160h")',
]


@st.composite
def subjects(draw):
    """(profile, records): held values (some past retention), and the consent records."""
    profile = {}
    for name, strategy in VALUES.items():
        if draw(st.booleans()):
            expired = name in RETENTION and draw(st.booleans())
            age = timedelta(days=RETENTION[name] + 1) if expired else timedelta(days=1)
            profile[name] = StoredValue(draw(strategy), NOW - age)
    status = draw(st.sampled_from(["granted", "granted", "denied", "withdrawn"]))
    records = {"personalization": PurposeRecord("personalization", status, 2, NOW - timedelta(days=3),
                                                None, "rcpt_x", "banner")}
    return profile, records


# attributes personalization may never see, and each one's random value
FOREIGN = st.fixed_dictionaries({}, optional={
    name: st.builds(StoredValue, JSONISH, st.just(NOW - timedelta(days=1)))
    for name in ("email", "city", "age_range", "health_interests")
})


def rerolled(draw, profile: dict, view) -> dict:
    """The same profile with every withheld value replaced by another random value."""
    out = dict(profile)
    for w in view.withheld:
        out[w.attribute] = StoredValue(draw(JSONISH), profile[w.attribute].written_at)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=subjects(), foreign=FOREIGN, data=st.data())
def test_no_outcome_depends_on_a_withheld_value_or_its_presence(policy, subject, foreign, data):
    profile, records = subject
    profile = {**profile, **foreign}
    placements = [*(p for p in policy.placements if p.purpose == "personalization"),
                  one_placement(policy, *WHENS)]
    view = permitted_view(policy, records, profile, "personalization", NOW)
    assert not set(view.released) & {w.attribute for w in view.withheld}

    other_values = permitted_view(policy, records, rerolled(data.draw, profile, view), "personalization", NOW)
    without = permitted_view(policy, records, {a: v for a, v in profile.items() if a in view.released},
                             "personalization", NOW)
    assert other_values.released == view.released == without.released
    for placement in placements:
        context = {"device": data.draw(st.sampled_from(["mobile", "desktop"]))}
        got = summary(evaluate(placement, view, context, NOW))
        # the value of a withheld attribute: nothing changes, not even a reason
        assert summary(evaluate(placement, other_values, context, NOW)) == got
        # its presence: the same match and used attributes, the same names blocked
        assert as_absent(got) == summary(evaluate(placement, without, context, NOW))
        if placement.id != "slot":  # (the made-up one has `!has(...)`, true without the attribute)
            assert set(got["used"]) <= set(view.released)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(released=st.fixed_dictionaries({}, optional={k: v for k, v in VALUES.items()}),
       hidden=st.lists(st.sampled_from(sorted(VALUES)), unique=True, max_size=6),
       reason=st.sampled_from(REASONS), data=st.data())
def test_withheld_names_with_any_reason_change_nothing_but_the_reason(policy, released, hidden, reason, data):
    """Hand-made views: any set of withheld names, with any reason, against absence."""
    hidden = [a for a in hidden if a not in released]
    placement = one_placement(policy, *data.draw(st.permutations(WHENS)))
    got = summary(evaluate(placement, View(True, released, tuple(Withheld(a, reason) for a in hidden)),
                           {}, NOW))
    assert as_absent(got) == summary(evaluate(placement, View(True, released), {}, NOW))
    blocked = {a: r for *_, bl in got["reasons"] for a, r in bl}
    assert all(r == (reason if a in hidden else ABSENT) for a, r in blocked.items())
