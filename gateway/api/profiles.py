"""Profiles and the data subject's rights: write, filtered read, export, erasure."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..core.errors import FieldError, InvalidRequest
from ..services import profiles
from .auth import allow_purpose, current_actor, gateway, requires
from .parsing import json_object, path_subject

bp = Blueprint("profiles", __name__)


@bp.patch("/v1/subjects/<path:subject_id>/profile")
@requires("profile:write")
def update(subject_id: str):
    subject_id = path_subject(subject_id)
    body = json_object()
    unknown = sorted(set(body) - {"attributes"})
    if unknown or "attributes" not in body:
        raise InvalidRequest(
            "the body is {\"attributes\": {...}}",
            errors=[FieldError(k, "unknown field") for k in unknown]
            or [FieldError("attributes", "required")],
        )
    return jsonify(profiles.update_profile(gateway(), current_actor(), subject_id, body["attributes"]))


@bp.get("/v1/subjects/<path:subject_id>/profile")
@requires("profile:read")
def read(subject_id: str):
    subject_id = path_subject(subject_id)
    purpose = request.args.get("purpose")
    if not purpose:
        raise InvalidRequest("'purpose' is required", errors=[FieldError("purpose", "required")])
    allow_purpose(purpose)
    return jsonify(profiles.read_view(gateway(), current_actor(), subject_id, purpose))


@bp.get("/v1/subjects/<path:subject_id>/export")
@requires("subject:export")
def export(subject_id: str):
    subject_id = path_subject(subject_id)
    return jsonify(profiles.export_subject(gateway(), current_actor(), subject_id))


@bp.delete("/v1/subjects/<path:subject_id>")
@requires("subject:erase")
def erase(subject_id: str):
    subject_id = path_subject(subject_id)
    return jsonify(profiles.erase_subject(gateway(), current_actor(), subject_id))
