"""Placements and their rules: parsed and compiled once, evaluated per decision.

`parse_rules` reads the `placements` of rules.yaml, compiles every rule's
condition with CEL (the `common-expression-language` package, whose engine is
the Rust `cel` crate; bench/README.md says why this one) and checks it against
the purposes and the attribute catalogue. Every problem names the file
(`rules.yaml`), the entry (`placement 'homepage_hero' rule 'outdoor-fans'`) and
what is wrong, so that data-protection staff can fix it without a programmer.

`evaluate` runs a placement's rules, in order, over a subject's permitted view;
the first rule whose condition is true wins. Every rule evaluated gets a
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

Which attributes a condition reads is found by a scan of its tokens (`_scan`
says how and why: the library exposes no syntax tree). The same scan rewrites
`profile.name` into a variable of its own for the program that actually runs,
so that a decision converts each value once and only for the rules it runs;
a property test checks that this program agrees with the condition as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import cel

from .errors import PolicyProblem
from .policy import FALLBACK_LOCALE, LOCALE_RE, Attribute, Purpose

FILE = "rules.yaml"
RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
VARIABLES = ("profile", "context", "now")
TIMEOUT_MS_MAX = 10_000
# The CEL engine overflows its native stack (killing the process) on expressions nested a
# few ten thousand levels deep; no condition a person writes comes near this length.
WHEN_MAX_CHARS = 2_000
ABSENT = "absent"
# In the program that runs, each attribute is a variable of its own (`profile.orders_count`
# becomes `_p_orders_count`, `has(profile.orders_count)` becomes `_h_orders_count`): CEL then
# converts each value once, without the cost of a map, and only for the rules that run.
PROFILE_VAR = "_p_"
HAS_VAR = "_h_"

PLACEMENT_KEYS = {"id", "purpose", "default", "rules", "backend", "description"}
DEFAULT_KEYS = {"content", "explanation"}
RULE_KEYS = {"id", "when", "content", "explanation", "description"}
BACKEND_KEYS = {"url", "timeout_ms", "secret_env"}

# Named functions a condition may call: the CEL standard library as the Rust engine
# provides it (tests/core/test_rules.py checks each one evaluates). Macros (has, all,
# exists, exists_one, map, filter) are expanded by the parser and need no entry.
FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches",
    "int", "uint", "double", "string", "bytes", "dyn", "type", "timestamp", "duration",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
})
# Type names are identifiers a condition may use besides the three variables (`type(x) == int`).
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "string", "bytes", "bool", "list", "map", "null_type", "type"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


# --- the policy as data -----------------------------------------------------------------------

_Load = tuple[str, str, str, bool]  # attribute, its value variable, its has() variable, is a date


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
    content: Mapping[str, Any]
    explanation: Mapping[str, str]
    reads: frozenset[str]  # catalogue attributes the condition reads
    _program: Any = field(default=None, repr=False, compare=False)  # compiled from `_scan(when).flat`
    # worked out once, so that a decision only builds what differs per subject
    _sorted_reads: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _hit: RuleReason = field(init=False, repr=False, compare=False)
    _miss: RuleReason = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.reads))
        object.__setattr__(self, "_sorted_reads", ordered)
        object.__setattr__(self, "_hit", RuleReason(self.id, True, attributes=ordered))
        object.__setattr__(self, "_miss", RuleReason(self.id, False))


@dataclass(frozen=True)
class Placement:
    """A slot on a page that the gateway fills: rules in order, a default, maybe a backend."""

    id: str
    purpose: str
    default_content: Mapping[str, Any]
    default_explanation: Mapping[str, str]
    rules: tuple[Rule, ...]
    backend: Backend | None = None
    # what evaluation needs, worked out once at load
    _context_keys: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _date_keys: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    # the attributes the first rule reads, and those only later rules read, as
    # (name, value variable, has() variable, is a date): see `evaluate`
    _first: tuple[_Load, ...] = field(init=False, repr=False, compare=False)
    _rest: tuple[_Load, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first = self.rules[0]._sorted_reads if self.rules else ()
        rest = sorted({a for r in self.rules[1:] for a in r.reads} - set(first))
        object.__setattr__(self, "_first", tuple(self._load(a) for a in first))
        object.__setattr__(self, "_rest", tuple(self._load(a) for a in rest))

    def _load(self, name: str) -> _Load:
        return name, PROFILE_VAR + name, HAS_VAR + name, name in self._date_keys

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def reads(self) -> frozenset[str]:
        """Every catalogue attribute any of the placement's rules reads."""
        return frozenset(a for r in self.rules for a in r.reads)


