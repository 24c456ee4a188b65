"""Reading requests: JSON bodies through schemas, query flags, path values."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from ..core.errors import FieldError, InvalidRequest, MalformedRequest, UnsupportedMediaType
from .schemas import flatten, subject_id_problem


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity are JavaScript, not JSON (RFC 8259)


def json_object() -> dict[str, Any]:
    """The body as a JSON object: 415 if not sent as JSON, 400 if unreadable, 422 if not an object."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)",
            errors=[FieldError("Content-Type", "expected application/json")],
        )
    try:
        data = json.loads(request.get_data(cache=True), parse_constant=_no_constants)
    except (ValueError, RecursionError):
        data = None
    if data is None:
        raise MalformedRequest("the body is not valid JSON")
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object",
                             errors=[FieldError("body", "expected an object")])
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
