"""The policy in force, health, readiness and the contract."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from ..services import health
from ..services.policy import public_view
from .auth import gateway

bp = Blueprint("meta", __name__)
SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
PRIMARY = re.compile(r"^([A-Za-z]{2,3})(?:[-_].*)?$")


def requested_locale(default: str | None = None) -> str | None:
    """`de-DE` -> `de`; anything unreadable -> the default (the policy falls back to en)."""
    raw = request.args.get("locale") or default
    match = PRIMARY.match(raw or "")
    return match.group(1).lower() if match else None


@bp.get("/v1/policy")
def policy():
    return jsonify(public_view(gateway().policy, requested_locale()))


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    report = health.readiness(gateway())
    return jsonify(report), 200 if report["status"] == "ready" else 503


@bp.get("/openapi.yaml")
def openapi():
    return Response(SPEC.read_text(encoding="utf-8"), mimetype="application/yaml")