# --- reading a condition ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # ident | string | number | punct
    text: str
    value: str | None = None  # a string literal's value, when it has no escapes


_PUNCT2 = ("&&", "||", "==", "!=", "<=", ">=")
_STRING_PREFIX = re.compile(r"^(?:[rR]|[bB]|[rR][bB]|[bB][rR])$")


def _tokens(source: str) -> list[_Token]:
    """Split CEL source into identifiers, literals and punctuation; comments are dropped.

    Only as exact as the scan in `_scan` needs: string literals (single, double,
    triple quoted, raw and bytes) are kept whole so that nothing inside them is
    taken for a variable, and numbers are kept whole so that `1.5` is not a
    field selection. The expression has already compiled, so it is well formed.
    """
    out: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in "\"'":
            prefix = ""
            last = out[-1] if out else None
            if last is not None and last.kind == "ident" and _STRING_PREFIX.match(last.text) \
                    and _adjacent(source, i):
                prefix = out.pop().text.lower()
            i, token = _string(source, i, prefix)
            out.append(token)
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            out.append(_Token("ident", source[i:j]))
            i = j
        elif ch.isdigit() or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            j = i + 1
            hexadecimal = source.startswith(("0x", "0X"), i)
            while j < n and (source[j].isalnum() or source[j] in "._"
                             or (source[j] in "+-" and source[j - 1] in "eE" and not hexadecimal)):
                j += 1
            out.append(_Token("number", source[i:j]))
            i = j
        else:
            two = source[i:i + 2]
            if two in _PUNCT2:
                out.append(_Token("punct", two))
                i += 2
            else:
                out.append(_Token("punct", ch))
                i += 1
    return out


def _adjacent(source: str, quote_at: int) -> bool:
    """Whether the identifier before a quote touches it (`r"..."`), making it a string prefix."""
    return quote_at > 0 and (source[quote_at - 1].isalpha())


def _string(source: str, i: int, prefix: str) -> tuple[int, _Token]:
    quote = source[i]
    triple = source.startswith(quote * 3, i)
    delim = quote * 3 if triple else quote
    j = i + len(delim)
    raw = "r" in prefix
    escaped = False
    while j < len(source):
        if not raw and source[j] == "\\":
            escaped = True
            j += 2
            continue
        if source.startswith(delim, j):
            body = source[i + len(delim):j]
            value = None if (escaped or "b" in prefix) else body
            return j + len(delim), _Token("string", prefix + source[i:j + len(delim)], value)
        j += 1
    return len(source), _Token("string", source[i:], None)


@dataclass
class _Scan:
    """What a condition reads, anything it may not do, and the source of the program that runs."""

    reads: set[str] = field(default_factory=set)
    context_keys: set[str] = field(default_factory=set)
    binders: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    flat: str = ""


