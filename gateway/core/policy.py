"""The policy as data: purposes, the attribute catalogue and (later) rules.

`parse_policy` turns the text of a policy directory's YAML files into a frozen
`Policy`, or raises `PolicyInvalid` listing every problem with the file, the
entry and what is wrong, so that data-protection staff can fix it without a
programmer. Pure: the caller reads the files and passes their text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import PolicyInvalid, PolicyProblem
from .taxonomy import Taxonomy

POLICY_FILES = ("purposes.yaml", "attributes.yaml", "rules.yaml")
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
FALLBACK_LOCALE = "en"
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}$")
MAX_VERSION = 2**31 - 1  # purpose versions are stored in 32-bit integer columns
MAX_DAYS = 36_500  # lifetimes and retention periods: dates beyond must stay computable


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

    def notice(self, locale: str | None) -> tuple[str, Notice]:
        """The notice in `locale`, falling back to English; returns (locale used, notice)."""
        if locale and locale in self.notices:
            return locale, self.notices[locale]
        return FALLBACK_LOCALE, self.notices[FALLBACK_LOCALE]


@dataclass(frozen=True)
class Attribute:
    id: str
    type: str
    data_category: str
    purposes: tuple[str, ...]
    special_category: bool = False
    retention_days: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # how explanations name it, per language

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels.get(FALLBACK_LOCALE) or self.id.replace("_", " ")


@dataclass(frozen=True)
class Policy:
    declared_version: str
    content_hash: str
    controller: Controller
    purposes: tuple[Purpose, ...]
    attributes: tuple[Attribute, ...] = ()
    placements: tuple[Any, ...] = ()  # gateway.core.rules.Placement

    def placement(self, placement_id: str):
        return next((p for p in self.placements if p.id == placement_id), None)

    @property
    def version(self) -> str:
        """The version in force: the declared version plus a hash of the files' content."""
        return f"{self.declared_version}+{self.content_hash[:12]}"

    def purpose(self, purpose_id: str) -> Purpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)

    def attribute(self, attribute_id: str) -> Attribute | None:
        return next((a for a in self.attributes if a.id == attribute_id), None)

    @property
    def purpose_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.purposes)

    @property
    def locales(self) -> tuple[str, ...]:
        found = {loc for p in self.purposes for loc in p.notices}
        return tuple(sorted(found))


