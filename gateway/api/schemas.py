"""Request schemas (marshmallow). They check shape and types; the policy checks meaning."""

from __future__ import annotations

import json
import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from ..core.subjects import subject_id_problem

LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
MAX_SOURCE_BYTES = 2048


class SubjectId(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        problem = subject_id_problem(result)
        if problem:
            raise ValidationError(problem)
        return result


class Source(fields.Dict):
    """Where the choice was made (page URL, banner id): small, flat, no nesting."""

    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(validate=validate.Length(1, 64)), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        for key, item in result.items():
            if not isinstance(item, (str, int, float, bool)) or item is None:
                raise ValidationError(f"'{key}' must be a text, number or boolean")
        if len(json.dumps(result)) > MAX_SOURCE_BYTES:
            raise ValidationError(f"must be at most {MAX_SOURCE_BYTES} bytes of JSON")
        return result


class Locale(fields.String):
    def __init__(self, **kwargs):
        super().__init__(validate=validate.Regexp(LOCALE, error="not a language tag"), **kwargs)


class NoticeServedIn(Schema):
    class Meta:
        unknown = RAISE

    subject_id = SubjectId(required=True)
    purposes = fields.List(fields.String(validate=validate.Length(1, 64)), required=True,
                           validate=validate.Length(1, 50))
    locale = Locale(required=True)
    source = Source(load_default=None, allow_none=True)


class ConsentIn(Schema):
    class Meta:
        unknown = RAISE

    subject_id = SubjectId(required=True)
    purposes = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                           values=fields.String(), load_default=dict)
    locale = Locale(load_default=None, allow_none=True)
    tc_string = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=16384))
    notice_id = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(1, 40))
    source = Source(load_default=None, allow_none=True)

    @validates("purposes")
    def _few(self, value, **_):
        if len(value) > 50:
            raise ValidationError("at most 50 purposes")


def flatten(messages, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested messages -> [(field path, message)]."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = key if key != "_schema" else ""
            path = f"{prefix}.{name}" if prefix and name != "" else (prefix or str(name))
            out += flatten(value, str(path))
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, (dict, list)):
                out += flatten(item, prefix)
            else:
                out.append((prefix or "body", str(item)))
    else:
        out.append((prefix or "body", str(messages)))
    return out
