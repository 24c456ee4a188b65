"""Service authentication: OAuth2 clients, signing keys, the token endpoint and bearer tokens.

Backends and DPO tools get short-lived JWT access tokens (RFC 9068) with the
client-credentials grant. Every request with a token is checked against this
gateway's keys and the client's row (so a revocation takes effect at once),
then against the scope of the endpoint and, where a purpose is named, the
client's purpose binding. Tokens from the organisation's own identity provider
are accepted too when it is configured.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Select, bindparam, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import limits
from ..core.actor import CLI, Actor
from ..core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from ..core.timefmt import iso as _iso
from ..security import jwt
from ..security.secrets import load_key
from ..security.tokens import digest, new_id, new_secret
from ..store.auth_models import Client, SigningKey
from ..store.db import upsert_insert
from ..store.limit_models import TokenThrottle
from . import audit
from .context import Gateway

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
GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
HASH_SCHEME = "sha256"  # the secrets are 256 random bits: a fast hash cannot be brute-forced
KEY_GRACE_SECONDS = 60  # a retired key stays published a little past its last token's expiry
IDP_JWKS_TTL_SECONDS = 300
IDP_JWKS_MIN_REFRESH_SECONDS = 30
IDP_JWKS_MAX_BYTES = 1024 * 1024
TOKEN_CACHE_SECONDS = 60  # how long a verified token is trusted without checking it again
TOKEN_CACHE_SIZE = 10_000
SYSTEM = "gateway"  # the actor of what the gateway does on its own (the first signing key)


class OAuthError(Exception):
    """A token-endpoint error in the terms of RFC 6749 §5.2."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status



def _id_or_none(value: object, max_length: int) -> str | None:
    """`value` if it can be an identifier worth a database lookup (no NUL, no control characters)."""
    if isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable():
        return value
    return None


# --- clients -----------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    return f"{HASH_SCHEME}${digest(secret)}"


def _secret_matches(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_hash_secret(secret).encode(), stored.encode())


def _client_view(client: Client) -> dict:
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
) -> dict:
    """A new client bound to `scopes` and `purposes`; the secret is returned once, only hashed after."""
    scopes, purposes = list(dict.fromkeys(scopes)), list(dict.fromkeys(purposes))
    errors = []
    if not name or not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "a name of 1 to 200 characters is required"))
    if not scopes:
        errors.append(FieldError("scopes", "at least one scope is required"))
    errors += [
        FieldError(f"scopes[{i}]", f"unknown scope {s!r}; valid: {', '.join(SCOPES)}")
        for i, s in enumerate(scopes)
        if s not in SCOPES
    ]
    errors += [
        FieldError(f"purposes[{i}]", f"unknown purpose {p!r}; the policy defines: "
                   f"{', '.join(gw.policy.purpose_ids)}")
        for i, p in enumerate(purposes)
        if gw.policy.purpose(p) is None
    ]
    if errors:
        raise InvalidRequest("the client is not valid", errors=errors)
    secret = new_secret("cs")
    client = Client(
        id=new_id("cli"),
        name=name.strip(),
        secret_hash=_hash_secret(secret),
        scopes=[s for s in SCOPES if s in scopes],
        purposes=purposes,
        created_at=gw.now(),
        secret_rotated_at=None,
        revoked_at=None,
    )
    with gw.db.write() as s:
        s.add(client)
        audit.record(s, "client.created", actor=actor, at=client.created_at, client_id=client.id,
                     scopes=client.scopes, purposes=client.purposes)
    return {"client_id": client.id, "client_secret": secret, "scopes": client.scopes,
            "purposes": client.purposes, "name": client.name}


def list_clients(gw: Gateway) -> list[dict]:
    with gw.db.read() as s:
        return [_client_view(c) for c in s.scalars(select(Client).order_by(Client.created_at))]


