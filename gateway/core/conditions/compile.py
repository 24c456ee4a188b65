"""Compiling a condition: the CEL source as written, checked, and the program that runs.

`read` compiles a condition with CEL (the `common-expression-language` package,
whose engine is the Rust `cel` crate; bench/README.md says why this one) and
checks what the language allows: the three variables, the functions the gateway
provides, and that what it reads can be told (`scan`). What a policy allows (the
attribute catalogue, the purpose) is checked by the policy loader in between;
`prepare` then builds the `Condition` that evaluation runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cel

from .scan import VARIABLES, Scan, scan

# The CEL engine overflows its native stack (killing the process) on expressions nested a
# few ten thousand levels deep; no condition a person writes comes near this length.
WHEN_MAX_CHARS = 2_000

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


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message says where and what, in plain words."""


@dataclass(frozen=True)
class Condition:
    """A compiled condition: its source, what it reads, and the program that runs."""

    source: str
    reads: frozenset[str]  # catalogue attributes the condition reads
    context_keys: frozenset[str]  # request context keys it reads
    program: cel.Program = field(repr=False, compare=False)  # compiled from the scan's `flat`


def read(source: str) -> tuple[Scan | None, list[str]]:
    """Compile and scan `source`; returns (the scan, or None if it does not compile; problems)."""
    try:
        program = cel.compile(source)
    except Exception as exc:  # noqa: BLE001 - the library reports syntax errors as several types
        return None, [f"'when' is not a valid CEL condition: {_compile_error(exc)}"]
    found = scan(source)
    problems = list(found.problems)
    allowed_names = set(VARIABLES) | found.binders | TYPE_NAMES
    for name in program.variables():
        if name not in allowed_names:
            problems.append(f"uses '{name}', which is not known: "
                            "a condition may use profile, context and now")
    for name in program.functions():
        if not _is_operator(name) and name not in FUNCTIONS:
            problems.append(f"calls '{name}', which is not a CEL function the gateway provides")
    return found, problems


def prepare(source: str, found: Scan) -> Condition:
    """The condition that runs, from a scan free of problems; raises ConditionError."""
    try:
        program = cel.compile(found.flat)
    except Exception as exc:  # noqa: BLE001 - reported like any other problem of the condition
        raise ConditionError(f"'when' could not be prepared for evaluation: {_compile_error(exc)}") from exc
    return Condition(source, frozenset(found.reads), frozenset(found.context_keys), program)


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
