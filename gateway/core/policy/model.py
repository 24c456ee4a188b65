"""The policy as data: purposes, the attribute catalogue, placements and their rules.

Frozen values built by `gateway.core.policy.load.parse_policy`; nothing here reads
files or YAML. A rule carries its compiled condition (`gateway.core.conditions`);
a placement carries the plan by which its rules are evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import locale
from ..conditions import Condition, Plan

LEGAL_BASES = ("consent", "legitimate_interest", "contract", "legal_obligation")
SETTABLE_BASES = ("consent", "legitimate_interest")
CONSENT_MODE_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)
ATTRIBUTE_TYPES = ("string", "integer", "number", "boolean", "date", "list[string]")
FALLBACK_LOCALE = locale.FALLBACK

# JSON data, as placement content is (decisions return it and store it as JSON)
JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


@dataclass(frozen=True)
class Notice:
    title: str
    description: str


@dataclass(frozen=True)
class Controller:
    name: str
    contact: str
    address: str | None = None
    dpo: str | None = None


@dataclass(frozen=True)
class Purpose:
    id: str
    version: int
    legal_basis: str
    data_use: str
    notices: Mapping[str, Notice]
    lifetime_days: int | None = None
    special_categories: bool = False
    gpc: bool = False
    tcf_purposes: tuple[int, ...] = ()
    consent_mode: tuple[str, ...] = ()

    @property
    def settable(self) -> bool:
        """Whether a person's choice can change this purpose (consent or objection)."""
        return self.legal_basis in SETTABLE_BASES

    def notice(self, wanted: str | None) -> tuple[str, Notice]:
        """The notice in `wanted` (or its base language), falling back to English;
        returns (locale used, notice)."""
        return locale.pick(self.notices, wanted)


@dataclass(frozen=True)
class Attribute:
    id: str
    type: str
    data_category: str
    purposes: tuple[str, ...]
    special_category: bool = False
    retention_days: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # how explanations name it, per language

    def label(self, wanted: str | None) -> str:
        """How explanations name the attribute in `wanted`, else English, else its id in words."""
        return locale.pick_or(self.labels, wanted, self.id.replace("_", " "))


@dataclass(frozen=True)
class Backend:
    """A remote personalization backend (README, "Decisions and explanations")."""

    url: str
    timeout_ms: int
    secret_env: str


@dataclass(frozen=True)
class Rule:
    """One rule of a placement: a compiled condition, the content it picks and why, in words."""

    id: str
    when: str
    content: Mapping[str, JSON]
    explanation: Mapping[str, str]
    condition: Condition = field(repr=False)

    @property
    def reads(self) -> frozenset[str]:
        """The catalogue attributes the condition reads."""
        return self.condition.reads


@dataclass(frozen=True)
class Placement:
    """A slot on a page that the gateway fills: rules in order, a default, maybe a backend."""

    id: str
    purpose: str
    default_content: Mapping[str, JSON]
    default_explanation: Mapping[str, str]
    rules: tuple[Rule, ...]
    backend: Backend | None = None
    date_attributes: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    # how the rules are evaluated, worked out once (gateway.core.conditions.evaluate)
    plan: Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plan = Plan.of([(r.id, r.condition) for r in self.rules], self.date_attributes)
        object.__setattr__(self, "plan", plan)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass(frozen=True)
class Policy:
    declared_version: str
    content_hash: str
    controller: Controller
    purposes: tuple[Purpose, ...]
    attributes: tuple[Attribute, ...] = ()
    placements: tuple[Placement, ...] = ()

    @property
    def version(self) -> str:
        """The version in force: the declared version plus a hash of the files' content."""
        return f"{self.declared_version}+{self.content_hash[:12]}"

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)

    def attribute(self, attribute_id: str) -> Attribute | None:
        return next((a for a in self.attributes if a.id == attribute_id), None)

    def placement(self, placement_id: str) -> Placement | None:
        return next((p for p in self.placements if p.id == placement_id), None)

    @property
    def purpose_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.purposes)

    @property
    def locales(self) -> tuple[str, ...]:
        found = {loc for p in self.purposes for loc in p.notices}
        return tuple(sorted(found))