def content_hash(files: Mapping[str, str]) -> str:
    """SHA-256 over the policy files' names and contents, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


class _Checker:
    """Collects problems while reading one file's entries."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[PolicyProblem] = []

    def add(self, entry: str, message: str) -> None:
        self.problems.append(PolicyProblem(self.file, entry, message))

    def mapping(self, value: Any, entry: str) -> dict:
        if not isinstance(value, dict):
            self.add(entry, f"must be a mapping, not {_kind(value)}")
            return {}
        return value

    def unknown_keys(self, data: dict, allowed: set[str], entry: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(entry, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")

    def string(self, data: dict, key: str, entry: str, *, required: bool = True) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(entry, f"'{key}' is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(entry, f"'{key}' must be a non-empty text, not {_kind(value)}")
            return None
        return value

    def integer(self, data: dict, key: str, entry: str, *, required: bool, minimum: int,
                maximum: int) -> int | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(entry, f"'{key}' is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.add(entry, f"'{key}' must be a whole number from {minimum} to {maximum}, not {value!r}")
            return None
        return value

    def boolean(self, data: dict, key: str, entry: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.add(entry, f"'{key}' must be true or false, not {value!r}")
            return False
        return value

    def identifier(self, data: dict, entry: str) -> str | None:
        value = data.get("id")
        if not isinstance(value, str) or not ID_RE.match(value):
            self.add(entry, f"'id' must match [a-z][a-z0-9_]*, not {value!r}")
            return None
        return value

    def list_of(self, data: dict, key: str, entry: str, item_type: type) -> list:
        value = data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, item_type) and not isinstance(v, bool) for v in value
        ):
            self.add(entry, f"'{key}' must be a list of {item_type.__name__}, not {value!r}")
            return []
        return value


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a text", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


MAX_YAML_DEPTH = 64  # levels of nesting, aliases expanded (the demo policy needs 7)
MAX_YAML_VALUES = 100_000  # values, aliases expanded (the demo policy has about 700)


class _LimitedLoader(yaml.SafeLoader):
    """`yaml.safe_load` that refuses, before building anything, what would exhaust the stack or
    the memory: nesting deeper than MAX_YAML_DEPTH, alias bombs ("billion laughs") that expand
    to more than MAX_YAML_VALUES values, and aliases that contain themselves."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                problem = f"nested more than {MAX_YAML_DEPTH} levels deep"
                raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        value = super().construct_yaml_int(node)
        if abs(value).bit_length() > 14_000:  # about 4,200 digits: Python refuses to write it out
            raise yaml.constructor.ConstructorError(None, None, "a number with thousands of digits",
                                                    node.start_mark)
        return value

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)


def _check_expansion(root: yaml.Node) -> None:
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels below), aliases expanded
    open_nodes: set[int] = set()

    def fail(node: yaml.Node, problem: str):
        raise yaml.composer.ComposerError(None, None, problem, node.start_mark)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            fail(node, "an alias refers to a value that contains it")
        if key not in measured:
            if depth > MAX_YAML_DEPTH:
                fail(node, f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded")
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            open_nodes.add(key)
            values, below = 1, 0
            for child in children:
                child_values, child_below = measure(child, depth + 1)
                values, below = values + child_values, max(below, child_below + 1)
                if values > MAX_YAML_VALUES:
                    fail(node, f"more than {MAX_YAML_VALUES} values once aliases are expanded")
            open_nodes.discard(key)
            measured[key] = (values, below)
        values, below = measured[key]
        if depth + below > MAX_YAML_DEPTH:
            fail(node, f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded")
        return values, below

    measure(root, 0)


def _load_yaml(file: str, text: str, problems: list[PolicyProblem]) -> Any:
    loader = None
    try:
        loader = _LimitedLoader(text)
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(PolicyProblem(file, where, f"not valid YAML: {reason}"))
        return None
    except (ValueError, TypeError, AttributeError, LookupError, OverflowError) as exc:
        # PyYAML's constructors let these through for values it recognizes but cannot build:
        # 2026-13-45, an integer of thousands of digits, `!!timestamp soon`, `!!int ''`
        problems.append(PolicyProblem(file, "", f"not valid YAML: a value cannot be read ({exc})"))
        return None
    finally:
        if loader is not None:
            loader.dispose()


def parse_policy(files: Mapping[str, str], taxonomy: Taxonomy) -> Policy:
    """Parse and check a policy given the text of its files (by file name)."""
    problems: list[PolicyProblem] = []
    if "purposes.yaml" not in files:
        raise PolicyInvalid([PolicyProblem("purposes.yaml", "", "the file is missing")])
    purposes_doc = _load_yaml("purposes.yaml", files["purposes.yaml"], problems)
    attributes_doc = (
        _load_yaml("attributes.yaml", files["attributes.yaml"], problems)
        if "attributes.yaml" in files
        else {"attributes": []}
    )
    rules_doc = (
        _load_yaml("rules.yaml", files["rules.yaml"], problems) if "rules.yaml" in files else {}
    )
    if problems:
        raise PolicyInvalid(problems)

    chk = _Checker("purposes.yaml")
    doc = chk.mapping(purposes_doc, "top level")
    chk.unknown_keys(doc, {"version", "controller", "purposes"}, "top level")
    declared = doc.get("version")
    if isinstance(declared, (int, float)) and not isinstance(declared, bool):
        declared = str(declared)
    if not isinstance(declared, str) or not declared.strip():
        chk.add("version", "'version' is required: a text such as \"2026-11-01\"")
        declared = ""
    controller = _parse_controller(chk, doc.get("controller"))
    purposes = _parse_purposes(chk, doc.get("purposes"), taxonomy)
    problems += chk.problems

    achk = _Checker("attributes.yaml")
    attributes = _parse_attributes(achk, attributes_doc, {p.id: p for p in purposes}, taxonomy)
    problems += achk.problems

    placements: tuple = ()
    if not problems:
        from .rules import parse_rules  # the rules need the purposes and attributes parsed first

        placements, rule_problems = parse_rules(
            rules_doc, {p.id: p for p in purposes}, {a.id: a for a in attributes}
        )
        problems += rule_problems

    if problems:
        raise PolicyInvalid(problems)
    return Policy(
        declared_version=declared,
        content_hash=content_hash(files),
        controller=controller,
        purposes=tuple(purposes),
        attributes=tuple(attributes),
        placements=placements,
    )


def _parse_controller(chk: _Checker, raw: Any) -> Controller:
    data = chk.mapping(raw, "controller")
    chk.unknown_keys(data, {"name", "contact", "address", "dpo"}, "controller")
    return Controller(
        name=chk.string(data, "name", "controller") or "",
        contact=chk.string(data, "contact", "controller") or "",
        address=chk.string(data, "address", "controller", required=False),
        dpo=chk.string(data, "dpo", "controller", required=False),
    )


PURPOSE_KEYS = {
    "id",
    "version",
    "legal_basis",
    "data_use",
    "lifetime_days",
    "special_categories",
    "gpc",
    "tcf_purposes",
    "consent_mode",
    "notice",
}


def _parse_purposes(chk: _Checker, raw: Any, taxonomy: Taxonomy) -> list[Purpose]:
    if not isinstance(raw, list) or not raw:
        chk.add("purposes", "must be a non-empty list of purposes")
        return []
    result: list[Purpose] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry = f"purposes[{index}]"
        data = chk.mapping(item, entry)
        if not data:
            continue
        pid = chk.identifier(data, entry)
        if pid:
            entry = f"purpose '{pid}'"
            if pid in seen:
                chk.add(entry, "the id is used twice")
            seen.add(pid)
        chk.unknown_keys(data, PURPOSE_KEYS, entry)
        version = chk.integer(data, "version", entry, required=True, minimum=1, maximum=MAX_VERSION)
        basis = data.get("legal_basis")
        if basis not in LEGAL_BASES:
            chk.add(entry, f"'legal_basis' must be one of {', '.join(LEGAL_BASES)}, not {basis!r}")
        data_use = chk.string(data, "data_use", entry)
        if data_use and data_use not in taxonomy.data_uses:
            chk.add(entry, f"'data_use' {data_use!r} is not a data use of the Fides taxonomy")
        lifetime = chk.integer(data, "lifetime_days", entry, required=False, minimum=1, maximum=MAX_DAYS)
        special = chk.boolean(data, "special_categories", entry)
        gpc = chk.boolean(data, "gpc", entry)
        tcf = chk.list_of(data, "tcf_purposes", entry, int)
        for n in tcf:
            if not 1 <= n <= 11:
                chk.add(entry, f"'tcf_purposes' has {n}: TCF purposes are numbered 1 to 11")
        if tcf and basis != "consent":
            chk.add(entry, "'tcf_purposes' is only for purposes whose legal basis is consent")
        modes = chk.list_of(data, "consent_mode", entry, str)
        for m in modes:
            if m not in CONSENT_MODE_TYPES:
                chk.add(entry, f"'consent_mode' has {m!r}; known types: {', '.join(CONSENT_MODE_TYPES)}")
        if special and basis != "consent":
            chk.add(entry, "'special_categories: true' needs explicit consent: legal_basis must be consent")
        if gpc and basis not in SETTABLE_BASES:
            chk.add(entry, "'gpc: true' needs a purpose a person can refuse (consent or legitimate_interest)")
        notices = _parse_notices(chk, data.get("notice"), entry)
        if pid and version and basis in LEGAL_BASES and data_use and notices:
            result.append(
                Purpose(
                    id=pid,
                    version=version,
                    legal_basis=basis,
                    data_use=data_use,
                    notices=notices,
                    lifetime_days=lifetime,
                    special_categories=special,
                    gpc=gpc,
                    tcf_purposes=tuple(sorted(set(tcf))),
                    consent_mode=tuple(dict.fromkeys(modes)),
                )
            )
    return result


def _parse_notices(chk: _Checker, raw: Any, entry: str) -> dict[str, Notice]:
    where = f"{entry} notice"
    if not isinstance(raw, dict) or not raw:
        chk.add(entry, "'notice' is required: a title and description per language (en at least)")
        return {}
    notices: dict[str, Notice] = {}
    for locale, text in raw.items():
        if not isinstance(locale, str) or not LOCALE_RE.match(locale):
            chk.add(where, f"{locale!r} is not a language code such as en, de or nb")
            continue
        data = chk.mapping(text, f"{where} '{locale}'")
        chk.unknown_keys(data, {"title", "description"}, f"{where} '{locale}'")
        title = chk.string(data, "title", f"{where} '{locale}'")
        description = chk.string(data, "description", f"{where} '{locale}'")
        if title and description:
            notices[locale] = Notice(title.strip(), description.strip())
    if FALLBACK_LOCALE not in raw:
        chk.add(where, "an English ('en') text is required: it is the fallback for other languages")
        return {}
    return notices if FALLBACK_LOCALE in notices else {}


ATTRIBUTE_KEYS = {"id", "type", "data_category", "purposes", "special_category", "retention_days",
                  "description", "label"}


def _parse_attributes(
    chk: _Checker, raw: Any, purposes: Mapping[str, Purpose], taxonomy: Taxonomy
) -> list[Attribute]:
    doc = chk.mapping(raw if raw is not None else {"attributes": []}, "top level")
    chk.unknown_keys(doc, {"attributes"}, "top level")
    items = doc.get("attributes") or []
    if not isinstance(items, list):
        chk.add("attributes", "must be a list of attributes")
        return []
    result: list[Attribute] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        entry = f"attributes[{index}]"
        data = chk.mapping(item, entry)
        if not data:
            continue
        aid = chk.identifier(data, entry)
        if aid:
            entry = f"attribute '{aid}'"
            if aid in seen:
                chk.add(entry, "the id is used twice")
            seen.add(aid)
        chk.unknown_keys(data, ATTRIBUTE_KEYS, entry)
        atype = data.get("type")
        if atype not in ATTRIBUTE_TYPES:
            chk.add(entry, f"'type' must be one of {', '.join(ATTRIBUTE_TYPES)}, not {atype!r}")
        category = chk.string(data, "data_category", entry)
        if category and category not in taxonomy.data_categories:
            chk.add(entry, f"'data_category' {category!r} is not a data category of the Fides taxonomy")
        special = chk.boolean(data, "special_category", entry)
        retention = chk.integer(data, "retention_days", entry, required=False, minimum=1, maximum=MAX_DAYS)
        listed = chk.list_of(data, "purposes", entry, str)
        for pid in listed:
            purpose = purposes.get(pid)
            if purpose is None:
                chk.add(entry, f"lists purpose '{pid}', which purposes.yaml does not define")
            elif special and not purpose.special_categories:
                chk.add(
                    entry,
                    f"is a special category (Art. 9) but lists purpose '{pid}', "
                    "which does not have 'special_categories: true'",
                )
        labels = data.get("label") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and LOCALE_RE.match(k) and isinstance(v, str) and v.strip()
            for k, v in labels.items()
        ):
            chk.add(entry, "'label' must map language codes to texts, e.g. {en: \"age range\"}")
            labels = {}
        if aid and atype in ATTRIBUTE_TYPES and category:
            result.append(
                Attribute(
                    id=aid,
                    type=atype,
                    data_category=category,
                    purposes=tuple(dict.fromkeys(listed)),
                    special_category=special,
                    retention_days=retention,
                    labels={k: v.strip() for k, v in labels.items()},
                )
            )
    return result
