"""Compare the two maintained CEL libraries for Python on the gateway's kind of rules.

    .venv/bin/python bench/cel_compare.py

`common-expression-language` (import name `cel`, Rust `cel` crate via PyO3) and
`cel-python` (import name `celpy`, pure Python on lark) are run on the same
table of cases: list membership, integer and number comparisons, `has()`,
string equality, `size()`, timestamp arithmetic with `now` and `context`
look-ups, with attributes present, missing and of the wrong type. Results are
normalised to `True`, `False` or `error:missing` / `error:other` (the two
libraries report a missing map key differently: `KeyError` from `cel`,
a `CELEvalError` wrapping a `KeyError` from `celpy`), compared, and then each
expression's compiled program is timed. Needs both libraries installed; the
gateway itself depends only on the one chosen (see bench/README.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import cel
import celpy
from celpy import celtypes

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)

FULL = {
    "browsing_categories": ["outdoor", "running"],
    "purchase_categories": ["outdoor", "shoes", "kitchen"],
    "orders_count": 4,
    "total_spend_eur": 612.5,
    "loyalty_tier": "gold",
    "last_purchase_date": NOW - timedelta(days=20),
}
SPARSE = {"browsing_categories": ["kitchen"], "orders_count": 1, "total_spend_eur": 40.0}
WRONG = {"browsing_categories": "outdoor", "orders_count": "4", "loyalty_tier": 3, "purchase_categories": 3,
         "last_purchase_date": "2026-10-16", "total_spend_eur": 600}
MOBILE = {"device": "mobile", "page": "home"}
DESKTOP = {"device": "desktop"}

EXPRESSIONS = {
    "membership": '"outdoor" in profile.browsing_categories',
    "int_compare": "profile.orders_count >= 2",
    "has": "has(profile.loyalty_tier)",
    "string_eq": 'has(profile.loyalty_tier) && profile.loyalty_tier == "gold"',
    "size": "size(profile.purchase_categories) >= 3",
    "recency": 'now - profile.last_purchase_date < duration("2160h")',
    "context": 'context.device == "mobile"',
    "number_int_literal": "profile.total_spend_eur >= 500",
    "number_double_literal": "profile.total_spend_eur >= 500.0",
    "rfm": ('has(profile.last_purchase_date) && now - profile.last_purchase_date < duration("2160h")'
            " && profile.orders_count >= 3 && profile.total_spend_eur >= 300.0"),
    "guarded_missing": 'has(profile.loyalty_tier) && profile.loyalty_tier == "silver"',
}

PROFILES = {"full": FULL, "sparse": SPARSE, "wrong_types": WRONG}
CONTEXTS = {"mobile": MOBILE, "desktop": DESKTOP}


# --- common-expression-language ---------------------------------------------------------------

def rust_program(expr: str) -> Any:
    return cel.compile(expr)


def rust_activation(profile: dict, context: dict) -> Any:
    return cel.Context({"profile": profile, "context": context, "now": NOW})


def rust_run(program: Any, activation: Any) -> str:
    try:
        value = program.execute(activation)
    except KeyError:
        return "error:missing"
    except Exception:  # noqa: BLE001 - any other evaluation error is one outcome here
        return "error:other"
    return str(value) if isinstance(value, bool) else "error:other"


# --- cel-python -------------------------------------------------------------------------------

CELPY_ENV = celpy.Environment()


def py_program(expr: str) -> Any:
    return CELPY_ENV.program(CELPY_ENV.compile(expr))


def py_activation(profile: dict, context: dict) -> dict:
    return {
        "profile": celpy.json_to_cel(profile),
        "context": celpy.json_to_cel(context),
        "now": celtypes.TimestampType(NOW),
    }


def py_run(program: Any, activation: dict) -> str:
    try:
        value = program.evaluate(activation)
    except celpy.CELEvalError as exc:
        return _celpy_error(exc)
    except Exception:  # noqa: BLE001 - any other evaluation error is one outcome here
        return "error:other"
    if isinstance(value, celpy.CELEvalError):
        return _celpy_error(value)
    if isinstance(value, celtypes.BoolType):
        return str(bool(value))
    return "error:other"


def _celpy_error(exc: celpy.CELEvalError) -> str:
    return "error:missing" if len(exc.args) > 1 and exc.args[1] is KeyError else "error:other"


# --- comparison -------------------------------------------------------------------------------

def correctness() -> list[tuple[str, str, str, str, str]]:
    """Every expression on every profile and context; returns the rows where the libraries differ."""
    differ = []
    total = 0
    for name, expr in EXPRESSIONS.items():
        rp, pp = rust_program(expr), py_program(expr)
        for pname, profile in PROFILES.items():
            for cname, context in CONTEXTS.items():
                total += 1
                a = rust_run(rp, rust_activation(profile, context))
                b = py_run(pp, py_activation(profile, context))
                if a != b:
                    differ.append((name, pname, cname, a, b))
    print(f"correctness: {total} cases, {total - len(differ)} identical, {len(differ)} differ")
    for name, pname, cname, a, b in differ:
        print(f"  {name:22} {pname:11} {cname:8} cel={a:14} celpy={b}")
    return differ


def _rate(fn, seconds: float = 0.3) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            fn()
        n += 100
    return n / (time.perf_counter() - start)


def speed() -> None:
    """Evaluations per second of a compiled program, with and without building the activation."""
    print(f"\n{'expression':22} {'cel (prebuilt)':>15} {'cel (+activation)':>18} "
          f"{'celpy (prebuilt)':>17} {'celpy (+activation)':>20}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for name, expr in EXPRESSIONS.items():
        rp, pp = rust_program(expr), py_program(expr)
        ra, pa = rust_activation(FULL, MOBILE), py_activation(FULL, MOBILE)
        rates = [
            _rate(lambda rp=rp, ra=ra: rust_run(rp, ra)),
            _rate(lambda rp=rp: rust_run(rp, rust_activation(FULL, MOBILE))),
            _rate(lambda pp=pp, pa=pa: py_run(pp, pa)),
            _rate(lambda pp=pp: py_run(pp, py_activation(FULL, MOBILE))),
        ]
        totals = [t + 1 / r for t, r in zip(totals, rates, strict=True)]
        print(f"{name:22} " + " ".join(f"{r:>{w},.0f}" for r, w in zip(rates, (15, 18, 17, 20), strict=True)))
    n = len(EXPRESSIONS)
    print(f"{'mean (harmonic)':22} " + " ".join(
        f"{n / t:>{w},.0f}" for t, w in zip(totals, (15, 18, 17, 20), strict=True)))


if __name__ == "__main__":
    print(f"cel (common-expression-language) vs celpy (cel-python), now = {NOW.isoformat()}\n")
    correctness()
    speed()
