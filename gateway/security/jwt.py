"""Access tokens as JWTs (RFC 9068) signed with an asymmetric key, built on authlib.jose.

Pure: no database, no clock, no settings. Callers pass the time, the expected
issuer and audience, and a function that finds a public key by its `kid`
among the keys they trust. Only asymmetric algorithms are accepted, so `none`
and HS256 (with a public key as the HMAC secret) are refused before any key is
looked up.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

with warnings.catch_warnings():
    # authlib.jose is deprecated in favour of joserfc from authlib 1.6 on, compatible until 2.0
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import ExpiredTokenError, JoseError

SIGNING_ALGORITHMS = ("EdDSA", "ES256")  # what this gateway signs (and accepts from itself)
IDP_ALGORITHMS = ("EdDSA", "ES256", "RS256", "PS256")  # what an organisation's IdP may use
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
LEEWAY_SECONDS = 30  # clock skew tolerated for iat/nbf; exp is strict
MAX_TOKEN_BYTES = 8192

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
KeyFinder = Callable[[str], Mapping[str, Any] | None]


class TokenInvalid(Exception):
    """The token is not acceptable; the message is safe to show to the caller."""


class TokenExpired(TokenInvalid):
    pass


@dataclass(frozen=True)
class NewKey:
    kid: str
    algorithm: str
    private_key_pem: str  # PKCS#8, encrypted with the passphrase
    public_jwk: dict[str, Any]


def generate_key(algorithm: str, passphrase: bytes) -> NewKey:
    """A fresh signing key: Ed25519 for EdDSA, P-256 for ES256; kid is the RFC 7638 thumbprint."""
    if algorithm == "EdDSA":
        private: PrivateKey = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    jwk = public_jwk(private, algorithm)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode("ascii")
    return NewKey(kid=jwk["kid"], algorithm=algorithm, private_key_pem=pem, public_jwk=jwk)


def load_private_key(pem: str, passphrase: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("not an Ed25519 or EC private key")
    return key


def public_jwk(private: PrivateKey, algorithm: str) -> dict[str, Any]:
    """The public half as a JWK with `kid` (thumbprint), `alg` and `use`."""
    kty = "OKP" if isinstance(private, ed25519.Ed25519PrivateKey) else "EC"
    # authlib imports a cryptography key object too; its stubs list only the serialized forms
    key = JsonWebKey.import_key(private.public_key(), {"kty": kty})  # type: ignore[arg-type]
    jwk = {k: v for k, v in key.as_dict(is_private=False).items() if k != "kid"}
    return {**jwk, "kid": key.thumbprint(), "alg": algorithm, "use": "sig"}


def jwks(public_jwks: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [dict(k) for k in public_jwks]}


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def encode(claims: Mapping[str, Any], *, private_key: PrivateKey, kid: str, algorithm: str,
           typ: str = ACCESS_TOKEN_TYPES[0]) -> str:
    """A compact JWS of `claims`; the header's `typ` names the token's kind (RFC 8725 §3.11)."""
    if algorithm not in SIGNING_ALGORITHMS:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    header = {"alg": algorithm, "kid": kid, "typ": typ}
    token = JsonWebToken([algorithm]).encode(header, dict(claims), private_key)
    return token.decode("ascii")


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(header, claims) WITHOUT checking anything: only to pick which issuer's keys to try."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def decode(
    token: str,
    *,
    find_key: KeyFinder,
    issuer: str,
    audience: str,
    now: int,
    algorithms: tuple[str, ...] = SIGNING_ALGORITHMS,
    required: tuple[str, ...] = ("iss", "aud", "exp", "iat", "jti", "client_id", "scope"),
    token_types: tuple[str, ...] | None = ACCESS_TOKEN_TYPES,
) -> dict[str, Any]:
    """Verify signature and claims; return the claims or raise TokenInvalid / TokenExpired.

    `find_key(kid)` returns the public JWK for a kid this verifier trusts, or
    None. A key is used only for the algorithm it is published with.
    """
    if unverified(token) is None:
        raise TokenInvalid("the token is not a signed JWT")

    def load_key(header: Mapping[str, Any], _payload: Any):
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("the token names no key (kid)")
        jwk = find_key(kid)
        if jwk is None:
            raise TokenInvalid("the token was not signed by a key this gateway trusts")
        if jwk.get("alg") not in (None, header.get("alg")):
            raise TokenInvalid("the token's algorithm does not match its key")
        if token_types is not None and str(header.get("typ", "")).lower() not in token_types:
            raise TokenInvalid("the token is not an access token (typ)")
        return JsonWebKey.import_key(dict(jwk))

    options: dict[str, dict[str, Any]] = {name: {"essential": True} for name in required}
    options.setdefault("iss", {})["value"] = issuer
    options.setdefault("aud", {})["value"] = audience
    try:
        claims = JsonWebToken(list(algorithms)).decode(token, load_key, claims_options=options)
        claims.validate(now=now, leeway=LEEWAY_SECONDS)
    except ExpiredTokenError as exc:
        raise TokenExpired("the token has expired") from exc
    except JoseError as exc:
        raise TokenInvalid(f"the token is not valid ({exc.error})") from exc
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error) as exc:
        raise TokenInvalid("the token is not valid") from exc
    if "exp" in claims and claims["exp"] <= now:  # RFC 7519: "on or after which" it is refused
        raise TokenExpired("the token has expired")
    for name in ("client_id", "scope", "jti", "sub"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenInvalid(f"the token's {name} claim is not a string")
    return dict(claims)
