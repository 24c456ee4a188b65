"""Decisions and "why am I seeing this"."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import RAISE, Schema, fields, validate

from ..services import decisions
from .auth import current_actor, gateway, requires
from .meta import requested_locale
from .parsing import json_body
from .schemas import Locale, SubjectId

bp = Blueprint("decisions", __name__)


class DecisionIn(Schema):
    class Meta:
        unknown = RAISE

    subject_id = SubjectId(required=True)
    placement = fields.String(required=True, validate=validate.Length(1, 64))
    locale = Locale(load_default=None, allow_none=True)
    context = fields.Raw(load_default=None, allow_none=True)


@bp.post("/v1/decisions")
@requires("decision:write")
def decide():
    body = json_body(DecisionIn())
    return jsonify(decisions.decide(gateway(), current_actor(), **body)), 201


@bp.get("/v1/decisions/<decision_id>/explanation")
@requires("decision:read", property_ok=True, limit="explanations")
def explanation(decision_id: str):
    return jsonify(decisions.explanation(gateway(), current_actor(), decision_id,
                                         requested_locale()))
