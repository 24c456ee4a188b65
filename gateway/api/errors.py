"""The one place where errors become HTTP responses: RFC 9457 problem+json."""

from __future__ import annotations

import structlog
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from ..core.errors import GatewayError
from ..store.errors import StoreUnavailable

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
STATUS = {
    "bad_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "unsupported_media_type": 415,
    "unprocessable": 422,
    "rate_limited": 429,
}
SLUG = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


def problem(status: int, title: str, detail: str, **extra) -> Response:
    body = {
        "type": f"/problems/{SLUG.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="consent-gateway"'
    return response


def _gateway_error(exc: GatewayError) -> Response:
    status = STATUS[exc.kind]
    extra = dict(exc.extra)
    if exc.errors:
        extra["errors"] = [e.as_dict() for e in exc.errors]
    response = problem(status, exc.title, exc.detail, **extra)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = exc.description or exc.name
    if status == 413:
        detail = "the request body is larger than this gateway accepts"
    response = problem(status, exc.name, detail)
    valid_methods = getattr(exc, "valid_methods", None) if status == 405 else None
    if valid_methods:  # werkzeug's MethodNotAllowed
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable):
        # The database connection went away (a restart, a failover, an idle timeout). The pool
        # has been refilled with fresh connections, so the same request will work again.
        log.warning("request.database_disconnected", error=exc.cause)
        response = problem(503, "Database unavailable",
                           "the connection to the database was lost; send the request again (a consent "
                           "write with the same Idempotency-Key is recorded once)")
        response.headers["Retry-After"] = "1"
        return response
    log.error("request.failed", error=type(exc).__name__, exc_info=exc)
    return problem(500, "Internal server error", "the gateway failed; the request was not applied")


def init_app(app: Flask) -> None:
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
