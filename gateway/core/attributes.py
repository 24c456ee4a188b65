"""Values of the attribute catalogue: type checks, profile patches and canonical bytes.

A value arrives as parsed JSON. `check_value` says whether it fits its
attribute's catalogue type; `validate_patch` checks a whole profile patch and
refuses it as one (all or nothing); `encode_value` / `decode_value` turn a value
into the canonical JSON bytes that are encrypted at rest, and back. A `date`
is kept as its RFC 3339 full-date string ("2026-10-30") throughout. Messages
never repeat the value (values are personal data; messages may be logged).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from .errors import FieldError, InvalidRequest
from .policy import Attribute, Policy

MAX_STRING_CHARS = 4096
MAX_LIST_ITEMS = 1000
MAX_LIST_ITEM_CHARS = 256
MAX_SAFE_INTEGER = 2**53
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _kind(value: Any) -> str:
    """A reader's name for the JSON kind of `value`, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_string(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a text, not {_kind(value)}"
    if len(value) > MAX_STRING_CHARS:
        return f"must be at most {MAX_STRING_CHARS} characters, not {len(value)}"
    return None


def _check_integer(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number, not {_kind(value)}"
    if abs(value) > MAX_SAFE_INTEGER:
        return f"must be between -2^53 and 2^53 (±{MAX_SAFE_INTEGER})"
    return None


def _check_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, not {_kind(value)}"
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large to be a float
        finite = False
    if not finite:
        return "must be a finite number (not NaN or infinity)"
    return None


def _check_boolean(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"must be true or false, not {_kind(value)}"
    return None


def _check_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a date as a text YYYY-MM-DD, not {_kind(value)}"
    if not DATE_RE.match(value):
        return "must be a date written YYYY-MM-DD"
    try:
        date.fromisoformat(value)
    except ValueError:
        return "must be a real calendar date (YYYY-MM-DD)"
    return None


def _check_string_list(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"must be a list of texts, not {_kind(value)}"
    if len(value) > MAX_LIST_ITEMS:
        return f"must have at most {MAX_LIST_ITEMS} items, not {len(value)}"
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return f"item {index} must be a text, not {_kind(item)}"
        if len(item) > MAX_LIST_ITEM_CHARS:
            return f"item {index} must be at most {MAX_LIST_ITEM_CHARS} characters, not {len(item)}"
    return None


CHECKS: Mapping[str, Callable[[Any], str | None]] = {
    "string": _check_string,
    "integer": _check_integer,
    "number": _check_number,
    "boolean": _check_boolean,
    "date": _check_date,
    "list[string]": _check_string_list,
}


def check_value(attribute: Attribute, value: Any) -> str | None:
    """None if `value` fits the attribute's catalogue type, else a readable message."""
    check = CHECKS.get(attribute.type)
    if check is None:
        return f"has the unknown type {attribute.type!r}"
    return check(value)


def validate_patch(policy: Policy, attributes: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Check a profile patch against the catalogue: (values to set, names to remove).

    A value of None removes the attribute. Every problem (unknown attribute,
    wrong type) is reported at once as `attributes.<name>`, and any problem
    refuses the whole patch, so that nothing is written.
    """
    if not isinstance(attributes, Mapping):
        raise InvalidRequest(
            "the attributes must be an object",
            errors=[FieldError("attributes", f"must be an object, not {_kind(attributes)}")],
        )
    if not attributes:
        raise InvalidRequest(
            "the patch names no attribute",
            errors=[FieldError("attributes", "at least one attribute")],
        )
    to_set: dict[str, Any] = {}
    to_remove: list[str] = []
    errors: list[FieldError] = []
    for name, value in attributes.items():
        attribute = policy.attribute(name) if isinstance(name, str) else None
        if attribute is None:
            errors.append(FieldError(f"attributes.{name}", "unknown attribute"))
        elif value is None:
            to_remove.append(name)
        elif (message := check_value(attribute, value)) is not None:
            errors.append(FieldError(f"attributes.{name}", message))
        else:
            to_set[name] = value
    if errors:
        raise InvalidRequest("the attributes do not fit the catalogue; nothing was written", errors=errors)
    return to_set, to_remove


def encode_value(attribute: Attribute, value: Any) -> bytes:
    """Canonical JSON bytes of a value that fits `attribute` (the plaintext to encrypt).

    Raises ValueError when the value does not fit the attribute's type.
    """
    message = check_value(attribute, value)
    if message is not None:
        raise ValueError(f"attribute '{attribute.id}' {message}")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_value(attribute: Attribute, data: bytes) -> Any:
    """The value that `encode_value` turned into `data`.

    Raises ValueError when `data` is not canonical JSON text or its value no
    longer fits the attribute's type (for example after a catalogue change).
    """
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"attribute '{attribute.id}': stored value is not JSON text") from exc
    message = check_value(attribute, value)
    if message is not None:
        raise ValueError(f"attribute '{attribute.id}': stored value {message}")
    return value
