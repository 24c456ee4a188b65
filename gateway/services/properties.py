"""Banner credentials: properties with a public key and an Origin allow-list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..core.actor import CLI, Actor
from ..core.errors import FieldError, Forbidden, InvalidRequest, Unauthenticated
from ..security.tokens import digest, new_id, new_secret
from ..store.properties import PropertyRepository
from . import audit
from .context import Gateway


def normalize_origin(value: str) -> str:
    """`https://Shop.example:443/` -> `https://shop.example`; raises ValueError if not an origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an origin is scheme and host, such as https://shop.example")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError("an origin has no path, query, fragment or user")
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def create_property(gw: Gateway, name: str, origins: list[str], actor: Actor = CLI) -> dict[str, Any]:
    errors = []
    if not name or not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "a name of 1 to 200 characters is required"))
    normalized = []
    for i, origin in enumerate(origins):
        try:
            normalized.append(normalize_origin(origin))
        except ValueError as exc:
            errors.append(FieldError(f"origins[{i}]", f"{origin!r}: {exc}"))
    if errors:
        raise InvalidRequest("the property is not valid", errors=errors)
    key = new_secret("pk")
    property_id, stripped, allowed = new_id("prop"), name.strip(), list(dict.fromkeys(normalized))
    now = gw.now()
    with gw.db.write() as s:
        PropertyRepository(s).add(property_id=property_id, name=stripped, key_hash=digest(key),
                                  origins=allowed, created_at=now)
        audit.record(s, "property.created", actor=actor, at=now,
                     property_id=property_id, origins=allowed)
    return {"property_id": property_id, "property_key": key, "origins": allowed, "name": stripped}


def authenticate(gw: Gateway, key: str, origin: str | None) -> Actor:
    """The property behind `X-Property-Key`; its Origin allow-list is enforced when sent."""
    with gw.db.query() as conn:
        prop = PropertyRepository(conn).by_key_hash(digest(key))
    if prop is None or prop.revoked_at is not None:
        raise Unauthenticated("the property key is not valid")
    if origin is not None:
        try:
            allowed = normalize_origin(origin) in prop.origins
        except ValueError:
            allowed = False
        if not allowed:
            raise Forbidden("this origin is not allowed for the property")
    return Actor(kind="property", id=prop.id)


def origin_known(gw: Gateway, origin: str) -> bool:
    """Whether any active property allows `origin` (for CORS preflight, which has no key)."""
    try:
        wanted = normalize_origin(origin)
    except ValueError:
        return False
    with gw.db.read() as s:
        allowed = PropertyRepository(s).active_origins()
    return any(wanted in origins for origins in allowed)


def list_properties(gw: Gateway) -> list[dict[str, Any]]:
    with gw.db.read() as s:
        stored = PropertyRepository(s).all()
    return [
        {"property_id": p.id, "name": p.name, "origins": p.origins,
         "created_at": p.created_at, "revoked": p.revoked_at is not None}
        for p in stored
    ]
