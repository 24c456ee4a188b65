"""Fixtures for service authentication: clients, their tokens, and forged tokens.

The Flask test client talks to `http://localhost`, and the tests' GATEWAY_ISSUER
(tests/conftest.py) is that URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest
from contract import ValidatingClient, spec_validator
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask.testing import FlaskClient

ISSUER = "http://localhost"
AUDIENCE = "consent-gateway"
OAUTH_PATHS = ("/oauth/token", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server")


class OAuthClient(ValidatingClient):
    """The contract-checking client, except for the OAuth paths while openapi.yaml lacks them."""

    def open(self, *args, **kwargs):
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        path = urlsplit(path).path
        if path in OAUTH_PATHS and spec_validator().match(path) is None:
            return FlaskClient.open(self, *args, **kwargs)
        return super().open(*args, **kwargs)


@pytest.fixture
def api(app):
    return OAuthClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def make_client(gw):
    """make_client(scopes, purposes=()) -> {"client_id", "client_secret", "scopes", "purposes"}"""
    from gateway.services.auth import clients

    def make(scopes=("consent:write", "consent:read"), purposes=(), name="backend"):
        return clients.create_client(gw, name, list(scopes), list(purposes))

    return make


@pytest.fixture
def token_for(gw):
    """token_for(credentials, scope=None) -> an access token, straight from the service."""
    from gateway.services.auth import tokens

    def token(credentials, scope=None):
        return tokens.issue_token(
            gw, grant_type="client_credentials", client_id=credentials["client_id"],
            client_secret=credentials["client_secret"], scope=scope, remote_addr="127.0.0.1",
        )["access_token"]

    return token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth():
    """auth(token) -> the Authorization header."""
    return bearer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def sign(header: dict, claims: dict, *, ed25519_key=None, hmac_key: bytes | None = None) -> str:
    """A compact JWS made by hand, so that tests can make what no library would."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    if ed25519_key is not None:
        signature = ed25519_key.sign(signing_input.encode())
    elif hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    else:
        signature = b""
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture
def forge(gw):
    """forge(credentials, **claim overrides, header=..., key=..., hmac_key=..., unsigned=...) -> token.

    Defaults give a token like the gateway's own, signed with a fresh Ed25519 key
    (so still not one the gateway trusts unless the test says otherwise).
    """

    def make(credentials, *, header=None, key=None, hmac_key=None, unsigned=False, **overrides):
        now = int(gw.now().timestamp())
        claims = {"iss": ISSUER, "sub": credentials["client_id"], "aud": AUDIENCE, "iat": now,
                  "exp": now + 300, "jti": "forged", "client_id": credentials["client_id"],
                  "scope": " ".join(credentials["scopes"])}
        claims.update(overrides)
        head = {"alg": "EdDSA", "kid": "unknown-kid", "typ": "at+jwt", **(header or {})}
        if unsigned:
            return sign(head, claims)
        if hmac_key is not None:
            return sign(head, claims, hmac_key=hmac_key)
        return sign(head, claims, ed25519_key=key or ed25519.Ed25519PrivateKey.generate())

    return make
