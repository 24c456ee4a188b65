"""The policy: the model (`model`), reading it from its YAML files (`load`, `placements`), the
bounded YAML loader (`safe_yaml`) and the one collector of problems (`problems`)."""

from .load import MAX_DAYS, MAX_VERSION, POLICY_FILES, content_hash, parse_policy
from .model import (
    ATTRIBUTE_TYPES,
    CONSENT_MODE_TYPES,
    FALLBACK_LOCALE,
    JSON,
    LEGAL_BASES,
    SETTABLE_BASES,
    Attribute,
    Backend,
    Controller,
    Notice,
    Placement,
    Policy,
    Purpose,
    Rule,
)
from .placements import parse_rules

__all__ = [
    "ATTRIBUTE_TYPES", "CONSENT_MODE_TYPES", "FALLBACK_LOCALE", "JSON", "LEGAL_BASES", "MAX_DAYS",
    "MAX_VERSION", "POLICY_FILES", "SETTABLE_BASES", "Attribute", "Backend", "Controller", "Notice",
    "Placement", "Policy", "Purpose", "Rule", "content_hash", "parse_policy", "parse_rules",
]
