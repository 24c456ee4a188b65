"""Reading rules.yaml: placements, their defaults and backends, and rules with compiled conditions.

`parse_rules` reads the `placements` of rules.yaml, compiles every rule's
condition (`gateway.core.conditions`) and checks it against the purposes and the
attribute catalogue. Every problem names the file (`rules.yaml`), the entry
(`placement 'homepage_hero' rule 'outdoor-fans'`) and what is wrong, so that
data-protection staff can fix it without a programmer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .. import conditions
from ..errors import PolicyProblem
from .model import FALLBACK_LOCALE, JSON, Attribute, Backend, Placement, Purpose, Rule
from .problems import Problems, kind

FILE = "rules.yaml"
RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}$")
TIMEOUT_MS_MAX = 10_000
WHEN_MAX_CHARS = conditions.WHEN_MAX_CHARS

PLACEMENT_KEYS = {"id", "purpose", "default", "rules", "backend", "description"}
DEFAULT_KEYS = {"content", "explanation"}
RULE_KEYS = {"id", "when", "content", "explanation", "description"}
BACKEND_KEYS = {"url", "timeout_ms", "secret_env"}


def parse_rules(
    doc: object, purposes: Mapping[str, Purpose], attributes: Mapping[str, Attribute]
) -> tuple[tuple[Placement, ...], list[PolicyProblem]]:
    """Parse rules.yaml (already loaded from YAML) into placements with compiled rules.

    Returns the placements that are free of problems and every problem found;
    a caller refuses the policy when the list is not empty.
    """
    problems = Problems(FILE)
    if doc is None:
        return (), []
    if not isinstance(doc, Mapping):
        problems.add("top level", f"must be a mapping with 'placements', not {kind(doc)}")
        return (), problems.items
    problems.unknown_keys(doc, {"placements"}, "top level")
    raw = doc.get("placements")
    if raw is None:
        return (), problems.items
    if not isinstance(raw, list):
        problems.add("placements", f"must be a list of placements, not {kind(raw)}")
        return (), problems.items
    result: list[Placement] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        placement = _parse_placement(problems, item, f"placements[{index}]", seen, purposes, attributes)
        if placement is not None:
            result.append(placement)
    return tuple(result), problems.items


def _parse_placement(
    problems: Problems,
    item: object,
    entry: str,
    seen: set[str],
    purposes: Mapping[str, Purpose],
    attributes: Mapping[str, Attribute],
) -> Placement | None:
    if not isinstance(item, Mapping):
        problems.add(entry, f"must be a mapping, not {kind(item)}")
        return None
    before = len(problems.items)
    pid = item.get("id")
    if isinstance(pid, str) and RULE_ID_RE.match(pid):
        entry = f"placement '{pid}'"
        if pid in seen:
            problems.add(entry, "the id is used twice")
        seen.add(pid)
    else:
        problems.add(entry, f"'id' must match [a-z][a-z0-9_-]*, not {pid!r}")
        pid = None
    problems.unknown_keys(item, PLACEMENT_KEYS, entry)

    purpose_id = item.get("purpose")
    purpose: Purpose | None = None
    if not isinstance(purpose_id, str) or not purpose_id:
        problems.add(entry, "'purpose' is required: the purpose (from purposes.yaml) this placement serves")
    else:
        purpose = purposes.get(purpose_id)
        if purpose is None:
            known = ", ".join(sorted(purposes)) or "none"
            problems.add(entry, f"'purpose' is '{purpose_id}', which purposes.yaml does not define "
                                f"(known: {known})")

    default_content, default_explanation = _parse_default(problems, item.get("default"), entry)
    backend = _parse_backend(problems, item.get("backend"), entry) if "backend" in item else None

    raw_rules = item.get("rules")
    rules: list[Rule] = []
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        problems.add(entry, f"'rules' must be a list of rules, not {kind(raw_rules)}")
        raw_rules = []
    if not raw_rules and "backend" not in item:
        problems.add(entry, "needs at least one rule, or a 'backend' that decides")
    rule_ids: set[str] = set()
    for index, raw_rule in enumerate(raw_rules):
        where = f"{entry} rules[{index}]"
        rule = _parse_rule(problems, raw_rule, where, entry, rule_ids, purpose, attributes)
        if rule is not None:
            rules.append(rule)

    if len(problems.items) != before or pid is None or purpose is None:
        return None
    profile_keys = {a for r in rules for a in r.reads}
    return Placement(
        id=pid,
        purpose=purpose.id,
        default_content=default_content,
        default_explanation=default_explanation,
        rules=tuple(rules),
        backend=backend,
        date_attributes=frozenset(a for a in profile_keys if attributes[a].type == "date"),
    )


def _parse_default(problems: Problems, raw: object, entry: str) -> tuple[dict[str, JSON], dict[str, str]]:
    if not isinstance(raw, Mapping):
        problems.add(entry, "'default' is required: the content everyone may see, with 'content' and "
                            "'explanation'")
        return {}, {}
    where = f"{entry} default"
    problems.unknown_keys(raw, DEFAULT_KEYS, where)
    return _content(problems, raw, where), _explanation(problems, raw, where)


def _content(problems: Problems, data: Mapping[object, object], entry: str) -> dict[str, JSON]:
    value = data.get("content")
    if not isinstance(value, Mapping):
        problems.add(entry, f"'content' is required: a mapping such as {{id: \"outdoor-jackets\"}}, "
                            f"not {kind(value)}")
        return {}
    problem = _not_json(value, "'content'")
    if problem:
        problems.add(entry, f"{problem}: content is JSON data (texts, numbers, true/false, lists and "
                            "mappings with text keys); quote dates and times")
        return {}
    return dict(value)


def _not_json(value: object, where: str) -> str | None:
    """What in `value` JSON cannot carry (decisions return and store content as JSON), or None."""
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}"
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _not_json(v, f"{where}[{i}]"))), None)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key that is not a text ({kind(key)})"
            problem = _not_json(item, f"{where}.{key}")
            if problem:
                return problem
        return None
    return f"{where} is of type {kind(value)}"


def _explanation(problems: Problems, data: Mapping[object, object], entry: str) -> dict[str, str]:
    value = data.get("explanation")
    if not isinstance(value, Mapping) or not value:
        problems.add(entry, "'explanation' is required: a text per language, English ('en') at least")
        return {}
    texts: dict[str, str] = {}
    for locale, text in value.items():
        if not isinstance(locale, str) or not LOCALE_RE.match(locale):
            problems.add(entry, f"'explanation' has {locale!r}, which is not a language code "
                                "such as en, de or nb")
        elif not isinstance(text, str) or not text.strip():
            problems.add(entry, f"'explanation' in '{locale}' must be a non-empty text, not {kind(text)}")
        else:
            texts[locale] = text.strip()
    if FALLBACK_LOCALE not in value:
        problems.add(entry, "'explanation' needs an English ('en') text: "
                            "it is the fallback for other languages")
    return texts


def _parse_backend(problems: Problems, raw: object, entry: str) -> Backend | None:
    where = f"{entry} backend"
    if not isinstance(raw, Mapping):
        problems.add(where, f"must be a mapping with url, timeout_ms and secret_env, not {kind(raw)}")
        return None
    problems.unknown_keys(raw, BACKEND_KEYS, where)
    ok = True
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.add(where, f"'url' must be an http:// or https:// address, not {url!r}")
        ok = False
    timeout = raw.get("timeout_ms")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= TIMEOUT_MS_MAX:
        problems.add(where, f"'timeout_ms' must be a whole number from 1 to {TIMEOUT_MS_MAX}, "
                            f"not {timeout!r}")
        ok = False
    secret_env = raw.get("secret_env")
    if not isinstance(secret_env, str) or not ENV_NAME_RE.match(secret_env):
        problems.add(where, "'secret_env' must name an environment variable such as RECO_BACKEND_SECRET "
                            f"([A-Z_][A-Z0-9_]*), not {secret_env!r}")
        ok = False
    if not ok or not isinstance(url, str) or not isinstance(timeout, int) or not isinstance(secret_env, str):
        return None
    return Backend(url, timeout, secret_env)


def _parse_rule(
    problems: Problems,
    raw: object,
    entry: str,
    placement_entry: str,
    seen: set[str],
    purpose: Purpose | None,
    attributes: Mapping[str, Attribute],
) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.add(entry, f"must be a mapping, not {kind(raw)}")
        return None
    before = len(problems.items)
    rid = raw.get("id")
    if isinstance(rid, str) and RULE_ID_RE.match(rid):
        entry = f"{placement_entry} rule '{rid}'"
        if rid in seen:
            problems.add(entry, "the id is used twice in this placement")
        seen.add(rid)
    else:
        problems.add(entry, f"'id' must match [a-z][a-z0-9_-]*, not {rid!r}")
        rid = None
    problems.unknown_keys(raw, RULE_KEYS, entry)
    content = _content(problems, raw, entry)
    explanation = _explanation(problems, raw, entry)
    when = raw.get("when")
    condition = None
    if when is None:
        problems.add(entry, "'when' is required: a CEL condition such as "
                            "'\"outdoor\" in profile.browsing_categories'")
    elif not isinstance(when, str) or not when.strip():
        problems.add(entry, f"'when' must be a CEL condition written as text, not {when!r}")
    elif len(when) > WHEN_MAX_CHARS:
        problems.add(entry, f"'when' is longer than {WHEN_MAX_CHARS} characters: split the condition "
                            "into several rules")
    else:
        condition = _check_condition(problems, when, entry, purpose, attributes)
    if len(problems.items) != before or rid is None or condition is None or not isinstance(when, str):
        return None
    return Rule(rid, when, content, explanation, condition)


def _check_condition(
    problems: Problems,
    when: str,
    entry: str,
    purpose: Purpose | None,
    attributes: Mapping[str, Attribute],
) -> conditions.Condition | None:
    """Compile a condition and check what it reads; returns the condition, or None."""
    found, messages = conditions.read(when)
    before = len(problems.items)
    for message in messages:
        problems.add(entry, message)
    if found is None:
        return None
    for name in sorted(found.reads):
        attribute = attributes.get(name)
        if attribute is None:
            problems.add(entry, f"reads '{name}', which is not in the attribute catalogue (attributes.yaml)")
        elif purpose is not None and attribute.special_category and not purpose.special_categories:
            problems.add(entry, f"reads '{name}', a special category of data (Art. 9 GDPR), but purpose "
                                f"'{purpose.id}' does not have 'special_categories: true'")
        elif purpose is not None and purpose.id not in attribute.purposes:
            listed = ", ".join(attribute.purposes) or "no purpose"
            problems.add(entry, f"reads '{name}', which purpose '{purpose.id}' may never use "
                                f"(attributes.yaml lists it for: {listed})")
    for key in sorted(found.context_keys):
        if key in attributes:
            problems.add(entry, f"reads context.{key}, but '{key}' is a catalogue attribute: context is no "
                                f"side door for personal data; read profile.{key} if the purpose may use it")
    if len(problems.items) != before:
        return None
    try:
        return conditions.prepare(when, found)
    except conditions.ConditionError as exc:
        problems.add(entry, str(exc))
        return None
