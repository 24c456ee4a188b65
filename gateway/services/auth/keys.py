"""The gateway's token-signing keys: the active key, rotation, the published JWKS, and
signing and verifying any kind of token this gateway issues with them.

Every JWT the gateway signs carries its kind in the JOSE header `typ` (service access
tokens: `at+jwt`, RFC 9068), and every verifier names the one kind it accepts, so that a
token of one kind is never taken for another. The public surface:

- `issuer(gw)`: the `iss` of every token this gateway signs.
- `sign(gw, claims, *, typ)` / `signer(gw)`: sign with the active key.
- `verification_key(gw, kid)`: the published public JWK for `kid`, or None.
- `verify(gw, token, *, typ, audience, required)`: signature, `typ`, `iss`, `aud` and times
  checked against the published keys; raises `jwt.TokenInvalid` (or `jwt.TokenExpired`).

A retired key stays published for GATEWAY_TOKEN_TTL (plus a grace minute) after its
retirement (`published_for`): a token kind that may live longer than that must lengthen it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from ...core.actor import CLI, Actor
from ...core.errors import Conflict
from ...core.timefmt import iso as _iso
from ...security import jwt
from ...security.secrets import load_key
from ...store.auth import AuthRepository
from ...store.auth_models import SigningKey
from ...store.errors import DuplicateKey
from .. import audit
from ..context import Gateway

log = structlog.get_logger(__name__)

KEY_GRACE_SECONDS = 60  # a retired key stays published a little past its last token's expiry
SYSTEM = "gateway"  # the actor of what the gateway does on its own (the first signing key)


def issuer(gw: Gateway) -> str:
    """GATEWAY_ISSUER (required in production): `iss` and the metadata's URLs never come from a
    request's Host header."""
    return gw.settings.issuer


def _passphrase(gw: Gateway) -> bytes:
    """The secret that encrypts the private keys at rest (env, or instance/ in development)."""
    passphrase = gw.caches.signing_key_passphrase
    if passphrase is None:
        passphrase = load_key(gw.settings.signing_key_passphrase, "GATEWAY_SIGNING_KEY_PASSPHRASE",
                              gw.settings.instance_dir, production=gw.settings.production)
        gw.caches.signing_key_passphrase = passphrase
    return passphrase


def _add_new_key(gw: Gateway, repo: AuthRepository, generation: int, now: datetime) -> SigningKey:
    new = jwt.generate_key(gw.settings.signing_algorithm, _passphrase(gw))
    return repo.add_key(kid=new.kid, generation=generation, algorithm=new.algorithm,
                        private_key_pem=new.private_key_pem, public_jwk=new.public_jwk, now=now)


def active_key(gw: Gateway) -> SigningKey:
    """The key that signs new tokens, created on first use (safe when workers race)."""
    with gw.db.read() as s:
        key = AuthRepository(s).latest_key()
    if key is not None:
        return key
    now = gw.now()
    try:
        with gw.db.write() as s:
            repo = AuthRepository(s)
            if repo.latest_key() is None:
                row = _add_new_key(gw, repo, 1, now)
                audit.record(s, "key.created", actor=SYSTEM, at=now, kid=row.kid,
                             algorithm=row.algorithm)
    except DuplicateKey:
        pass  # another worker created generation 1 first: use theirs
    with gw.db.read() as s:
        key = AuthRepository(s).latest_key()
    if key is None:
        raise RuntimeError("the first signing key was neither created nor found")
    return key


def published_for(gw: Gateway) -> timedelta:
    """How long a retired key stays published: the longest lifetime of a token it signed,
    plus a grace minute."""
    return timedelta(seconds=gw.settings.token_ttl_seconds + KEY_GRACE_SECONDS)


def _published(gw: Gateway, key: SigningKey, now: datetime) -> bool:
    """Retired keys verify until every token they signed has expired."""
    if key.retired_at is None:
        return True
    return now < key.retired_at + published_for(gw)


