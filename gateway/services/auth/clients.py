"""OAuth clients: backends and DPO tools with client credentials, bound to scopes and purposes.

Creating, listing, rotating the secret of and revoking clients, and the two checks every
authenticated service request goes through: the endpoint's scope and, where a purpose is
named, the client's purpose binding (refusals are audited).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

import structlog

from ...core.actor import CLI, Actor
from ...core.errors import Conflict, FieldError, Forbidden, InvalidRequest, NotFound
from ...core.timefmt import iso as _iso
from ...security.tokens import digest, new_id, new_secret
from ...store.auth import AuthRepository
from ...store.auth_models import Client
from .. import audit
from ..context import Gateway

log = structlog.get_logger(__name__)

SCOPES = (
    "consent:write",
    "consent:read",
    "profile:write",
    "profile:read",
    "decision:write",
    "decision:read",
    "webhooks:manage",
    "audit:read",
    "subject:export",
    "subject:erase",
)
HASH_SCHEME = "sha256"  # the secrets are 256 random bits: a fast hash cannot be brute-forced


def hash_secret(secret: str) -> str:
    """How a client secret is stored."""
    return f"{HASH_SCHEME}${digest(secret)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether `secret` is the one stored as `stored` (compared in constant time)."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored.encode())


def _client_view(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "name": client.name,
        "scopes": list(client.scopes),
        "purposes": list(client.purposes),
        "created_at": _iso(client.created_at),
        "secret_rotated_at": _iso(client.secret_rotated_at),
        "revoked_at": _iso(client.revoked_at),
    }


def create_client(
    gw: Gateway, name: str, scopes: Iterable[str], purposes: Iterable[str] = (), actor: Actor = CLI
) -> dict[str, Any]:
    """A new client bound to `scopes` and `purposes`; the secret is returned once, only hashed after."""
    wanted_scopes, wanted_purposes = list(dict.fromkeys(scopes)), list(dict.fromkeys(purposes))
    errors = []
    if not name or not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "a name of 1 to 200 characters is required"))
    if not wanted_scopes:
        errors.append(FieldError("scopes", "at least one scope is required"))
    errors += [
        FieldError(f"scopes[{i}]", f"unknown scope {s!r}; valid: {', '.join(SCOPES)}")
        for i, s in enumerate(wanted_scopes)
        if s not in SCOPES
    ]
    errors += [
        FieldError(f"purposes[{i}]", f"unknown purpose {p!r}; the policy defines: "
                   f"{', '.join(gw.policy.purpose_ids)}")
        for i, p in enumerate(wanted_purposes)
        if gw.policy.purpose(p) is None
    ]
    if errors:
        raise InvalidRequest("the client is not valid", errors=errors)
    secret = new_secret("cs")
    now = gw.now()
    with gw.db.write() as s:
        client = AuthRepository(s).add_client(
            client_id=new_id("cli"), name=name.strip(), secret_hash=hash_secret(secret),
            scopes=[x for x in SCOPES if x in wanted_scopes], purposes=wanted_purposes, now=now)
        audit.record(s, "client.created", actor=actor, at=now, client_id=client.id,
                     scopes=client.scopes, purposes=client.purposes)
    return {"client_id": client.id, "client_secret": secret, "scopes": client.scopes,
            "purposes": client.purposes, "name": client.name}


def list_clients(gw: Gateway) -> list[dict[str, Any]]:
    with gw.db.read() as s:
        return [_client_view(c) for c in AuthRepository(s).clients()]


def rotate_secret(gw: Gateway, client_id: str, actor: Actor = CLI) -> dict[str, Any]:
    """A new secret; the old one stops working at once (tokens already issued stay valid)."""
    secret = new_secret("cs")
    now = gw.now()
    with gw.db.write() as s:
        repo = AuthRepository(s)
        client = repo.client(client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}")
        if client.revoked_at is not None:
            raise Conflict(f"the client {client_id} is revoked")
        repo.set_secret(client, hash_secret(secret), now)
        audit.record(s, "client.secret_rotated", actor=actor, at=now, client_id=client.id)
    return {"client_id": client_id, "client_secret": secret, "secret_rotated_at": _iso(now)}


def revoke_client(gw: Gateway, client_id: str, actor: Actor = CLI) -> dict[str, Any]:
    """No new tokens, and its unexpired tokens are refused from now on. Revoking twice is a no-op."""
    now = gw.now()
    with gw.db.write() as s:
        repo = AuthRepository(s)
        client = repo.client(client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}")
        if client.revoked_at is None:
            repo.revoke(client, now)
            audit.record(s, "client.revoked", actor=actor, at=now, client_id=client.id)
        return {"client_id": client.id, "revoked_at": _iso(client.revoked_at)}


# --- what an authenticated client may do ------------------------------------------------------


def _deny(gw: Gateway, actor: Actor, **data: Any) -> None:
    """An authenticated client refused for scope or purpose: audited, never silently."""
    with gw.db.write() as s:
        audit.record(s, "access.denied", actor=actor, at=gw.now(), **data)
    log.info("access.denied", actor=actor.id, **data)


def check_scope(gw: Gateway, actor: Actor, scope: str) -> None:
    """Does `actor` carry `scope`? If not: 403, audited."""
    if scope not in actor.scopes:
        _deny(gw, actor, reason="scope", scope=scope)
        raise Forbidden(f"the token does not carry the scope {scope}")


def check_purpose(gw: Gateway, actor: Actor, purpose: str, *, field: str = "purpose") -> None:
    """May `actor` use `purpose`? Unknown purpose: 422 (first); client not bound to it: 403.

    Property (banner) and CLI actors are not purpose-bound.
    """
    if gw.policy.purpose(purpose) is None:
        raise InvalidRequest("the request names a purpose the policy does not define",
                             errors=[FieldError(field, f"unknown purpose {purpose!r}")])
    if actor.kind == "client" and purpose not in actor.purposes:
        _deny(gw, actor, reason="purpose", purpose=purpose)
        raise Forbidden(f"the client is not allowed to use the purpose {purpose}")
