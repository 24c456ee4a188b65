"""Conditions in CEL: what a condition reads (`scan`), compiling it (`compile`), and evaluating
a placement's conditions over a permitted view (`evaluation`). Knows nothing of policy files."""

from .compile import FUNCTIONS, WHEN_MAX_CHARS, Condition, ConditionError, prepare, read
from .evaluation import ABSENT, Evaluable, Outcome, Plan, ReasonDict, RuleReason, ViewLike, evaluate
from .scan import Scan

__all__ = [
    "ABSENT", "FUNCTIONS", "WHEN_MAX_CHARS", "Condition", "ConditionError", "Evaluable", "Outcome",
    "Plan", "ReasonDict", "RuleReason", "Scan", "ViewLike", "evaluate", "prepare", "read",
]