def rotate_secret(gw: Gateway, client_id: str, actor: Actor = CLI) -> dict:
    """A new secret; the old one stops working at once (tokens already issued stay valid)."""
    secret = new_secret("cs")
    now = gw.now()
    with gw.db.write() as s:
        client = s.get(Client, client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}")
        if client.revoked_at is not None:
            raise Conflict(f"the client {client_id} is revoked")
        client.secret_hash = _hash_secret(secret)
        client.secret_rotated_at = now
        audit.record(s, "client.secret_rotated", actor=actor, at=now, client_id=client.id)
    return {"client_id": client_id, "client_secret": secret, "secret_rotated_at": _iso(now)}


def revoke_client(gw: Gateway, client_id: str, actor: Actor = CLI) -> dict:
    """No new tokens, and its unexpired tokens are refused from now on. Revoking twice is a no-op."""
    now = gw.now()
    with gw.db.write() as s:
        client = s.get(Client, client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}")
        if client.revoked_at is None:
            client.revoked_at = now
            audit.record(s, "client.revoked", actor=actor, at=now, client_id=client.id)
        return {"client_id": client.id, "revoked_at": _iso(client.revoked_at)}


# --- signing keys ------------------------------------------------------------


def _passphrase(gw: Gateway) -> bytes:
    """The secret that encrypts the private keys at rest (env, or instance/ in development)."""
    passphrase = gw.caches.signing_key_passphrase
    if passphrase is None:
        passphrase = load_key(gw.settings.signing_key_passphrase, "GATEWAY_SIGNING_KEY_PASSPHRASE",
                              gw.settings.instance_dir, production=gw.settings.production)
        gw.caches.signing_key_passphrase = passphrase
    return passphrase


def _latest_key(s: Session) -> SigningKey | None:
    return s.scalars(select(SigningKey).order_by(SigningKey.generation.desc()).limit(1)).first()


def _new_key_row(gw: Gateway, generation: int, now: datetime) -> SigningKey:
    new = jwt.generate_key(gw.settings.signing_algorithm, _passphrase(gw))
    return SigningKey(kid=new.kid, generation=generation, algorithm=new.algorithm,
                      private_key_pem=new.private_key_pem, public_jwk=new.public_jwk,
                      created_at=now, retired_at=None)


def _active_key(gw: Gateway) -> SigningKey:
    """The key that signs new tokens, created on first use (safe when workers race)."""
    with gw.db.read() as s:
        key = _latest_key(s)
    if key is not None:
        return key
    now = gw.now()
    row = _new_key_row(gw, 1, now)
    try:
        with gw.db.write() as s:
            if _latest_key(s) is None:
                s.add(row)
                audit.record(s, "key.created", actor=SYSTEM, at=now, kid=row.kid,
                             algorithm=row.algorithm)
    except IntegrityError:
        pass  # another worker created generation 1 first: use theirs
    with gw.db.read() as s:
        key = _latest_key(s)
    assert key is not None
    return key


def _published(gw: Gateway, key: SigningKey, now: datetime) -> bool:
    """Retired keys verify until every token they signed has expired."""
    if key.retired_at is None:
        return True
    lifetime = timedelta(seconds=gw.settings.token_ttl_seconds + KEY_GRACE_SECONDS)
    return now < key.retired_at + lifetime


def _signer(gw: Gateway) -> tuple[SigningKey, jwt.PrivateKey]:
    key = _active_key(gw)
    cache = gw.caches.signing_keys
    private = cache.get(key.kid)
    if private is None:
        private = jwt.load_private_key(key.private_key_pem, _passphrase(gw))
        cache.clear()  # only the active key is ever needed for signing
        cache[key.kid] = private
    return key, private


