"""Who may call: a banner's property key (with its Origin allow-list) or a service token."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request

from ..core.actor import Actor
from ..core.errors import Unauthenticated
from ..core.limits import LIMIT_NAMES
from ..services import properties, rate_limits
from ..services.auth import bearer, clients
from ..services.context import Gateway


def gateway() -> Gateway:
    return current_app.extensions["gateway"]


def current_actor() -> Actor:
    return g.actor


def _authenticate(scope: str | None, property_ok: bool, limit: str | None = None) -> Actor:
    gw = gateway()
    key = request.headers.get("X-Property-Key")
    if key is not None and property_ok:
        actor = properties.authenticate(gw, key, request.headers.get("Origin"))
        g.cors_origin = request.headers.get("Origin")
        if limit is not None:  # GATEWAY_RATE_LIMITS: banner calls per property and address
            rate_limits.hit(gw, limit, actor.id, request.remote_addr)
        return actor
    authorization = request.headers.get("Authorization")
    if authorization:
        return bearer.authenticate_bearer(gw, authorization, scope)
    if property_ok:
        raise Unauthenticated("send X-Property-Key (banners) or a bearer token (services)")
    raise Unauthenticated("a bearer token is required")


def requires(scope: str | None = None, *, property_ok: bool = False,
             limit: str | None = None) -> Callable:
    """Route decorator: authenticate first, put the caller in `g.actor`.

    `limit` names the GATEWAY_RATE_LIMITS entry (core/limits.py LIMIT_NAMES) that banner
    calls (property key) to the route count against; service callers are not limited here.
    """
    if limit is not None and limit not in LIMIT_NAMES:
        raise ValueError(f"unknown rate limit name {limit!r}")

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.actor = _authenticate(scope, property_ok, limit)
            return view(*args, **kwargs)

        marked: Any = wrapper  # the route carries what it requires
        marked.required_scope = scope  # read by the auth table test and the spec check
        marked.property_ok = property_ok
        marked.rate_limit = limit
        return wrapper

    return decorate


def allow_purpose(purpose: str, *, field: str = "purpose") -> None:
    """For routes that name a purpose: 422 if the policy lacks it, then 403 (audited) if the
    calling client is not bound to it. Banners are not purpose-bound."""
    clients.check_purpose(gateway(), current_actor(), purpose, field=field)
