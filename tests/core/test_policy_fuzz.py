"""Fuzzing the policy loader (`parse_policy`): whatever the files say, out comes a `Policy` or a
`PolicyInvalid` listing problems, never another exception, a crash, a hang or a memory blow-up.
At the end, what tests/core/test_tcf.py's fuzzing of the TC string decoder leaves out: that
what decodes is in range, and that what passes validation really keeps the TCF rules.

Inputs: arbitrary and YAML-ish text in each file; the demo policy with keys dropped, values
replaced by other types, huge numbers and odd unicode; YAML's own traps (alias bombs, recursive
aliases, deep nesting, tags such as !!binary and !!timestamp, out-of-range dates, integers too
long to convert); rules.yaml with random CEL conditions. A policy that does parse must also be
usable by the gateway: its numbers fit the database and date arithmetic, and the content of
its placements is JSON data (what decisions return and store).
"""

from __future__ import annotations

import json
import re
import string
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.errors import PolicyInvalid, PolicyProblem
from gateway.core.policy import POLICY_FILES, Policy, parse_policy
from gateway.core.taxonomy import fides_taxonomy
from gateway.core.tcf import TCFError, TCString, decode, parse_for_consent

POLICIES = Path(__file__).resolve().parents[2] / "policies"
DEMO = {name: (POLICIES / name).read_text(encoding="utf-8") for name in POLICY_FILES}
DEMO_DOCS = {name: yaml.safe_load(text) for name, text in DEMO.items()}
TAXONOMY = fides_taxonomy()
FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
SLOW_SECONDS = 10.0  # far above the ~0.05 s a parse takes; a bomb that expands takes minutes


def outcome(files: dict[str, str]) -> Policy | None:
    """Parse; a Policy must be usable, a PolicyInvalid must carry problems. Anything else fails."""
    started = time.perf_counter()
    try:
        policy = parse_policy(files, TAXONOMY)
    except PolicyInvalid as exc:
        assert exc.problems and all(isinstance(p, PolicyProblem) for p in exc.problems)
        assert all(isinstance(p.message, str) and p.message for p in exc.problems)
        assert str(exc).startswith("the policy has")
        policy = None
    else:
        assert isinstance(policy, Policy)
        _usable(policy)
    assert time.perf_counter() - started < SLOW_SECONDS
    return policy


def _usable(policy: Policy) -> None:
    """What the gateway does with a parsed policy must not fail on the policy's values."""
    later = datetime(2200, 1, 1, tzinfo=UTC)
    assert isinstance(policy.version, str) and policy.version
    for p in policy.purposes:
        assert 1 <= p.version < 2**31, "purpose versions are stored in a 32-bit column"
        if p.lifetime_days:
            later + timedelta(days=p.lifetime_days)  # expires_at of a consent given then
    for a in policy.attributes:
        if a.retention_days:
            later + timedelta(days=a.retention_days)  # delete_after of a value written then
    for placement in policy.placements:
        json.dumps(placement.default_content, allow_nan=False)
        json.dumps(placement.default_explanation, allow_nan=False)
        for rule in placement.rules:
            json.dumps(rule.content, allow_nan=False)


def with_file(name: str, text: str | None) -> dict[str, str]:
    files = dict(DEMO)
    if text is None:
        files.pop(name)
    else:
        files[name] = text
    return files


def test_demo_policy_is_usable():
    assert outcome(dict(DEMO)) is not None


# --- arbitrary and YAML-ish text ------------------------------------------------------------

FRAGMENTS = [
    "\n", "  ", "    ", "- ", ": ", "? ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "<<: *a",
    "!!binary ", "!!int ", "!!float ", "!!timestamp ", "!!set ", "!!omap ", "!!pairs ", "!!str ",
    "!!python/object/apply:os.system ", "!local ", "|\n", ">-\n", "'", '"', "# ", "%YAML 1.1\n",
    "---\n", "...\n", "\t", "\x00", "\ufeff", "\u2028", "é", "\U0001d518", "\\", "\\u0000",
    "id", "version", "purposes", "controller", "attributes", "placements", "rules", "when",
    "notice", "en", "title", "description", "legal_basis", "consent", "personalization",
    "1", "-1", "0", "1e999", "-.inf", ".nan", "0x1F", "0o17", "1_000", "9" * 5000, "~", "null",
    "true", "no", "2026-13-45", "2026-02-30 25:61:61", "2026-11-01", "12:30:45",
]
YAMLISH = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map("".join)


@FUZZ
@given(st.sampled_from(POLICY_FILES), st.one_of(st.text(max_size=300), YAMLISH))
def test_any_text_in_any_file(name, text):
    outcome(with_file(name, text))