def rotate_signing_key(gw: Gateway, actor: Actor = CLI) -> dict:
    """A new signing key. The previous one is retired: it signs nothing more (its private
    half is erased) but stays in the JWKS until the tokens it signed have expired."""
    now = gw.now()
    try:
        with gw.db.write() as s:
            current = _latest_key(s)
            row = _new_key_row(gw, 1 if current is None else current.generation + 1, now)
            if current is not None:
                current.retired_at = now
                current.private_key_pem = ""
            s.add(row)
            s.flush()
            audit.record(s, "key.rotated", actor=actor, at=now, kid=row.kid,
                         previous_kid=current.kid if current else None, algorithm=row.algorithm)
    except IntegrityError as exc:
        raise Conflict("another key rotation ran at the same time; run it again") from exc
    log.info("key.rotated", kid=row.kid)
    return {"kid": row.kid, "algorithm": row.algorithm,
            "previous_kid": current.kid if current else None, "rotated_at": _iso(now)}


def jwks(gw: Gateway) -> dict:
    """The public keys that verify this gateway's tokens: the active one and recently retired ones."""
    _active_key(gw)
    now = gw.now()
    with gw.db.read() as s:
        keys = s.scalars(select(SigningKey).order_by(SigningKey.generation.desc()))
        return jwt.jwks(k.public_jwk for k in keys if _published(gw, k, now))


# --- the token endpoint ------------------------------------------------------


def issuer(gw: Gateway) -> str:
    """GATEWAY_ISSUER (required in production): `iss` and the metadata's URLs never come from a
    request's Host header."""
    return gw.settings.issuer


def metadata(gw: Gateway, issuer_url: str) -> dict:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": issuer_url,
        "token_endpoint": f"{issuer_url}/oauth/token",
        "jwks_uri": f"{issuer_url}/.well-known/jwks.json",
        "grant_types_supported": [GRANT_TYPE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(SCOPES),
        "access_token_signing_alg_values_supported": [gw.settings.signing_algorithm],
    }


# Throttling failed client authentication (the OAuth 2.0 Security BCP, RFC 9700).
# Failures count per (client id, address) pair, never per client id or per address alone:
# wrong secrets sent from one address cannot stop the right secret sent from another, and
# random client ids from one address only ever lock their own (id, address) pairs. After
# GATEWAY_TOKEN_FREE_FAILURES failures in a row each further one locks the pair for twice as
# long (1, 2, 4 ... seconds, at most GATEWAY_TOKEN_MAX_LOCK); a success clears the pair.
THROTTLE_FORGET = timedelta(days=1)  # a pair without failures for this long starts over


def _pair(gw: Gateway, client_id: str | None, remote_addr: str | None) -> str:
    """The pair's keyed hash: no raw client id or address is stored."""
    return gw.pseudonymize(f"oauth-pair\x00{client_id or ''}\x00{remote_addr or ''}")


def _check_throttle(gw: Gateway, pair: str, now: datetime) -> None:
    with gw.db.query() as conn:
        locked_until = conn.execute(select(TokenThrottle.locked_until).where(
            TokenThrottle.pair == pair)).scalar_one_or_none()
    if locked_until is not None and locked_until > now:
        retry_after = max(1, math.ceil((locked_until - now).total_seconds()))
        log.warning("token.throttled", retry_after=retry_after)
        raise RateLimited("too many failed token requests for this client from this address; "
                          "try again later", retry_after=retry_after)


def _record_failure(gw: Gateway, pair: str, now: datetime) -> None:
    """One more failure in a row for the pair, and its lock (one upsert, safe across workers)."""
    insert = upsert_insert(gw.db.dialect)
    stale = TokenThrottle.last_failure_at < now - THROTTLE_FORGET
    stmt = insert(TokenThrottle).values(pair=pair, failures=1, last_failure_at=now, locked_until=None)
    stmt = stmt.on_conflict_do_update(index_elements=["pair"], set_={
        "failures": case((stale, 1), else_=TokenThrottle.failures + 1),
        "last_failure_at": now,
    }).returning(TokenThrottle.failures)
    settings = gw.settings
    with gw.db.write() as s:
        s.execute(delete(TokenThrottle).where(stale, TokenThrottle.pair != pair))
        failures = s.execute(stmt).scalar_one()
        lock = limits.backoff_seconds(failures, settings.token_free_failures,
                                      settings.token_max_lock_seconds)
        if lock:
            s.execute(update(TokenThrottle).where(TokenThrottle.pair == pair)
                      .values(locked_until=now + timedelta(seconds=lock)))


