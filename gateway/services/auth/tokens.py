"""The token endpoint: the client-credentials grant, its failure throttle, server metadata.

Backends and DPO tools get short-lived JWT access tokens (RFC 9068, header `typ` `at+jwt`)
signed with the gateway's keys (`keys.py`); `bearer.py` verifies them on every request.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import structlog

from ...core import limits
from ...core.errors import RateLimited
from ...security import jwt
from ...store.auth import AuthRepository
from ..context import Gateway
from . import keys
from .clients import SCOPES, hash_secret, secret_matches

log = structlog.get_logger(__name__)

GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
ACCESS_TOKEN_TYP = jwt.ACCESS_TOKEN_TYPES[0]  # "at+jwt" (RFC 9068 §2.1); bearer.py accepts no other


class OAuthError(Exception):
    """A token-endpoint error in the terms of RFC 6749 §5.2."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def metadata(gw: Gateway, issuer_url: str) -> dict[str, Any]:
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
        locked_until = AuthRepository(conn).locked_until(pair)
    if locked_until is not None and locked_until > now:
        retry_after = max(1, math.ceil((locked_until - now).total_seconds()))
        log.warning("token.throttled", retry_after=retry_after)
        raise RateLimited("too many failed token requests for this client from this address; "
                          "try again later", retry_after=retry_after)


def _record_failure(gw: Gateway, pair: str, now: datetime) -> None:
    """One more failure in a row for the pair, and its lock (safe across workers)."""
    settings = gw.settings
    with gw.db.write() as s:
        repo = AuthRepository(s)
        failures = repo.count_failure(pair, now, forget_before=now - THROTTLE_FORGET)
        lock = limits.backoff_seconds(failures, settings.token_free_failures,
                                      settings.token_max_lock_seconds)
        if lock:
            repo.lock(pair, now + timedelta(seconds=lock))


def _clear_throttle(gw: Gateway, pair: str) -> None:
    with gw.db.query() as conn:
        known = AuthRepository(conn).throttled(pair)
    if known:
        with gw.db.write() as s:
            AuthRepository(s).clear_throttle(pair)


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
) -> dict[str, Any]:
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
    with gw.db.read() as s:
        client = AuthRepository(s).client(client_id)
    stored = client.secret_hash if client is not None else hash_secret("")
    matches = secret_matches(client_secret, stored)  # compared even for unknown ids
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
    signer = keys.signer(gw)
    iat = int(now.timestamp())
    ttl = gw.settings.token_ttl_seconds
    claims = {
        "iss": keys.issuer(gw),
        "sub": client.id,
        "aud": gw.settings.audience,
        "iat": iat,
        "exp": iat + ttl,
        "jti": jwt.new_jti(),
        "client_id": client.id,
        "scope": " ".join(granted),
    }
    token = signer.sign(claims, typ=ACCESS_TOKEN_TYP)
    log.info("token.issued", client_id=client.id, kid=signer.kid, scope=claims["scope"])
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": claims["scope"]}