@FUZZ
@given(st.sampled_from(POLICY_FILES), st.sampled_from(["prefix", "suffix", "splice"]), YAMLISH,
       st.integers(0, 10_000))
def test_demo_text_with_garbage_spliced_in(name, where, garbage, at):
    text = DEMO[name]
    at %= len(text) + 1
    text = {"prefix": garbage + text, "suffix": text + garbage,
            "splice": text[:at] + garbage + text[at:]}[where]
    outcome(with_file(name, text))


def test_a_missing_file():
    for name in POLICY_FILES:
        outcome(with_file(name, None))


# --- mutated documents ----------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 2**31, 2**63, 10**18, 10**300]),
    st.floats(), st.text(max_size=30), st.sampled_from(["", " ", "en", "consent", "user", "\x00"]),
    st.dates(), st.datetimes(timezones=st.just(UTC)), st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def _containers(doc) -> list:
    """Every list and mapping inside `doc`, depth first."""
    found, stack = [], [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            found.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(POLICY_FILES))
    doc = yaml.safe_load(DEMO[name])  # a fresh copy
    for _ in range(draw(st.integers(1, 4))):
        containers = _containers(doc)
        node = draw(st.sampled_from(containers))
        if not node:
            continue
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        action = draw(st.sampled_from(["drop", "replace", "wrap", "stringify", "duplicate"]))
        if action == "drop":
            del node[key]
        elif action == "replace":
            node[key] = draw(VALUES)
        elif action == "wrap":
            node[key] = [node[key]] if draw(st.booleans()) else {"value": node[key]}
        elif action == "stringify":
            node[key] = str(node[key])
        elif isinstance(node, list):
            node.append(node[key])
        else:
            node[key + "_copy"] = node[key]
    return name, yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@settings(FUZZ, max_examples=150)
@given(mutated())
def test_mutated_demo_documents(case):
    name, text = case
    outcome(with_file(name, text))


# --- YAML traps -----------------------------------------------------------------------------

def billion_laughs(levels: int, width: int, indent: str = "") -> str:
    lines = [f'{indent}l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"{indent}l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# (file, text before the use, how the use replaces a part of the demo file)
BOMB_TARGETS = [
    ("purposes.yaml", "tcf_purposes: [5, 6]", "tcf_purposes: *top"),
    ("purposes.yaml", 'version: "2026-11-01"', "version: *top"),
    ("purposes.yaml", "    legal_basis: consent\n    data_use: personalize.content.profiled\n"
                      "    lifetime_days: 395",
     "    legal_basis: *top\n    data_use: personalize.content.profiled\n    lifetime_days: 395"),
    ("attributes.yaml", "purposes: [service]", "purposes: *top"),
    ("attributes.yaml", 'label: {en: "your city"', 'label: {en: *top'),
    ("rules.yaml", 'content: {id: "generic-hero"}', "content: {id: *top}"),
    ("rules.yaml", "when: 'profile.orders_count >= 2'", "when: *top"),
    ("rules.yaml", "id: homepage_hero", "id: *top"),
]


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(BOMB_TARGETS), st.integers(1, 12), st.integers(2, 10))
def test_alias_bombs_cannot_blow_up(target, levels, width):
    name, old, new = target
    assert old in DEMO[name]
    text = "bomb:\n" + billion_laughs(levels, width, "  ") + DEMO[name].replace(old, new.replace(
        "*top", f"*l{levels}"), 1)
    outcome(with_file(name, text))


def test_the_classic_billion_laughs_is_refused():
    text = billion_laughs(9, 10) + "version: *l9\n"
    started = time.perf_counter()
    with pytest.raises(PolicyInvalid) as err:
        parse_policy(with_file("purposes.yaml", text), TAXONOMY)
    assert time.perf_counter() - started < SLOW_SECONDS
    (problem,) = err.value.problems
    assert problem.file == "purposes.yaml" and "aliases are expanded" in problem.message


@pytest.mark.parametrize("text", [
    "version: &v [*v]\n",
    "version: &v {again: *v}\n",
    "purposes: &p\n  - *p\n",
    "controller: &c\n  name: *c\n  contact: x\n",
])
def test_recursive_aliases(text):
    outcome(with_file("purposes.yaml", text))


@pytest.mark.parametrize("depth", [10, 100, 400, 1_000, 20_000])
@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}"), ("- ", "")])
def test_deep_nesting(depth, opening, closing):
    if opening == "- ":
        nested = "".join(f"{' ' * (2 * i)}-\n" for i in range(min(depth, 2_000))) + " " * 4000 + "x\n"
    else:
        nested = opening * depth + "1" + closing * depth
    for name in POLICY_FILES:
        outcome(with_file(name, f"version: {nested}\n" if name == "purposes.yaml" else nested))


