"""HTTP layer: thin blueprints over services/, one error handler, request logging."""

from __future__ import annotations

import re
import secrets
import time
import uuid

import structlog
from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import PathConverter

from ..services import audit as audit_service
from . import audit, consent, cors, decisions, errors, guard, meta, metrics, oauth, profiles, web, webhooks

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


# -- response headers, in one place ---------------------------------------------------------

# HTML pages: scripts and styles from the gateway itself, or inline ones that carry the
# page's nonce (the SDK gives it to the <style> it adds); no framing, no plugins, no <base>.
PAGE_CSP = ("default-src 'none'; script-src 'self'{nonce}; style-src 'self'{nonce}; "
            "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; "
            "base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
# The console shows the Art. 30 report from a blob: URL in a frame; that document inherits
# this policy, and its <style> is inline, so styles may be inline here (scripts may not).
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; frame-src blob:; form-action 'self'; "
               "base-uri 'none'; object-src 'none'; frame-ancestors 'none'")
CSP_BY_ENDPOINT = {"web.console_page": CONSOLE_CSP}


def csp_nonce() -> str:
    """The nonce of this response's Content-Security-Policy (templates: `{{ csp_nonce() }}`)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def _security_headers(response: Response) -> Response:
    """Every response: nosniff, and no caching unless the route chose otherwise (responses
    carry consents, profiles, exports, explanations, audit events and decisions). HTML pages
    also get a Content-Security-Policy, no framing and no referrer."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    if response.mimetype == "text/html":
        policy = CSP_BY_ENDPOINT.get(request.endpoint or "")
        if policy is None:
            nonce = g.get("csp_nonce")
            policy = PAGE_CSP.format(nonce=f" 'nonce-{nonce}'" if nonce else "")
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


class _AnyPathConverter(PathConverter):
    """`<path:...>` that also matches line breaks (Werkzeug's `.` does not), so that a subject id
    with a control character reaches validation (422) instead of falling through routing (404)."""

    regex = r"[^/][\s\S]*?"


def init_app(app: Flask) -> None:
    hops = app.extensions["gateway"].settings.trusted_proxies
    if hops:  # X-Forwarded-For / -Proto are believed only from this many proxies in front
        # Flask's documented way to wrap its WSGI app, which its types declare as a method
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.url_map.converters["path"] = _AnyPathConverter
    app.before_request(_start)
    guard.init_app(app)  # chunked bodies within the size limit, URLs in UTF-8
    cors.init_app(app)
    app.after_request(_finish)
    app.after_request(_security_headers)
    app.add_template_global(csp_nonce)
    errors.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(meta.bp)
    app.register_blueprint(consent.bp)
    app.register_blueprint(profiles.bp)
    app.register_blueprint(decisions.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(webhooks.bp)
