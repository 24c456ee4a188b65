"""What a CEL condition reads, found by a scan of its tokens, and the program that actually runs.

The CEL library compiles an expression but exposes no syntax tree beyond the
names of the variables and functions used, so the member accesses are found
here (`scan` says how and why). The same scan rewrites `profile.name` into a
variable of its own for the program that runs, so that a decision converts each
value once and only for the rules it runs; a property test checks that this
program agrees with the condition as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VARIABLES = ("profile", "context", "now")
# In the program that runs, each attribute is a variable of its own (`profile.orders_count`
# becomes `_p_orders_count`, `has(profile.orders_count)` becomes `_h_orders_count`): CEL then
# converts each value once, without the cost of a map, and only for the rules that run.
PROFILE_VAR = "_p_"
HAS_VAR = "_h_"
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


@dataclass(frozen=True)
class _Token:
    kind: str  # ident | string | number | punct
    text: str
    value: str | None = None  # a string literal's value, when it has no escapes


_PUNCT2 = ("&&", "||", "==", "!=", "<=", ">=")
_STRING_PREFIX = re.compile(r"^(?:[rR]|[bB]|[rR][bB]|[bB][rR])$")


def _tokens(source: str) -> list[_Token]:
    """Split CEL source into identifiers, literals and punctuation; comments are dropped.

    Only as exact as the scan in `scan` needs: string literals (single, double,
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
class Scan:
    """What a condition reads, anything it may not do, and the source of the program that runs."""

    reads: set[str] = field(default_factory=set)
    context_keys: set[str] = field(default_factory=set)
    binders: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    flat: str = ""


def scan(source: str) -> Scan:
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
    found = Scan()
    toks = _tokens(source)
    out: list[str] = []
    k = 0
    while k < len(toks):
        tok = toks[k]
        prev = toks[k - 1] if k else None
        if tok.kind != "ident" or (prev is not None and prev.kind == "punct" and prev.text == "."):
            if tok.kind == "ident" and tok.text in MACROS and _at(toks, k + 1, "(") and k + 3 < len(toks) \
                    and toks[k + 2].kind == "ident" and _at(toks, k + 3, ","):
                found.binders.add(toks[k + 2].text)
            out.append(tok.text)
            k += 1
            continue
        if tok.text == "has" and _at(toks, k + 1, "(") and _ident(toks, k + 2, "profile") \
                and _at(toks, k + 3, ".") and _ident(toks, k + 4) and _at(toks, k + 5, ")"):
            found.reads.add(toks[k + 4].text)
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
            found.problems.append(
                f"uses '{tok.text}' other than as {tok.text}.name or {tok.text}[\"name\"]; "
                "the gateway must be able to tell which data a rule reads"
            )
            out.append(tok.text)
            k += 1
            continue
        if tok.text == "profile":
            found.reads.add(name)
            out.append(PROFILE_VAR + name)
        else:
            found.context_keys.add(name)
            out.extend(t.text for t in toks[k:k + width])
        k += width
    for name in sorted(found.binders):
        if name in VARIABLES or name.startswith((PROFILE_VAR, HAS_VAR)):
            found.problems.append(f"uses '{name}' as a loop variable; choose another name, '{name}' is taken")
    found.flat = " ".join(out)
    return found


def _ident(toks: list[_Token], k: int, text: str | None = None) -> bool:
    return k < len(toks) and toks[k].kind == "ident" and (text is None or toks[k].text == text)


def _at(toks: list[_Token], k: int, text: str) -> bool:
    return k < len(toks) and toks[k].kind == "punct" and toks[k].text == text
