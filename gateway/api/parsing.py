"""Reading requests: JSON bodies through schemas, query flags, path values."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from ..core.errors import FieldError, InvalidRequest, MalformedRequest, UnsupportedMediaType
from ..core.subjects import subject_id_problem
from .schemas import flatten


def _constant(name: str) -> float:
    # NaN, Infinity and -Infinity are JavaScript, not JSON (RFC 8259): read them as the floats
    # they stand for, so that `_unstorable` names the field, like 1e309 (which Python reads as inf)
    return float(name)


def _surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from an escape like "\ud800"
        return True
    return False


def _unstorable(document: Any) -> Iterator[FieldError]:
    """The values of a parsed body that are not finite JSON: NaN, an infinity (from `NaN`,
    `Infinity`, or a number too large for a double such as 1e309) or text that is not
    Unicode (a lone surrogate), anywhere in the document, in document order. Such a value would
    be a database error on PostgreSQL and a non-JSON `Infinity` on SQLite, so no endpoint lets
    one in. Iterative: any depth json.loads accepts is walked without recursion."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                yield FieldError(path or "body", "numbers must be finite (no NaN, Infinity or 1e309)")
        elif isinstance(value, str):
            if _surrogate(value):
                yield FieldError(path or "body", "text must be valid Unicode (no lone surrogate)")
        elif isinstance(value, dict):
            items = []
            for key, item in value.items():
                if _surrogate(key):
                    yield FieldError(path or "body", "keys must be valid Unicode (no lone surrogate)")
                    continue
                items.append((f"{path}.{key}" if path else key, item))
            stack.extend(reversed(items))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path or 'body'}[{i}]", item) for i, item in enumerate(value)]))


def json_object() -> dict[str, Any]:
    """The body as a JSON object: 415 if not sent as JSON, 400 if unreadable, 422 if not an object
    or if it holds a value that is not finite JSON (every JSON endpoint reads its body here)."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)",
            errors=[FieldError("Content-Type", "expected application/json")],
        )
    try:
        data = json.loads(request.get_data(cache=True), parse_constant=_constant)
    except (ValueError, RecursionError):
        data = None
    if data is None:
        raise MalformedRequest("the body is not valid JSON")
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object",
                             errors=[FieldError("body", "expected an object")])
    errors = list(_unstorable(data))
    if errors:
        raise InvalidRequest("the body holds values that are not finite JSON", errors=errors[:20])
    return data


def json_body(schema: Schema) -> dict[str, Any]:
    """The body parsed by `schema`; 400 for unreadable JSON, 422 for rule breaks."""
    data = json_object()
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "the request body is not valid",
            errors=[FieldError(f, m) for f, m in flatten(exc.messages)],
        ) from exc


def path_subject(subject_id: str) -> str:
    problem = subject_id_problem(subject_id)
    if problem:
        raise InvalidRequest("subject_id is not valid", errors=[FieldError("subject_id", problem)])
    return subject_id


def flag(name: str) -> bool:
    value = request.args.get(name)
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise InvalidRequest(f"'{name}' must be true or false",
                         errors=[FieldError(name, "expected true or false")])


def gpc_signal() -> bool:
    """Global Privacy Control: only `Sec-GPC: 1` counts."""
    return request.headers.get("Sec-GPC", "").strip() == "1"
