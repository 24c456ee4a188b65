"""The DPO's endpoints: audit export, the audit public key, records of processing."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, render_template, request

from ..core.errors import FieldError, InvalidRequest, NotFound
from ..services import audit, reports
from .auth import current_actor, gateway, requires
from .parsing import path_subject

bp = Blueprint("audit", __name__)


def parse_time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidRequest(f"'{name}' must be an RFC 3339 time with a zone, e.g. 2026-11-01T00:00:00Z",
                             errors=[FieldError(name, "not an RFC 3339 time with a zone")])
    return value.astimezone(UTC)


def export_filter():
    types = [t for value in request.args.getlist("type") for t in value.split(",") if t]
    subject_id = request.args.get("subject_id")
    if subject_id is not None:
        path_subject(subject_id)
    since, until = parse_time("since"), parse_time("until")
    if since and until and until <= since:
        raise InvalidRequest("'until' must be after 'since'",
                             errors=[FieldError("until", "must be after since")])
    return audit.make_filter(gateway(), since=since, until=until, types=types,
                             subject_id=subject_id)


@bp.get("/v1/audit/events")
@requires("audit:read")
def events():
    flt = export_filter()
    lines = audit.export(gateway(), current_actor(), flt)
    response = Response(lines, mimetype="application/x-ndjson")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = 'attachment; filename="audit-export.ndjson"'
    return response


@bp.get("/v1/audit/public-key")
def public_key():
    key_id = request.args.get("key_id") or None
    found = audit.public_key(gateway(), key_id)
    if found is None:
        raise NotFound(f"no audit key with id {key_id!r}")
    return jsonify(found)


@bp.get("/v1/reports/processing")
@requires("audit:read")
def processing():
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "html"):
        raise InvalidRequest("'format' must be json or html",
                             errors=[FieldError("format", "json or html")])
    report = reports.processing_records(gateway())
    if fmt == "html":
        return Response(render_template("processing_report.html", report=report),
                        mimetype="text/html")
    return jsonify(report)