@pytest.mark.parametrize("value", [
    "9" * 5000, "-" + "9" * 5000, "0x" + "f" * 5000, "1e99999", ".nan", "-.inf",
    "2026-13-45", "2026-02-30 25:61:61", "!!timestamp soon", "!!int many", "!!float much",
    "!!int ''", "!!float ''", "!!bool ''", "!!null x", "!!map []", "!!seq {}", "!!str [a]",
    "!!binary '@@@'", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a]", "!!pairs [1]",
    "!!python/object/apply:os.system [echo]", "!custom x", "2026-11-01", "12:30:45",
    "{? [a]: 1}", "{? {a: 1}: 1}", "<<: 1", "*undefined",
])
@pytest.mark.parametrize("where", [
    ("purposes.yaml", "lifetime_days: 395", "lifetime_days: {}"),
    ("purposes.yaml", "    version: 2\n", "    version: {}\n"),
    ("purposes.yaml", 'version: "2026-11-01"', "version: {}"),
    ("attributes.yaml", "retention_days: 180", "retention_days: {}"),
    ("rules.yaml", 'content: {id: "generic-hero"}', "content: {{id: x, extra: {}}}"),
    ("rules.yaml", "timeout_ms: 250", "timeout_ms: {}"),
])
def test_odd_yaml_values(value, where):
    name, old, new = where
    assert old in DEMO[name]
    outcome(with_file(name, DEMO[name].replace(old, new.format(value), 1)))


@pytest.mark.parametrize("days", [36_500, 36_501, 10**6, 10**9, 10**20])
def test_lifetimes_and_retention_fit_date_arithmetic(days):
    outcome(with_file("purposes.yaml", DEMO["purposes.yaml"].replace("lifetime_days: 395",
                                                                       f"lifetime_days: {days}", 1)))
    outcome(with_file("attributes.yaml", DEMO["attributes.yaml"].replace(
        "retention_days: 180", f"retention_days: {days}", 1)))


@pytest.mark.parametrize("version", [2**31 - 1, 2**31, 2**63])
def test_purpose_versions_fit_the_database(version):
    outcome(with_file("purposes.yaml", DEMO["purposes.yaml"].replace(
        "    version: 2\n", f"    version: {version}\n", 1)))


# --- random rules ---------------------------------------------------------------------------

ATTRIBUTES = [a["id"] for a in DEMO_DOCS["attributes.yaml"]["attributes"]]
CEL_TOKENS = [
    "profile.", "context.", "now", "has(", 'duration("', "h\")", 'timestamp("', "size(", ".size()",
    ".exists(c, ", ".all(x, ", ".map(x, ", ".filter(x, ", "c", "x", " in ", "[", "]", "(", ")", "{",
    "}", ": ", ", ", " && ", " || ", "!", " == ", " != ", " >= ", " < ", " + ", " - ", " * ", " / ",
    " % ", " ? ", '"outdoor"', "'x'", 'b"\\xff"', 'r"\\d"', '"""', "1", "1.5", "-0", "1u",
    "0x7fffffffffffffff", "99999999999999999999999", "1e400", "true", "null", "int(", "string(",
    "matches(", ".startsWith(", "dyn(", "type(", "\\", "\x00", "é", "\n", ".", "?.", "@", "#",
    *ATTRIBUTES, *(f"profile.{a}" for a in ATTRIBUTES), "profile.nope", "context.age_range",
]
CEL_LIKE = st.lists(st.sampled_from(CEL_TOKENS), min_size=1, max_size=25).map("".join)


@st.composite
def deep_condition(draw) -> str:
    depth = draw(st.integers(1, 30_000))
    shape = draw(st.sampled_from(["parens", "dots", "plus", "index", "calls", "lists", "not", "ternary"]))
    return {
        "parens": "(" * depth + "true" + ")" * depth,
        "dots": "context.a" + ".b" * depth + ' == "x"',
        "plus": "profile.orders_count" + " + 1" * depth + " > 2",
        "index": "profile.browsing_categories" + "[0]" * depth + ' == "x"',
        "calls": "size(" * depth + "profile.browsing_categories" + ")" * depth + " > 0",
        "lists": "[" * depth + "]" * depth + " == []",
        "not": "!" * depth + "true",
        "ternary": "true ? true : " * depth + "false",
    }[shape]


def rules_file(conditions: list[str]) -> str:
    doc = {"placements": [{
        "id": "fuzzed", "purpose": "personalization",
        "default": {"content": {"id": "default"}, "explanation": {"en": "The same for everyone."}},
        "rules": [{"id": f"r{i}", "when": when, "content": {"id": f"c{i}"},
                   "explanation": {"en": "Because."}} for i, when in enumerate(conditions)],
    }]}
    return yaml.safe_dump(doc, allow_unicode=True, width=10**9)


