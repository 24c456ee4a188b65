"""HTTP layer: thin blueprints over services/, one error handler, request logging."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, current_app, g, request
from werkzeug.routing import PathConverter

from ..services import audit as audit_service
from . import audit, consent, cors, decisions, errors, guard, meta, metrics, oauth, profiles, web

log = structlog.get_logger("gateway.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _start() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _finish(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    # chain new audit events once the response is out (batched, never waiting)
    gw = current_app.extensions["gateway"]
    response.call_on_close(lambda: _seal_quietly(gw))
    actor = g.get("actor")
    # the route template, never the path: paths carry raw subject ids
    route = request.url_rule.rule if request.url_rule else "(unmatched)"
    log.info(
        "request",
        method=request.method,
        route=route,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        actor=actor.id if actor else None,
    )
    return response


def _seal_quietly(gw) -> None:
    try:
        audit_service.seal_soon(gw)
    except Exception as exc:  # noqa: BLE001 - sealing is retried by the next request or export
        log.warning("audit.seal_failed", error=type(exc).__name__)


class _AnyPathConverter(PathConverter):
    """`<path:...>` that also matches line breaks (Werkzeug's `.` does not), so that a subject id
    with a control character reaches validation (422) instead of falling through routing (404)."""

    regex = r"[^/][\s\S]*?"


def init_app(app: Flask) -> None:
    app.url_map.converters["path"] = _AnyPathConverter
    app.before_request(_start)
    guard.init_app(app)  # chunked bodies within the size limit, URLs in UTF-8
    cors.init_app(app)
    app.after_request(_finish)
    errors.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(meta.bp)
    app.register_blueprint(consent.bp)
    app.register_blueprint(profiles.bp)
    app.register_blueprint(decisions.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(web.bp)
