"""Bearer tokens on every service endpoint: this gateway's access tokens and, when one is
configured, the organisation's own identity provider's.

Every request with a token is checked against the keys that signed it and the client's
row (so a revocation takes effect at once), then against the scope of the endpoint.
Only service access tokens are bearer tokens: a token of this gateway whose header `typ`
is anything but `at+jwt` (RFC 9068) is refused with 401, whatever it was signed for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...core.actor import Actor
from ...core.errors import Unauthenticated
from ...security import jwt
from ...security.tokens import digest
from ...store.auth import AuthRepository
from ..context import Gateway
from . import keys
from .clients import SCOPES, check_scope

TOKEN_CACHE_SECONDS = 60  # how long a verified token is trusted without checking it again
TOKEN_CACHE_SIZE = 10_000
ACCESS_TOKEN_TYPES = jwt.ACCESS_TOKEN_TYPES  # at+jwt, and its media-type spelling (RFC 9068 §4)
ACCESS_TOKEN_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "client_id", "scope")


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("send Authorization: Bearer <access token>")
    return token


def authenticate_bearer(gw: Gateway, authorization: str, scope: str | None) -> Actor:
    """The client behind `Authorization: Bearer ...`, with `scope` checked.

    401 for a missing, malformed, expired or foreign token, a token that is not an access
    token, or a revoked client; 403 (audited) when the token is valid but lacks the scope.
    """
    token = _bearer(authorization)
    peek = jwt.unverified(token)
    if peek is None:
        raise Unauthenticated("the bearer token is not a signed JWT")
    settings = gw.settings
    own_issuer = keys.issuer(gw)
    from_idp = settings.idp_enabled and settings.idp_issuer != own_issuer
    if from_idp and peek[1].get("iss") == settings.idp_issuer:
        actor = _idp_actor(gw, token)
    else:
        actor = _local_actor(gw, token, own_issuer)
    if scope is not None:
        check_scope(gw, actor, scope)
    return actor


# --- this gateway's access tokens -------------------------------------------------------------


def _verified_claims(gw: Gateway, token: str, own_issuer: str, now: datetime) -> dict[str, Any]:
    """The claims of one of this gateway's access tokens, verified at most once a minute.

    A service sends the same token with every request until it expires, and the
    signature check with its key lookup was a fifth of a bearer request. A token
    verified once stays valid until `exp` (its key stays published that long), so
    the result is remembered until then, or for a minute at most; the client's row
    is still read on every request (`_local_actor`), so revocation is immediate.
    """
    ts = int(now.timestamp())
    cache = gw.caches.verified_tokens
    hit = cache.get((own_issuer, token))
    if hit is not None:
        claims, checked, until = hit
        if checked <= ts < until:
            return claims
    try:
        claims = keys.verify(gw, token, typ=ACCESS_TOKEN_TYPES, audience=gw.settings.audience,
                             required=ACCESS_TOKEN_CLAIMS, now=ts)
    except jwt.TokenInvalid as exc:
        raise Unauthenticated(str(exc)) from exc
    _check_lifetime(gw, claims, ts)
    if len(cache) >= TOKEN_CACHE_SIZE:
        cache.clear()  # many distinct tokens in a minute: start over rather than track ages
    cache[(own_issuer, token)] = (claims, ts, min(int(claims["exp"]), ts + TOKEN_CACHE_SECONDS))
    return claims


def _check_lifetime(gw: Gateway, claims: Mapping[str, Any], now: int) -> None:
    """Whatever a holder of a signing key signs, a token is never valid longer than the
    configured lifetime (GATEWAY_TOKEN_TTL, plus the clock-skew leeway), nor issued later
    than now."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if not (isinstance(iat, int) and not isinstance(iat, bool)
            and isinstance(exp, int) and not isinstance(exp, bool)):
        raise Unauthenticated("the token's iat and exp must be whole seconds")
    if iat > now + jwt.LEEWAY_SECONDS:
        raise Unauthenticated("the token was issued in the future")
    if exp - iat > gw.settings.token_ttl_seconds + jwt.LEEWAY_SECONDS:
        raise Unauthenticated("the token is valid for longer than this gateway issues tokens for")


def _local_actor(gw: Gateway, token: str, own_issuer: str) -> Actor:
    claims = _verified_claims(gw, token, own_issuer, gw.now())
    with gw.db.query() as conn:
        row = AuthRepository(conn).binding(claims["client_id"])
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the token's client is unknown or revoked")
    scopes = frozenset(claims["scope"].split()) & frozenset(row.scopes)
    return Actor(kind="client", id=row.id, scopes=scopes, purposes=frozenset(row.purposes))


# --- the organisation's own identity provider (optional) --------------------------------------


def _idp_actor(gw: Gateway, token: str) -> Actor:
    settings = gw.settings
    url = settings.idp_jwks_url or ""
    idp_keys = gw.caches.idp_keys
    known = idp_keys.get(url)

    def find_key(kid: str) -> dict[str, Any] | None:
        return known.get(kid) or idp_keys.get(url, refresh=True).get(kid)

    try:
        claims = jwt.decode(token, find_key=find_key, issuer=settings.idp_issuer or "",
                            audience=settings.idp_audience or "", now=int(gw.now().timestamp()),
                            algorithms=jwt.IDP_ALGORITHMS, required=("iss", "aud", "exp"),
                            token_types=None)
    except jwt.TokenInvalid as exc:
        raise Unauthenticated(str(exc)) from exc
    who = claims.get("client_id") or claims.get("azp") or claims.get("sub")
    if not isinstance(who, str) or not who:
        raise Unauthenticated("the token names no client (client_id, azp or sub)")
    actor_id = f"idp:{who}"
    if len(actor_id) > 64 or not actor_id.isprintable():
        actor_id = "idp:" + digest(who)[:40]
    return Actor(kind="client", id=actor_id, scopes=frozenset(_words(claims, "scope", "scp")) & set(SCOPES),
                 purposes=frozenset(_words(claims, "purposes")))


def _words(claims: Mapping[str, Any], *names: str) -> list[str]:
    """A claim that is a space-separated string or a list of strings."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
    return []