def rotate_signing_key(gw: Gateway, actor: Actor = CLI) -> dict[str, Any]:
    """A new signing key. The previous one is retired: it signs nothing more (its private
    half is erased) but stays in the JWKS until the tokens it signed have expired."""
    now = gw.now()
    try:
        with gw.db.write() as s:
            repo = AuthRepository(s)
            current = repo.latest_key()
            if current is not None:
                repo.retire_key(current, now)
            row = _add_new_key(gw, repo, 1 if current is None else current.generation + 1, now)
            audit.record(s, "key.rotated", actor=actor, at=now, kid=row.kid,
                         previous_kid=current.kid if current else None, algorithm=row.algorithm)
    except DuplicateKey as exc:
        raise Conflict("another key rotation ran at the same time; run it again") from exc
    log.info("key.rotated", kid=row.kid)
    return {"kid": row.kid, "algorithm": row.algorithm,
            "previous_kid": current.kid if current else None, "rotated_at": _iso(now)}


def jwks(gw: Gateway) -> dict[str, list[dict[str, Any]]]:
    """The public keys that verify this gateway's tokens: the active one and recently retired ones."""
    active_key(gw)
    now = gw.now()
    with gw.db.read() as s:
        keys = AuthRepository(s).keys()
    return jwt.jwks(k.public_jwk for k in keys if _published(gw, k, now))


# --- signing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """The active key, unwrapped: signs tokens of any kind (`typ`)."""

    kid: str
    algorithm: str
    private_key: jwt.PrivateKey

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        """A compact JWS of `claims` as given (the caller sets iss, iat, exp, jti ...), with
        the JOSE header `typ`."""
        return jwt.encode(claims, private_key=self.private_key, kid=self.kid,
                          algorithm=self.algorithm, typ=typ)


def signer(gw: Gateway) -> Signer:
    """The active key, ready to sign (its private half unwrapped once per process and key)."""
    key = active_key(gw)
    cache = gw.caches.signing_keys
    private = cache.get(key.kid)
    if private is None:
        private = jwt.load_private_key(key.private_key_pem, _passphrase(gw))
        cache.clear()  # only the active key is ever needed for signing
        cache[key.kid] = private
    return Signer(kid=key.kid, algorithm=key.algorithm, private_key=private)


def sign(gw: Gateway, claims: Mapping[str, Any], *, typ: str) -> str:
    """`claims` signed with the active key, the header naming the token's kind `typ`."""
    return signer(gw).sign(claims, typ=typ)


# --- verifying --------------------------------------------------------------------------------


def verification_key(gw: Gateway, kid: str) -> dict[str, Any] | None:
    """The public JWK of `kid` if it is published now (active, or retired recently enough)."""
    now = gw.now()
    with gw.db.read() as s:
        key = AuthRepository(s).key(kid)
    return key.public_jwk if key is not None and _published(gw, key, now) else None


def verify(
    gw: Gateway,
    token: str,
    *,
    typ: str | tuple[str, ...],
    audience: str,
    required: tuple[str, ...],
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of a token this gateway signed, of the kind `typ` (one header value or
    several equivalent ones), for `audience`, with every claim in `required` present.

    Checked: the signature against a published key (only for the algorithm the key is
    published with), the header's `typ`, `iss` (this gateway's issuer), `aud`, `exp`
    (strict) and `iat`/`nbf` (with jwt.LEEWAY_SECONDS). Raises `jwt.TokenInvalid`, whose
    message is safe to show, or its subclass `jwt.TokenExpired`.
    """
    types = (typ,) if isinstance(typ, str) else typ
    if not types:
        raise ValueError("name the token type (typ) to accept")
    at = int(gw.now().timestamp()) if now is None else now
    return jwt.decode(token, find_key=lambda kid: verification_key(gw, kid), issuer=issuer(gw),
                      audience=audience, now=at, required=required,
                      token_types=tuple(t.lower() for t in types))
