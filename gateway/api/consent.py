"""Consent ledger endpoints: notices, choices, withdrawal, current state."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..core.errors import FieldError, InvalidRequest
from ..services import consent
from .auth import current_actor, gateway, requires
from .parsing import flag, gpc_signal, json_body, path_subject
from .schemas import ConsentIn, NoticeServedIn

bp = Blueprint("consent", __name__)
MAX_IDEMPOTENCY_KEY = 255


@bp.post("/v1/notices/served")
@requires("consent:write", property_ok=True, limit="notices")
def notice_served():
    body = json_body(NoticeServedIn())
    result = consent.serve_notice(gateway(), current_actor(), **body)
    return jsonify(result), 201


@bp.post("/v1/consents")
@requires("consent:write", property_ok=True, limit="consents")
def record():
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable characters",
            errors=[FieldError("Idempotency-Key", "1 to 255 printable characters")],
        )
    body = json_body(ConsentIn())
    receipt, created = consent.record_consent(
        gateway(), current_actor(), gpc=gpc_signal(), idempotency_key=key, **body
    )
    response = jsonify(receipt)
    response.status_code = 201
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/v1/subjects/<path:subject_id>/consents")
@requires("consent:read", property_ok=True, limit="state")
def state(subject_id: str):
    subject_id = path_subject(subject_id)
    return jsonify(consent.current_state(gateway(), subject_id, history=flag("history")))


@bp.delete("/v1/subjects/<path:subject_id>/consents")
@requires("consent:write", property_ok=True, limit="withdraw")
def withdraw(subject_id: str):
    subject_id = path_subject(subject_id)
    receipt = consent.withdraw_all(gateway(), current_actor(), subject_id, gpc=gpc_signal())
    return jsonify(receipt), 200