def _clear_throttle(gw: Gateway, pair: str) -> None:
    with gw.db.query() as conn:
        known = conn.execute(select(TokenThrottle.pair).where(TokenThrottle.pair == pair)).first()
    if known is not None:
        with gw.db.write() as s:
            s.execute(delete(TokenThrottle).where(TokenThrottle.pair == pair))


def _invalid_client(gw: Gateway, pair: str, now: datetime, description: str) -> OAuthError:
    _record_failure(gw, pair, now)
    log.info("token.refused", error="invalid_client")
    return OAuthError("invalid_client", description, status=401)


def issue_token(
    gw: Gateway,
    *,
    grant_type: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
    remote_addr: str | None,
) -> dict:
    """The client-credentials grant: authenticate the client, narrow the scope, sign a token.

    Failed client authentications count against the (client id, address) pair; while the
    pair is locked (growing delays, see above) its attempts are a 429 with Retry-After.
    """
    now = gw.now()
    pair = _pair(gw, client_id, remote_addr)
    _check_throttle(gw, pair, now)
    if not client_id or not client_secret:
        raise _invalid_client(gw, pair, now, "client authentication is required "
                              "(HTTP Basic, or client_id and client_secret in the body)")
    lookup = _id_or_none(client_id, 40)
    with gw.db.read() as s:
        client = s.get(Client, lookup) if lookup else None
    stored = client.secret_hash if client is not None else _hash_secret("")
    matches = _secret_matches(client_secret, stored)  # compared even for unknown ids
    if client is None or not matches or client.revoked_at is not None:
        raise _invalid_client(gw, pair, now, "the client is unknown, revoked, "
                              "or the secret is wrong")
    _clear_throttle(gw, pair)
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
    if not scope:  # absent (or empty): every scope the client has
        granted = list(client.scopes)
    else:
        requested = scope.split(" ")
        if any(not s for s in requested):
            raise OAuthError("invalid_scope", "scope is a list of scopes separated by single spaces")
        outside = [s for s in dict.fromkeys(requested) if s not in client.scopes]
        if outside:
            raise OAuthError("invalid_scope", "the client may not request: " + " ".join(outside))
        granted = [s for s in client.scopes if s in requested]
    key, private = _signer(gw)
    iat = int(now.timestamp())
    ttl = gw.settings.token_ttl_seconds
    claims = {
        "iss": issuer(gw),
        "sub": client.id,
        "aud": gw.settings.audience,
        "iat": iat,
        "exp": iat + ttl,
        "jti": jwt.new_jti(),
        "client_id": client.id,
        "scope": " ".join(granted),
    }
    token = jwt.encode(claims, private_key=private, kid=key.kid, algorithm=key.algorithm)
    log.info("token.issued", client_id=client.id, kid=key.kid, scope=claims["scope"])
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": claims["scope"]}


# --- bearer tokens on every service endpoint ---------------------------------


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("send Authorization: Bearer <access token>")
    return token


def _deny(gw: Gateway, actor: Actor, **data: Any) -> None:
    """An authenticated client refused for scope or purpose: audited, never silently."""
    with gw.db.write() as s:
        audit.record(s, "access.denied", actor=actor, at=gw.now(), **data)
    log.info("access.denied", actor=actor.id, **data)


def authenticate_bearer(gw: Gateway, authorization: str, scope: str | None) -> Actor:
    """The client behind `Authorization: Bearer ...`, with `scope` checked.

    401 for a missing, malformed, expired or foreign token or a revoked client;
    403 (audited) when the token is valid but lacks the scope.
    """
    token = _bearer(authorization)
    peek = jwt.unverified(token)
    if peek is None:
        raise Unauthenticated("the bearer token is not a signed JWT")
    settings = gw.settings
    own_issuer = issuer(gw)
    from_idp = settings.idp_enabled and settings.idp_issuer != own_issuer
    if from_idp and peek[1].get("iss") == settings.idp_issuer:
        actor = _idp_actor(gw, token)
    else:
        actor = _local_actor(gw, token, own_issuer)
    if scope is not None and scope not in actor.scopes:
        _deny(gw, actor, reason="scope", scope=scope)
        raise Forbidden(f"the token does not carry the scope {scope}")
    return actor


