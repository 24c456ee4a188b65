"""CORS for banners: only origins that some property allows, never `*`."""

from __future__ import annotations

from flask import Flask, Response, g, request

from ..services import properties
from .auth import gateway
from .errors import problem

ALLOW_HEADERS = "Content-Type, X-Property-Key, Idempotency-Key, Sec-GPC, Authorization"
EXPOSE_HEADERS = "X-Request-ID, Idempotent-Replayed, Retry-After"
PUBLIC_PATHS = ("/v1/policy",)


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = request.headers.get("Origin")
    if not origin or not properties.origin_known(gateway(), origin):
        return problem(403, "Forbidden", "this origin is not allowed to call the gateway")
    response = Response(status=204)
    response.headers.update(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
    )
    return response


def _decorate(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if not origin or "Access-Control-Allow-Origin" in response.headers:
        return response
    allowed = getattr(g, "cors_origin", None) == origin
    if not allowed and request.path in PUBLIC_PATHS:
        allowed = properties.origin_known(gateway(), origin)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.vary.add("Origin")
    return response


def init_app(app: Flask) -> None:
    app.before_request(_preflight)
    app.after_request(_decorate)
