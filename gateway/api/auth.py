"""Who may call: a banner's property key (with its Origin allow-list) or a service token."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import current_app, g, request

from ..core.actor import Actor
from ..core.errors import Unauthenticated
from ..services import clients, properties
from ..services.context import Gateway


def gateway() -> Gateway:
    return current_app.extensions["gateway"]


def current_actor() -> Actor:
    return g.actor


def _authenticate(scope: str | None, property_ok: bool) -> Actor:
    gw = gateway()
    key = request.headers.get("X-Property-Key")
    if key is not None and property_ok:
        actor = properties.authenticate(gw, key, request.headers.get("Origin"))
        g.cors_origin = request.headers.get("Origin")
        return actor
    authorization = request.headers.get("Authorization")
    if authorization:
        return clients.authenticate_bearer(
            gw, authorization, scope, issuer=clients.issuer(gw, request.host_url)
        )
    if property_ok:
        raise Unauthenticated("send X-Property-Key (banners) or a bearer token (services)")
    raise Unauthenticated("a bearer token is required")


def requires(scope: str | None = None, *, property_ok: bool = False) -> Callable:
    """Route decorator: authenticate first, put the caller in `g.actor`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            g.actor = _authenticate(scope, property_ok)
            return view(*args, **kwargs)

        wrapper.required_scope = scope  # read by the auth table test and the spec check
        wrapper.property_ok = property_ok
        return wrapper

    return decorate


def allow_purpose(purpose: str, *, field: str = "purpose") -> None:
    """For routes that name a purpose: 422 if the policy lacks it, then 403 (audited) if the
    calling client is not bound to it. Banners are not purpose-bound."""
    clients.check_purpose(gateway(), current_actor(), purpose, field=field)