@settings(FUZZ, max_examples=150)
@given(st.lists(st.one_of(st.text(max_size=80), CEL_LIKE), min_size=1, max_size=4))
def test_random_conditions(conditions):
    outcome(with_file("rules.yaml", rules_file(conditions)))


@settings(FUZZ, max_examples=30)
@given(deep_condition())
def test_deeply_nested_conditions(condition):
    # the CEL library overflows its stack (a segfault that kills the process) on deep enough
    # expressions, and panics with an exception that is not an `Exception` on others
    outcome(with_file("rules.yaml", rules_file([condition])))


# --- TC strings: decoded values are in range, and validation means the rules hold -------------

B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
BITS = st.lists(st.booleans(), max_size=1_400).map(lambda bits: "".join("01"[b] for b in bits))


def _segment(bits: str) -> str:
    bits += "0" * (-len(bits) % 6)
    return "".join(B64URL[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


def _bits(segment: str) -> str:
    return "".join(format(B64URL.index(c), "06b") for c in segment)


def _vectors() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "data" / "tcf_vectors.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))
    return [v["tc_string"] for group in ("valid", "legacy_decodable") for v in vectors[group]]


TC_SEEDS = _vectors()


@st.composite
def random_tc_strings(draw) -> str:
    """Version 2 core segments of random bits, then optional segments of random types."""
    core = "000010" + draw(BITS)
    optional = draw(st.lists(st.tuples(st.integers(0, 7), BITS), max_size=3))
    return ".".join([_segment(core)] + [_segment(format(kind, "03b") + bits) for kind, bits in optional])


@st.composite
def flipped_tc_strings(draw) -> str:
    """Known strings with bits flipped, mostly in the fixed-width header of the core segment
    (so that most still decode, with other values: versions, flags, purposes)."""
    segments = [_bits(part) for part in draw(st.sampled_from(TC_SEEDS)).split(".")]
    for _ in range(draw(st.integers(1, 8))):
        index = draw(st.integers(0, len(segments) - 1)) if draw(st.booleans()) else 0
        bits = segments[index]
        at = draw(st.integers(6, min(len(bits), 240) - 1) if index == 0 else st.integers(0, len(bits) - 1))
        segments[index] = bits[:at] + "10"[int(bits[at])] + bits[at + 1:]
    return ".".join(_segment(bits) for bits in segments)


tc_strings = st.one_of(random_tc_strings(), flipped_tc_strings())


def _ids_within(ids, low: int, high: int) -> None:
    assert list(ids) == sorted(set(ids)) and all(low <= i <= high for i in ids), ids


def _first_broken_rule(tc: TCString) -> str | None:
    if tc.policy_version < 4:
        return "policy_version_below_4"
    if not tc.is_service_specific:
        return "not_service_specific"
    if set(tc.purposes_li_transparency) & {3, 4, 5, 6}:
        return "legitimate_interest_for_purposes_3_to_6"
    if tc.disclosed_vendors is None:
        return "disclosed_vendors_missing"
    return None


@settings(FUZZ, max_examples=150)
@given(tc_strings)
def test_tc_strings_decode_in_range_and_validate_by_the_rules(text):
    try:
        tc = decode(text)
    except TCFError as error:
        assert error.code in ("malformed", "not_version_2")
        with pytest.raises(TCFError) as again:
            parse_for_consent(text)
        assert again.value.code == error.code
        return
    assert tc.version == 2
    assert re.fullmatch("[A-Z]{2}", tc.consent_language) and re.fullmatch("[A-Z]{2}", tc.publisher_cc)
    assert tc.created.tzinfo is not None and tc.last_updated.tzinfo is not None
    _ids_within(tc.special_feature_opt_ins, 1, 12)
    _ids_within(tc.purposes_consent, 1, 24)
    _ids_within(tc.purposes_li_transparency, 1, 24)
    for ids in (tc.vendor_consents, tc.vendor_legitimate_interests, tc.disclosed_vendors or (),
                tc.allowed_vendors or ()):
        _ids_within(ids, 1, 0xFFFF)
    for purpose_id, kind, vendors in tc.publisher_restrictions:
        assert 0 <= purpose_id <= 63 and 0 <= kind <= 3
        _ids_within(vendors, 1, 0xFFFF)
    json.dumps(tc.to_dict(), allow_nan=False)
    broken = _first_broken_rule(tc)
    if broken is None:
        assert parse_for_consent(text) == tc
    else:
        with pytest.raises(TCFError) as caught:
            parse_for_consent(text)
        assert caught.value.code == broken