def _scan(source: str) -> _Scan:
    """Find the attributes a condition reads, by a careful scan of its tokens.

    The CEL library compiles the expression but exposes no syntax tree beyond
    the names of the variables and functions used, so the member accesses are
    found here: every use of the variable `profile` (an identifier not preceded
    by `.`, so not a field called "profile") must be followed by `.name` or
    `["name"]` (a plain string literal), and `name` is an attribute it reads;
    `has(profile.name)` is covered too. The same holds for `context`. Any other
    use (`profile[key]`, `size(profile)`, `"x" in profile`) is refused, because
    then nobody could tell which attributes the rule reads. Comprehension
    variables (`list.exists(c, ...)`) are collected so that they are not
    mistaken for unknown variables, and may not shadow the three variables.
    Comments and string literals are skipped by the tokenizer.

    The same pass writes `flat`: the condition with each attribute read turned
    into a variable of its own (PROFILE_VAR, HAS_VAR), which is what runs.
    """
    scan = _Scan()
    toks = _tokens(source)
    out: list[str] = []
    k = 0
    while k < len(toks):
        tok = toks[k]
        prev = toks[k - 1] if k else None
        if tok.kind != "ident" or (prev is not None and prev.kind == "punct" and prev.text == "."):
            if tok.kind == "ident" and tok.text in MACROS and _at(toks, k + 1, "(") and k + 3 < len(toks) \
                    and toks[k + 2].kind == "ident" and _at(toks, k + 3, ","):
                scan.binders.add(toks[k + 2].text)
            out.append(tok.text)
            k += 1
            continue
        if tok.text == "has" and _at(toks, k + 1, "(") and _ident(toks, k + 2, "profile") \
                and _at(toks, k + 3, ".") and _ident(toks, k + 4) and _at(toks, k + 5, ")"):
            scan.reads.add(toks[k + 4].text)
            out.append(HAS_VAR + toks[k + 4].text)
            k += 6
            continue
        if tok.text not in ("profile", "context"):
            out.append(tok.text)
            k += 1
            continue
        if _at(toks, k + 1, ".") and _ident(toks, k + 2):
            name, width = toks[k + 2].text, 3
        elif _at(toks, k + 1, "[") and k + 2 < len(toks) and toks[k + 2].kind == "string" \
                and toks[k + 2].value is not None and _at(toks, k + 3, "]"):
            name, width = toks[k + 2].value or "", 4
        else:
            scan.problems.append(
                f"uses '{tok.text}' other than as {tok.text}.name or {tok.text}[\"name\"]; "
                "the gateway must be able to tell which data a rule reads"
            )
            out.append(tok.text)
            k += 1
            continue
        if tok.text == "profile":
            scan.reads.add(name)
            out.append(PROFILE_VAR + name)
        else:
            scan.context_keys.add(name)
            out.extend(t.text for t in toks[k:k + width])
        k += width
    for name in sorted(scan.binders):
        if name in VARIABLES or name.startswith((PROFILE_VAR, HAS_VAR)):
            scan.problems.append(f"uses '{name}' as a loop variable; choose another name, '{name}' is taken")
    scan.flat = " ".join(out)
    return scan


def _ident(toks: list[_Token], k: int, text: str | None = None) -> bool:
    return k < len(toks) and toks[k].kind == "ident" and (text is None or toks[k].text == text)


def _at(toks: list[_Token], k: int, text: str) -> bool:
    return k < len(toks) and toks[k].kind == "punct" and toks[k].text == text


def _is_operator(name: str) -> bool:
    return name.startswith(("@", "!", "-")) or (name.startswith("_") and name.endswith("_")) or "[" in name


_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


def _compile_error(exc: Exception) -> str:
    """The library's parse error as one readable line: where, and what (without the parser's jargon)."""
    found = []
    for m in _CEL_ERROR.finditer(str(exc)):
        what = re.sub(r" expecting \{[^}]*\}", "", m.group(3).strip())
        what = what.replace("mismatched input '<EOF>'", "the condition ends too early")
        what = what.replace("'<EOF>'", "the end").replace("<EOF>", "the end")
        found.append(f"line {m.group(1)}, column {m.group(2)}: {what}")
    return "; ".join(found) if found else str(exc).splitlines()[0]


# --- parsing rules.yaml -----------------------------------------------------------------------

