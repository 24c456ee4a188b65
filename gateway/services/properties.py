"""Banner credentials: properties with a public key and an Origin allow-list."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, select

from ..core.actor import CLI, Actor
from ..core.errors import FieldError, Forbidden, InvalidRequest, Unauthenticated
from ..security.tokens import digest, new_id, new_secret
from ..store.models import Property
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


def create_property(gw: Gateway, name: str, origins: list[str], actor: Actor = CLI) -> dict:
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
    prop = Property(
        id=new_id("prop"),
        name=name.strip(),
        key_hash=digest(key),
        origins=list(dict.fromkeys(normalized)),
        created_at=gw.now(),
        revoked_at=None,
    )
    with gw.db.write() as s:
        s.add(prop)
        audit.record(s, "property.created", actor=actor, at=prop.created_at,
                     property_id=prop.id, origins=prop.origins)
    return {"property_id": prop.id, "property_key": key, "origins": prop.origins, "name": prop.name}


@functools.cache
def _by_key_hash() -> Select:
    """Built once, on first use: every banner request runs it."""
    return (select(Property.id, Property.origins, Property.revoked_at)
            .where(Property.key_hash == bindparam("key_hash")))


def authenticate(gw: Gateway, key: str, origin: str | None) -> Actor:
    """The property behind `X-Property-Key`; its Origin allow-list is enforced when sent."""
    with gw.db.query() as conn:
        prop = conn.execute(_by_key_hash(), {"key_hash": digest(key)}).first()
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
        rows = s.scalars(select(Property.origins).where(Property.revoked_at.is_(None)))
        return any(wanted in origins for origins in rows)


def list_properties(gw: Gateway) -> list[dict]:
    with gw.db.read() as s:
        rows = s.scalars(select(Property).order_by(Property.created_at))
        return [
            {"property_id": p.id, "name": p.name, "origins": p.origins,
             "created_at": p.created_at, "revoked": p.revoked_at is not None}
            for p in rows
        ]