def _verified_claims(gw: Gateway, token: str, own_issuer: str, now: datetime) -> dict[str, Any]:
    """The claims of one of this gateway's tokens, verified at most once a minute.

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
    with gw.db.read() as s:

        def find_key(kid: str) -> dict | None:
            lookup = _id_or_none(kid, 64)
            key = s.get(SigningKey, lookup) if lookup else None
            return key.public_jwk if key is not None and _published(gw, key, now) else None

        try:
            claims = jwt.decode(token, find_key=find_key, issuer=own_issuer,
                                audience=gw.settings.audience, now=ts)
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
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
        raise Unauthenticated("the token's iat and exp must be whole seconds")
    if iat > now + jwt.LEEWAY_SECONDS:
        raise Unauthenticated("the token was issued in the future")
    if exp - iat > gw.settings.token_ttl_seconds + jwt.LEEWAY_SECONDS:
        raise Unauthenticated("the token is valid for longer than this gateway issues tokens for")


@functools.cache
def _client_by_id() -> Select:
    """Built once, on first use: every bearer request runs it."""
    return (select(Client.id, Client.scopes, Client.purposes, Client.revoked_at)
            .where(Client.id == bindparam("id")))


def _local_actor(gw: Gateway, token: str, own_issuer: str) -> Actor:
    claims = _verified_claims(gw, token, own_issuer, gw.now())
    lookup = _id_or_none(claims["client_id"], 40)
    row = None
    if lookup:
        with gw.db.query() as conn:
            row = conn.execute(_client_by_id(), {"id": lookup}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the token's client is unknown or revoked")
    scopes = frozenset(claims["scope"].split()) & frozenset(row.scopes)
    return Actor(kind="client", id=row.id, scopes=scopes, purposes=frozenset(row.purposes))


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


# --- the organisation's own identity provider (optional) ---------------------

_idp_lock = threading.Lock()


def fetch_jwks(url: str) -> dict:
    """GET a JWKS document (http or https only)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("the JWKS URL must be http or https")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (scheme checked)
        body = response.read(IDP_JWKS_MAX_BYTES + 1)
    if len(body) > IDP_JWKS_MAX_BYTES:
        raise ValueError("the JWKS document is too large")
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    return document


def _idp_keys(gw: Gateway, *, refresh: bool = False) -> dict[str, dict]:
    """The IdP's keys by kid, cached for a few minutes; refetched (rate-limited) on a miss."""
    cached = gw.caches.idp_jwks
    age = time.monotonic() - cached[0] if cached else None
    stale = age is None or age > IDP_JWKS_TTL_SECONDS or (refresh and age > IDP_JWKS_MIN_REFRESH_SECONDS)
    if not stale:
        return cached[1]
    with _idp_lock:
        try:
            document = fetch_jwks(gw.settings.idp_jwks_url or "")
        except (OSError, ValueError) as exc:
            log.warning("idp.jwks_unavailable", error=type(exc).__name__)
            if cached:
                return cached[1]
            raise Unauthenticated("the identity provider's keys cannot be fetched now") from exc
        keys = {
            k["kid"]: k for k in document["keys"]
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("use", "sig") == "sig"
        }
        gw.caches.idp_jwks = (time.monotonic(), keys)
        return keys


def _idp_actor(gw: Gateway, token: str) -> Actor:
    settings = gw.settings
    keys = _idp_keys(gw)

    def find_key(kid: str) -> dict | None:
        return keys.get(kid) or _idp_keys(gw, refresh=True).get(kid)

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
