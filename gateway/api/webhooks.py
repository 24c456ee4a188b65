"""Webhook subscriptions, their delivery log, retry and replay (scope `webhooks:manage`)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, jsonify, request

from ..core.errors import FieldError, InvalidRequest
from ..services import webhooks
from .auth import current_actor, gateway, requires
from .parsing import json_object

bp = Blueprint("webhooks", __name__)
SCOPE = "webhooks:manage"


def _fields(body: dict, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    unknown = sorted(set(body) - set(allowed))
    missing = [k for k in required if k not in body]
    if unknown or missing:
        raise InvalidRequest("the body has unknown or missing fields",
                             errors=[FieldError(k, "unknown field") for k in unknown]
                             + [FieldError(k, "required") for k in missing])
    return body


@bp.post("/v1/webhooks")
@requires(SCOPE)
def create():
    body = _fields(json_object(), webhooks.FIELDS, ("url", "events"))
    return jsonify(webhooks.create(gateway(), current_actor(), body)), 201


@bp.get("/v1/webhooks")
@requires(SCOPE)
def list_all():
    return jsonify(webhooks.list_all(gateway()))


@bp.get("/v1/webhooks/<webhook_id>")
@requires(SCOPE)
def show(webhook_id: str):
    return jsonify(webhooks.show(gateway(), webhook_id))


@bp.patch("/v1/webhooks/<webhook_id>")
@requires(SCOPE)
def update(webhook_id: str):
    body = _fields(json_object(), (*webhooks.FIELDS, "status"))
    return jsonify(webhooks.update(gateway(), current_actor(), webhook_id, body))


@bp.delete("/v1/webhooks/<webhook_id>")
@requires(SCOPE)
def delete(webhook_id: str):
    return jsonify(webhooks.delete(gateway(), current_actor(), webhook_id))


@bp.post("/v1/webhooks/<webhook_id>/rotate-secret")
@requires(SCOPE)
def rotate_secret(webhook_id: str):
    return jsonify(webhooks.rotate_secret(gateway(), current_actor(), webhook_id))


@bp.get("/v1/webhooks/<webhook_id>/deliveries")
@requires(SCOPE)
def deliveries(webhook_id: str):
    status = request.args.get("status") or None
    raw = request.args.get("limit") or "100"
    if not raw.isdigit() or not 1 <= int(raw) <= webhooks.MAX_LOG:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {webhooks.MAX_LOG}",
                             errors=[FieldError("limit", f"1 to {webhooks.MAX_LOG}")])
    return jsonify(webhooks.deliveries(gateway(), webhook_id, status=status, limit=int(raw)))


@bp.post("/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/retry")
@requires(SCOPE)
def retry(webhook_id: str, delivery_id: str):
    return jsonify(webhooks.retry(gateway(), current_actor(), webhook_id, delivery_id))


def _since(body: dict) -> datetime:
    raw = body.get("since")
    value = None
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if value is None or value.tzinfo is None:
        raise InvalidRequest("'since' must be an RFC 3339 time with a zone, e.g. 2026-11-01T00:00:00Z",
                             errors=[FieldError("since", "an RFC 3339 time with a zone")])
    return value.astimezone(UTC)


@bp.post("/v1/webhooks/<webhook_id>/replay")
@requires(SCOPE)
def replay(webhook_id: str):
    body = _fields(json_object(), ("since",), ("since",))
    return jsonify(webhooks.replay(gateway(), current_actor(), webhook_id, _since(body)))