class _Problems:
    def __init__(self) -> None:
        self.items: list[PolicyProblem] = []

    def add(self, entry: str, message: str) -> None:
        self.items.append(PolicyProblem(FILE, entry, message))

    def unknown_keys(self, data: Mapping, allowed: set[str], entry: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(entry, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a text", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


def parse_rules(
    doc: Any, purposes: Mapping[str, Purpose], attributes: Mapping[str, Attribute]
) -> tuple[tuple[Placement, ...], list[PolicyProblem]]:
    """Parse rules.yaml (already loaded from YAML) into placements with compiled rules.

    Returns the placements that are free of problems and every problem found;
    a caller refuses the policy when the list is not empty.
    """
    problems = _Problems()
    if doc is None:
        return (), []
    if not isinstance(doc, Mapping):
        problems.add("top level", f"must be a mapping with 'placements', not {_kind(doc)}")
        return (), problems.items
    problems.unknown_keys(doc, {"placements"}, "top level")
    raw = doc.get("placements")
    if raw is None:
        return (), problems.items
    if not isinstance(raw, list):
        problems.add("placements", f"must be a list of placements, not {_kind(raw)}")
        return (), problems.items
    result: list[Placement] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        placement = _parse_placement(problems, item, f"placements[{index}]", seen, purposes, attributes)
        if placement is not None:
            result.append(placement)
    return tuple(result), problems.items


def _parse_placement(
    problems: _Problems,
    item: Any,
    entry: str,
    seen: set[str],
    purposes: Mapping[str, Purpose],
    attributes: Mapping[str, Attribute],
) -> Placement | None:
    if not isinstance(item, Mapping):
        problems.add(entry, f"must be a mapping, not {_kind(item)}")
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
        problems.add(entry, f"'rules' must be a list of rules, not {_kind(raw_rules)}")
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
    profile_keys = sorted({a for r in rules for a in r.reads})
    context_keys: set[str] = set()
    for r in rules:
        context_keys |= _scan(r.when).context_keys
    return Placement(
        id=pid,
        purpose=purpose.id,
        default_content=default_content,
        default_explanation=default_explanation,
        rules=tuple(rules),
        backend=backend,
        _context_keys=tuple(sorted(context_keys)),
        _date_keys=frozenset(a for a in profile_keys if attributes[a].type == "date"),
    )


def _parse_default(problems: _Problems, raw: Any, entry: str) -> tuple[dict, dict[str, str]]:
    if not isinstance(raw, Mapping):
        problems.add(entry, "'default' is required: the content everyone may see, with 'content' and "
                            "'explanation'")
        return {}, {}
    where = f"{entry} default"
    problems.unknown_keys(raw, DEFAULT_KEYS, where)
    return _content(problems, raw, where), _explanation(problems, raw, where)


def _content(problems: _Problems, data: Mapping, entry: str) -> dict:
    value = data.get("content")
    if not isinstance(value, Mapping):
        problems.add(entry, f"'content' is required: a mapping such as {{id: \"outdoor-jackets\"}}, "
                            f"not {_kind(value)}")
        return {}
    problem = _not_json(value, "'content'")
    if problem:
        problems.add(entry, f"{problem}: content is JSON data (texts, numbers, true/false, lists and "
                            "mappings with text keys); quote dates and times")
        return {}
    return dict(value)


def _not_json(value: Any, where: str) -> str | None:
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
                return f"{where} has a key that is not a text ({_kind(key)})"
            problem = _not_json(item, f"{where}.{key}")
            if problem:
                return problem
        return None
    return f"{where} is of type {_kind(value)}"


def _explanation(problems: _Problems, data: Mapping, entry: str) -> dict[str, str]:
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
            problems.add(entry, f"'explanation' in '{locale}' must be a non-empty text, not {_kind(text)}")
        else:
            texts[locale] = text.strip()
    if FALLBACK_LOCALE not in value:
        problems.add(entry, "'explanation' needs an English ('en') text: "
                            "it is the fallback for other languages")
    return texts


def _parse_backend(problems: _Problems, raw: Any, entry: str) -> Backend | None:
    where = f"{entry} backend"
    if not isinstance(raw, Mapping):
        problems.add(where, f"must be a mapping with url, timeout_ms and secret_env, not {_kind(raw)}")
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
    return Backend(url, timeout, secret_env) if ok else None


def _parse_rule(
    problems: _Problems,
    raw: Any,
    entry: str,
    placement_entry: str,
    seen: set[str],
    purpose: Purpose | None,
    attributes: Mapping[str, Attribute],
) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.add(entry, f"must be a mapping, not {_kind(raw)}")
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
    program = None
    reads: set[str] = set()
    if when is None:
        problems.add(entry, "'when' is required: a CEL condition such as "
                            "'\"outdoor\" in profile.browsing_categories'")
    elif not isinstance(when, str) or not when.strip():
        problems.add(entry, f"'when' must be a CEL condition written as text, not {when!r}")
    elif len(when) > WHEN_MAX_CHARS:
        problems.add(entry, f"'when' is longer than {WHEN_MAX_CHARS} characters: split the condition "
                            "into several rules")
    else:
        program, reads = _check_condition(problems, when, entry, purpose, attributes)
    if len(problems.items) != before or rid is None or program is None:
        return None
    return Rule(rid, when, content, explanation, frozenset(reads), program)


def _check_condition(
    problems: _Problems,
    when: str,
    entry: str,
    purpose: Purpose | None,
    attributes: Mapping[str, Attribute],
) -> tuple[Any, set[str]]:
    """Compile a condition and check what it reads; returns (program or None, attributes read)."""
    try:
        program = cel.compile(when)
    except Exception as exc:  # noqa: BLE001 - the library reports syntax errors as several types
        problems.add(entry, f"'when' is not a valid CEL condition: {_compile_error(exc)}")
        return None, set()
    before = len(problems.items)
    scan = _scan(when)
    for message in scan.problems:
        problems.add(entry, message)
    allowed_names = set(VARIABLES) | scan.binders | TYPE_NAMES
    for name in program.variables():
        if name not in allowed_names:
            problems.add(entry, f"uses '{name}', which is not known: "
                                "a condition may use profile, context and now")
    for name in program.functions():
        if not _is_operator(name) and name not in FUNCTIONS:
            problems.add(entry, f"calls '{name}', which is not a CEL function the gateway provides")
    for name in sorted(scan.reads):
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
    for key in sorted(scan.context_keys):
        if key in attributes:
            problems.add(entry, f"reads context.{key}, but '{key}' is a catalogue attribute: context is no "
                                f"side door for personal data; read profile.{key} if the purpose may use it")
    if len(problems.items) != before:
        return None, scan.reads
    try:
        return cel.compile(scan.flat), scan.reads
    except Exception as exc:  # noqa: BLE001 - reported like any other problem of the condition
        problems.add(entry, f"'when' could not be prepared for evaluation: {_compile_error(exc)}")
        return None, scan.reads


# --- evaluating -------------------------------------------------------------------------------

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
    def released(self) -> Mapping[str, Any]: ...

    @property
    def withheld(self) -> Iterable[WithheldLike]: ...


@dataclass(frozen=True)
class RuleReason:
    """Why one rule did or did not match (openapi.yaml: `RuleReason`, an explanation's `reasons`)."""

    rule: str
    matched: bool
    attributes: tuple[str, ...] = ()
    blocked_by: tuple[tuple[str, str], ...] = ()  # (attribute, reason)

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"rule": self.rule, "matched": self.matched}
        if self.matched:
            out["attributes"] = list(self.attributes)
        elif self.blocked_by:
            out["blocked_by"] = [{"attribute": a, "reason": r} for a, r in self.blocked_by]
        return out


@dataclass(frozen=True)
class Outcome:
    """The result of a placement's rules: the winning rule (or None: serve the default) and why."""

    rule: Rule | None
    reasons: tuple[RuleReason, ...]
    used_attributes: tuple[str, ...]


NO_OUTCOME = Outcome(None, (), ())


def evaluate(
    placement: Placement, view: ViewLike, context: Mapping[str, Any] | None, now: datetime
) -> Outcome:
    """Run the placement's rules over the permitted view; the first rule that matches wins.

    A rule matches only when its condition evaluates to `true`. A condition that
    reads an attribute missing from the view, or fails in any other way (a value
    of an unexpected type, a division by zero), does not match; no exception
    escapes. A rule that does not match names each attribute it reads that the
    view does not release, with the withheld reason or `absent`. Without an
    effective legal basis no rule runs: the caller serves the default.
    """
    if not view.effective:
        return NO_OUTCOME
    released = view.released
    activation = _activation(placement, context or {}, now)
    # The first rule often decides: convert only what it reads. Before the second rule, add
    # everything the others read in one go (the library re-copies its variables after a change).
    _load(activation, placement._first, released)
    reasons: list[RuleReason] = []
    withheld: dict[str, str] | None = None
    for index, rule in enumerate(placement.rules):
        if index == 1:
            _load(activation, placement._rest, released)
        if _matches(rule._program, activation):
            reasons.append(rule._hit)
            return Outcome(rule, tuple(reasons), rule._sorted_reads)
        missing = [a for a in rule._sorted_reads if a not in released]
        if not missing:
            reasons.append(rule._miss)
            continue
        if withheld is None:
            withheld = _withheld_reasons(view)
        blocked = tuple((a, withheld.get(a, ABSENT)) for a in missing)
        reasons.append(RuleReason(rule.id, False, blocked_by=blocked))
    return Outcome(None, tuple(reasons), ())


def _withheld_reasons(view: ViewLike) -> dict[str, str]:
    try:
        return {w.attribute: w.reason for w in view.withheld}
    except (AttributeError, TypeError):
        return {}


def _matches(program: Any, activation: Any) -> bool:
    if program is None:
        return False
    try:
        return program.execute(activation) is True
    except Exception:  # noqa: BLE001 - any failure of a condition means "no match" (see evaluate)
        return False


def _activation(placement: Placement, context: Mapping[str, Any], now: datetime) -> Any:
    """The CEL context of one decision: `context` (the keys the rules read) and `now`.

    `evaluate` adds the attributes with `_load`: those of the first rule, then the
    rest at once, so CEL converts each value once and only if a rule may need it.
    """
    ctx = {key: context[key] for key in placement._context_keys if key in context}
    if isinstance(now, datetime) and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        return cel.Context({"context": ctx, "now": now})
    except Exception:  # noqa: BLE001 - a value CEL cannot hold; drop only the values that fail
        activation = cel.Context()
        _add(activation, "context", {k: v for k, v in ctx.items() if _holdable(v)})
        _add(activation, "now", now)
        return activation


def _load(activation: Any, loads: tuple[_Load, ...], released: Mapping[str, Any]) -> None:
    """Add attributes to the decision's CEL context (and, for `has()`, whether each is there).

    A value CEL cannot hold counts as not there: a rule reading it does not match.
    """
    if not loads:
        return
    batch: dict[str, Any] = {}
    for name, value_var, has_var, is_date in loads:
        if name in released:
            value = released[name]
            batch[value_var] = _timestamp(value) if is_date else value
            batch[has_var] = True
        else:
            batch[has_var] = False
    try:
        activation.update(batch)
    except Exception:  # noqa: BLE001 - some value CEL cannot hold: add them one by one
        for _name, value_var, has_var, _is_date in loads:
            present = value_var in batch and _add(activation, value_var, batch[value_var])
            activation.add_variable(has_var, present)


def _add(activation: Any, name: str, value: Any) -> bool:
    try:
        activation.add_variable(name, value)
    except Exception:  # noqa: BLE001 - the library raises several types for values it cannot convert
        return False
    return True


def _holdable(value: Any) -> bool:
    try:
        cel.Context({"v": value})
    except Exception:  # noqa: BLE001 - see _add
        return False
    return True


def _timestamp(value: Any) -> Any:
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


# --- explanations -----------------------------------------------------------------------------

def render(texts: Mapping[str, str], locale: str | None) -> tuple[str, str]:
    """The text for `locale` (also its base language: `de-AT` -> `de`), else English.

    Returns (locale used, text).
    """
    if locale:
        wanted = locale.strip().replace("_", "-").lower()
        for candidate in (wanted, wanted.split("-")[0]):
            if candidate in texts:
                return candidate, texts[candidate]
    return FALLBACK_LOCALE, texts[FALLBACK_LOCALE]
