"""Reading a policy: the text of its YAML files in, a frozen `Policy` out, or every problem.

`parse_policy` turns the text of a policy directory's YAML files into a frozen
`Policy`, or raises `PolicyInvalid` listing every problem with the file, the
entry and what is wrong, so that data-protection staff can fix it without a
programmer. Pure: the caller reads the files and passes their text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ..errors import PolicyInvalid, PolicyProblem
from ..locale import CODE_RE as LOCALE_RE
from ..taxonomy import Taxonomy
from . import safe_yaml
from .model import (
    ATTRIBUTE_TYPES,
    CONSENT_MODE_TYPES,
    FALLBACK_LOCALE,
    LEGAL_BASES,
    SETTABLE_BASES,
    Attribute,
    Controller,
    Notice,
    Placement,
    Policy,
    Purpose,
)
from .placements import parse_rules
from .problems import Problems

POLICY_FILES = ("purposes.yaml", "attributes.yaml", "rules.yaml")
MAX_VERSION = 2**31 - 1  # purpose versions are stored in 32-bit integer columns
MAX_DAYS = 36_500  # lifetimes and retention periods: dates beyond must stay computable


def content_hash(files: Mapping[str, str]) -> str:
    """SHA-256 over the policy files' names and contents, in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def parse_policy(files: Mapping[str, str], taxonomy: Taxonomy) -> Policy:
    """Parse and check a policy given the text of its files (by file name)."""
    if "purposes.yaml" not in files:
        raise PolicyInvalid([PolicyProblem("purposes.yaml", "", "the file is missing")])
    read = {name: Problems(name) for name in POLICY_FILES}
    purposes_doc = safe_yaml.load(files["purposes.yaml"], read["purposes.yaml"])
    attributes_doc = (
        safe_yaml.load(files["attributes.yaml"], read["attributes.yaml"])
        if "attributes.yaml" in files
        else {"attributes": []}
    )
    rules_doc = (
        safe_yaml.load(files["rules.yaml"], read["rules.yaml"]) if "rules.yaml" in files else {}
    )
    problems: list[PolicyProblem] = [p for r in read.values() for p in r.items]
    if problems:
        raise PolicyInvalid(problems)

    chk = Problems("purposes.yaml")
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
    problems += chk.items

    achk = Problems("attributes.yaml")
    attributes = _parse_attributes(achk, attributes_doc, {p.id: p for p in purposes}, taxonomy)
    problems += achk.items

    placements: tuple[Placement, ...] = ()
    if not problems:  # the rules need the purposes and attributes parsed first
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


def _parse_controller(chk: Problems, raw: object) -> Controller:
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


def _parse_purposes(chk: Problems, raw: object, taxonomy: Taxonomy) -> list[Purpose]:
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
        tcf = chk.integers(data, "tcf_purposes", entry)
        for n in tcf:
            if not 1 <= n <= 11:
                chk.add(entry, f"'tcf_purposes' has {n}: TCF purposes are numbered 1 to 11")
        if tcf and basis != "consent":
            chk.add(entry, "'tcf_purposes' is only for purposes whose legal basis is consent")
        modes = chk.strings(data, "consent_mode", entry)
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


def _parse_notices(chk: Problems, raw: object, entry: str) -> dict[str, Notice]:
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
    chk: Problems, raw: object, purposes: Mapping[str, Purpose], taxonomy: Taxonomy
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
        listed = chk.strings(data, "purposes", entry)
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
