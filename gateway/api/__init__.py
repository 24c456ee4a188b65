"""HTTP layer: thin blueprints over services/, one error handler, request logging."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, g, request

from . import consent, cors, errors, meta

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


def init_app(app: Flask) -> None:
    app.before_request(_start)
    cors.init_app(app)
    app.after_request(_finish)
    errors.init_app(app)
    app.register_blueprint(meta.bp)
    app.register_blueprint(consent.bp)
