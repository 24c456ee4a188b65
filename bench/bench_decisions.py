"""Decisions per second of the rule core (`gateway.core.conditions.evaluate`) on one core.

    .venv/bin/python bench/bench_decisions.py

A synthetic policy built in code: one purpose, a catalogue of 30 attributes,
one placement with 10 rules, and a subject whose permitted view releases all
30; its rules read 10 of them, as rules do (one to three attributes each).
The headline figure is the worst case for the rules: no rule matches until
the tenth, so every condition runs. More lines show the best case (the first
rule matches), a view with some attributes withheld (the explanation then
names them), and an extreme placement whose rules read all 30 attributes:
the cost of a decision grows with the attributes the rules that run read.
Not a timed test: it prints, it does not assert.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.core.conditions import evaluate
from gateway.core.policy import Attribute, Notice, Placement, Purpose, parse_rules

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
PURPOSE = Purpose(
    id="personalization", version=1, legal_basis="consent", data_use="personalize.content.profiled",
    notices={"en": Notice("Personalised content", "...")},
)


@dataclass(frozen=True)
class Withheld:
    attribute: str
    reason: str


@dataclass(frozen=True)
class View:
    effective: bool
    released: dict[str, Any]
    withheld: tuple[Withheld, ...] = ()


def catalogue() -> dict[str, Attribute]:
    """30 attributes: the demo shop's ten and twenty more of mixed types."""
    types = {
        "browsing_categories": "list[string]", "purchase_categories": "list[string]",
        "orders_count": "integer", "last_purchase_date": "date", "total_spend_eur": "number",
        "loyalty_tier": "string", "newsletter": "boolean", "favourite_brand": "string",
        "returns_count": "integer", "avg_basket_eur": "number",
    }
    cycle = ("string", "integer", "number", "boolean", "list[string]", "date")
    for i in range(20):
        types[f"extra_{i:02d}"] = cycle[i % len(cycle)]
    return {
        name: Attribute(name, t, "user.behavior.purchase_history", ("personalization",))
        for name, t in types.items()
    }


def profile() -> dict[str, Any]:
    values: dict[str, Any] = {
        "browsing_categories": ["running", "kitchen", "garden"],
        "purchase_categories": ["kitchen", "books"],
        "orders_count": 3,
        "last_purchase_date": "2026-09-30",
        "total_spend_eur": 240.5,
        "loyalty_tier": "silver",
        "newsletter": True,
        "favourite_brand": "Nordkap",
        "returns_count": 1,
        "avg_basket_eur": 80.2,
    }
    samples = {"string": "x", "integer": 7, "number": 1.5, "boolean": False, "list[string]": ["a", "b"],
               "date": "2026-01-15"}
    for name, attribute in catalogue().items():
        values.setdefault(name, samples[attribute.type])
    return values


RULES = [
    '"outdoor" in profile.browsing_categories',
    'profile.loyalty_tier in ["gold", "platinum"]',
    'now - profile.last_purchase_date < duration("2160h") && profile.orders_count >= 5 '
    "&& profile.total_spend_eur >= 500",
    '"outdoor" in profile.purchase_categories',
    "size(profile.purchase_categories) >= 3",
    'profile.favourite_brand == "Bergfeld" && profile.newsletter',
    "profile.returns_count == 0 && profile.avg_basket_eur > 100.0",
    'context.device == "mobile" && profile.orders_count >= 10',
    'profile.browsing_categories.exists(c, c in ["toys", "baby"])',
    '"kitchen" in profile.browsing_categories && profile.orders_count >= 2',
]

def placement() -> Placement:
    doc = {"placements": [{
        "id": "bench",
        "purpose": "personalization",
        "default": {"content": {"id": "generic"}, "explanation": {"en": "General selection."}},
        "rules": [
            {"id": f"rule-{i}", "when": when, "content": {"id": f"c{i}"}, "explanation": {"en": f"Rule {i}."}}
            for i, when in enumerate(RULES)
        ],
    }]}
    placements, problems = parse_rules(doc, {"personalization": PURPOSE}, catalogue())
    assert not problems, problems
    return placements[0]


def placement_reading_all() -> Placement:
    """10 rules that together read all 30 attributes (3 each); only the last matches."""
    names = list(catalogue())
    rules = []
    for i in range(10):
        when = " && ".join(f"has(profile.{n})" for n in names[i * 3:(i + 1) * 3])
        rules.append({"id": f"rule-{i}", "when": when + (" && false" if i < 9 else ""),
                      "content": {"id": f"c{i}"}, "explanation": {"en": f"Rule {i}."}})
    doc = {"placements": [{"id": "bench-all", "purpose": "personalization", "rules": rules,
                           "default": {"content": {"id": "generic"}, "explanation": {"en": "General."}}}]}
    placements, problems = parse_rules(doc, {"personalization": PURPOSE}, catalogue())
    assert not problems, problems
    return placements[0]


def rate(fn, seconds: float = 2.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            fn()
        n += 500
    return n / (time.perf_counter() - start)


def main() -> None:
    p = placement()
    full = profile()
    context = {"device": "desktop", "page": "home"}
    last = View(True, full)
    first = View(True, {**full, "browsing_categories": ["outdoor"]})
    held = {k: v for k, v in full.items() if k not in ("loyalty_tier", "total_spend_eur")}
    withheld = View(True, held, (Withheld("loyalty_tier", "retention_expired"),))

    assert evaluate(p, last, context, NOW).rule.id == "rule-9"
    assert evaluate(p, first, context, NOW).rule.id == "rule-0"
    blocked_by = evaluate(p, withheld, context, NOW).reasons[1].blocked_by
    assert blocked_by == (("loyalty_tier", "retention_expired"),)

    n_rules, n_attrs = len(p.rules), len(full)
    worst = rate(lambda: evaluate(p, last, context, NOW))
    print(f"decisions/s: {worst:,.0f} ({n_rules} rules, {n_attrs} attributes; "
          "every rule runs, the last matches)")
    best = rate(lambda: evaluate(p, first, context, NOW))
    print(f"decisions/s: {best:,.0f} ({n_rules} rules, {n_attrs} attributes; the first rule matches)")
    blocked = rate(lambda: evaluate(p, withheld, context, NOW))
    print(f"decisions/s: {blocked:,.0f} ({n_rules} rules, {len(held)} released, 2 missing; every rule runs)")
    wide = placement_reading_all()
    assert evaluate(wide, last, context, NOW).rule.id == "rule-9"
    everything = rate(lambda: evaluate(wide, last, context, NOW))
    print(f"decisions/s: {everything:,.0f} ({n_rules} rules reading all {n_attrs} attributes; "
          "every rule runs)")


if __name__ == "__main__":
    main()
