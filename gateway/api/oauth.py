"""OAuth2 for services: the token endpoint (client credentials), the JWKS and server metadata.

The token endpoint's errors carry the members of RFC 6749 §5.2 (`error`,
`error_description`) inside the gateway's usual problem+json body, so that both
OAuth client libraries and the API conventions ("every error is problem+json")
are served; a throttled request (too many failures of one client id from one
address) is the usual 429 with `Retry-After`.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from flask import Blueprint, Response, jsonify, request

from ..services.auth import keys, tokens
from .auth import gateway
from .errors import problem

bp = Blueprint("oauth", __name__)
FORM = "application/x-www-form-urlencoded"
REALM = 'Basic realm="consent-gateway"'


@bp.after_request
def _no_store(response: Response) -> Response:
    if request.endpoint == "oauth.token":
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


TITLES = {
    "invalid_request": "Malformed token request",
    "invalid_client": "Client authentication failed",
    "unsupported_grant_type": "Unsupported grant type",
    "invalid_scope": "Scope not allowed",
}


def _error(exc: tokens.OAuthError) -> Response:
    response = problem(exc.status, TITLES.get(exc.error, "Token request refused"), exc.description,
                       error=exc.error, error_description=exc.description)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = REALM
    return response


def _basic(authorization: str) -> tuple[str | None, str | None]:
    """client_secret_basic: the id and secret, form-encoded, then base64 (RFC 6749 §2.3.1).
    Unreadable credentials are returned as missing, so they fail as invalid_client."""
    _, _, encoded = authorization.strip().partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None, None
    return unquote_plus(client_id) or None, unquote_plus(secret) or None


@bp.post("/oauth/token")
def token():
    gw = gateway()
    if request.mimetype != FORM:
        return _error(tokens.OAuthError("invalid_request", f"the body must be {FORM}"))
    form = request.form
    repeated = [name for name, values in form.lists() if len(values) > 1]
    if repeated:
        return _error(tokens.OAuthError("invalid_request", "repeated parameter: " + ", ".join(repeated)))
    authorization = request.headers.get("Authorization", "")
    if authorization.strip().lower().startswith("basic"):
        if "client_secret" in form:
            return _error(tokens.OAuthError(
                "invalid_request", "use one client authentication method, not HTTP Basic and the body"))
        client_id, client_secret = _basic(authorization)
        if form.get("client_id") not in (None, client_id):
            return _error(tokens.OAuthError("invalid_request", "client_id differs from HTTP Basic"))
    else:
        client_id, client_secret = form.get("client_id") or None, form.get("client_secret") or None
    try:
        result = tokens.issue_token(
            gw,
            grant_type=form.get("grant_type"),
            client_id=client_id,
            client_secret=client_secret,
            scope=form.get("scope"),
            remote_addr=request.remote_addr,  # the client's, behind GATEWAY_TRUSTED_PROXIES hops
        )
    except tokens.OAuthError as exc:
        return _error(exc)
    return jsonify(result)


@bp.get("/.well-known/jwks.json")
def jwks():
    response = jsonify(keys.jwks(gateway()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/.well-known/oauth-authorization-server")
def server_metadata():
    gw = gateway()
    return jsonify(tokens.metadata(gw, keys.issuer(gw)))  # GATEWAY_ISSUER, never the Host header
