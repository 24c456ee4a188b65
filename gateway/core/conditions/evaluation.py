"""Evaluating a placement's conditions, in order, over a subject's permitted view.

The first rule whose condition is true wins. Every rule evaluated gets a
`RuleReason`: the attributes it used when it matched, or the attributes it
needed but could not see (with the withheld reason, or `absent`) when it did
not. Pure: the view, the request context and the time come in as arguments.

Conditions see three variables:

- `profile`: the released attributes of the permitted view, and only those the
  placement's rules read. Values keep their catalogue types, except that a
  `date` ("2026-10-30") becomes a CEL timestamp at midnight UTC, so that
  `now - profile.last_purchase_date < duration("2160h")` reads naturally.
- `context`: request metadata (`context.device == "mobile"`).
- `now`: the decision time as a CEL timestamp.

What runs is each condition's `program`, in which every attribute read is a
variable of its own (see `gateway.core.conditions.scan`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Generic, NotRequired, Protocol, TypedDict, TypeVar

import cel

from .compile import Condition
from .scan import HAS_VAR, PROFILE_VAR

ABSENT = "absent"

# an attribute to load: its name, its value variable, its has() variable, whether it is a date
_Load = tuple[str, str, str, bool]


class WithheldLike(Protocol):
    @property
    def attribute(self) -> str: ...

    @property
    def reason(self) -> str: ...


class ViewLike(Protocol):
    """What evaluation needs of a permitted view (gateway.core.view.PermittedView fits)."""

    @property
    def effective(self) -> bool: ...

    @property
    def released(self) -> Mapping[str, object]: ...

    @property
    def withheld(self) -> Iterable[WithheldLike]: ...


class BlockedBy(TypedDict):
    attribute: str
    reason: str


class ReasonDict(TypedDict):
    """A `RuleReason` as JSON (openapi.yaml: `RuleReason`, an explanation's `reasons`)."""

    rule: str
    matched: bool
    attributes: NotRequired[list[str]]
    blocked_by: NotRequired[list[BlockedBy]]


@dataclass(frozen=True)
class RuleReason:
    """Why one rule did or did not match (openapi.yaml: `RuleReason`, an explanation's `reasons`)."""

    rule: str
    matched: bool
    attributes: tuple[str, ...] = ()
    blocked_by: tuple[tuple[str, str], ...] = ()  # (attribute, reason)

    def as_dict(self) -> ReasonDict:
        out: ReasonDict = {"rule": self.rule, "matched": self.matched}
        if self.matched:
            out["attributes"] = list(self.attributes)
        elif self.blocked_by:
            out["blocked_by"] = [{"attribute": a, "reason": r} for a, r in self.blocked_by]
        return out


@dataclass(frozen=True)
class _Step:
    """One rule as evaluation runs it, with what a decision would otherwise rebuild each time."""

    id: str
    program: cel.Program = field(repr=False)
    reads: tuple[str, ...]  # sorted
    hit: RuleReason
    miss: RuleReason


@dataclass(frozen=True)
class Plan:
    """How to evaluate an ordered list of named conditions, worked out once at load."""

    steps: tuple[_Step, ...]
    context_keys: tuple[str, ...]  # the context keys any condition reads
    # the attributes the first rule reads, and those only later rules read: see `evaluate`
    first: tuple[_Load, ...]
    rest: tuple[_Load, ...]

    @classmethod
    def of(cls, rules: Sequence[tuple[str, Condition]], date_attributes: frozenset[str]) -> Plan:
        """The plan for `rules` as (rule id, condition), in order; `date_attributes` are catalogue dates."""
        steps = []
        for rule_id, condition in rules:
            ordered = tuple(sorted(condition.reads))
            steps.append(_Step(rule_id, condition.program, ordered,
                               RuleReason(rule_id, True, attributes=ordered), RuleReason(rule_id, False)))
        first = steps[0].reads if steps else ()
        rest = sorted({a for _, c in rules[1:] for a in c.reads} - set(first))

        def load(name: str) -> _Load:
            return name, PROFILE_VAR + name, HAS_VAR + name, name in date_attributes

        context_keys = sorted({k for _, c in rules for k in c.context_keys})
        return cls(tuple(steps), tuple(context_keys), tuple(load(a) for a in first),
                   tuple(load(a) for a in rest))


R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class Evaluable(Protocol[R_co]):
    """What evaluation needs of a placement (gateway.core.policy.Placement fits)."""

    @property
    def rules(self) -> Sequence[R_co]: ...

    @property
    def plan(self) -> Plan: ...


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """The result of a placement's rules: the winning rule (or None: serve the default) and why."""

    rule: R | None
    reasons: tuple[RuleReason, ...]
    used_attributes: tuple[str, ...]


def evaluate(
    placement: Evaluable[R], view: ViewLike, context: Mapping[str, object] | None, now: datetime
) -> Outcome[R]:
    """Run the placement's rules over the permitted view; the first rule that matches wins.

    A rule matches only when its condition evaluates to `true`. A condition that
    reads an attribute missing from the view, or fails in any other way (a value
    of an unexpected type, a division by zero), does not match; no exception
    escapes. A rule that does not match names each attribute it reads that the
    view does not release, with the withheld reason or `absent`. Without an
    effective legal basis no rule runs: the caller serves the default.
    """
    if not view.effective:
        return Outcome(None, (), ())
    plan = placement.plan
    released = view.released
    activation = _activation(plan, context or {}, now)
    # The first rule often decides: convert only what it reads. Before the second rule, add
    # everything the others read in one go (the library re-copies its variables after a change).
    _load(activation, plan.first, released)
    reasons: list[RuleReason] = []
    withheld: dict[str, str] | None = None
    for index, step in enumerate(plan.steps):
        if index == 1:
            _load(activation, plan.rest, released)
        if _matches(step.program, activation):
            reasons.append(step.hit)
            return Outcome(placement.rules[index], tuple(reasons), step.reads)
        missing = [a for a in step.reads if a not in released]
        if not missing:
            reasons.append(step.miss)
            continue
        if withheld is None:
            withheld = _withheld_reasons(view)
        blocked = tuple((a, withheld.get(a, ABSENT)) for a in missing)
        reasons.append(RuleReason(step.id, False, blocked_by=blocked))
    return Outcome(None, tuple(reasons), ())


def _withheld_reasons(view: ViewLike) -> dict[str, str]:
    try:
        return {w.attribute: w.reason for w in view.withheld}
    except (AttributeError, TypeError):
        return {}


def _matches(program: cel.Program, activation: cel.Context) -> bool:
    try:
        return program.execute(activation) is True
    except Exception:  # noqa: BLE001 - any failure of a condition means "no match" (see evaluate)
        return False


def _activation(plan: Plan, context: Mapping[str, object], now: datetime) -> cel.Context:
    """The CEL context of one decision: `context` (the keys the rules read) and `now`.

    `evaluate` adds the attributes with `_load`: those of the first rule, then the
    rest at once, so CEL converts each value once and only if a rule may need it.
    """
    ctx = {key: context[key] for key in plan.context_keys if key in context}
    if isinstance(now, datetime) and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        return cel.Context({"context": ctx, "now": now})
    except Exception:  # noqa: BLE001 - a value CEL cannot hold; drop only the values that fail
        activation = cel.Context()
        _add(activation, "context", {k: v for k, v in ctx.items() if _holdable(v)})
        _add(activation, "now", now)
        return activation


def _load(activation: cel.Context, loads: tuple[_Load, ...], released: Mapping[str, object]) -> None:
    """Add attributes to the decision's CEL context (and, for `has()`, whether each is there).

    A value CEL cannot hold counts as not there: a rule reading it does not match.
    """
    if not loads:
        return
    batch: dict[str, object] = {}
    for name, value_var, has_var, is_date in loads:
        if name in released:
            value = released[name]
            batch[value_var] = timestamp(value) if is_date else value
            batch[has_var] = True
        else:
            batch[has_var] = False
    try:
        activation.update(batch)
    except Exception:  # noqa: BLE001 - some value CEL cannot hold: add them one by one
        for _name, value_var, has_var, _is_date in loads:
            present = value_var in batch and _add(activation, value_var, batch[value_var])
            activation.add_variable(has_var, present)


def _add(activation: cel.Context, name: str, value: object) -> bool:
    try:
        activation.add_variable(name, value)
    except Exception:  # noqa: BLE001 - the library raises several types for values it cannot convert
        return False
    return True


def _holdable(value: object) -> bool:
    try:
        cel.Context({"v": value})
    except Exception:  # noqa: BLE001 - see _add
        return False
    return True


def timestamp(value: object) -> object:
    """A catalogue `date` ("2026-10-30") as a timestamp at midnight UTC; other values unchanged."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            d = date.fromisoformat(value)
        except ValueError:
            return value
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    return value
