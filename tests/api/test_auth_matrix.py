"""Every protected endpoint against every way a bearer token can be wrong (and one way it is right).

ROWS is the table: add a row for each protected endpoint a feature adds. A row
is (method, path, scope, JSON body or None, purpose or None); a row with a
purpose is also checked against a client that is not bound to that purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from freezegun import freeze_time
from werkzeug.exceptions import HTTPException

from gateway.api.auth import requires
from gateway.core.actor import Actor
from gateway.core.errors import Forbidden, InvalidRequest
from gateway.security import jwt
from gateway.services import decisions
from gateway.services.auth import bearer, clients, keys


class Row(NamedTuple):
    method: str
    path: str
    scope: str
    body: dict | None
    purpose: str | None


NOTICE = {"subject_id": "u-1", "purposes": ["personalization"], "locale": "en"}
CHOICES = {"subject_id": "u-1", "purposes": {"personalization": "granted"}, "locale": "en"}

ROWS = [
    Row("POST", "/v1/notices/served", "consent:write", NOTICE, None),
    Row("POST", "/v1/consents", "consent:write", CHOICES, None),
    Row("GET", "/v1/subjects/u-1/consents", "consent:read", None, None),
    Row("DELETE", "/v1/subjects/u-1/consents", "consent:write", None, None),
    # rows for routes that are not registered (yet) are skipped until they are
    Row("GET", "/v1/audit/events", "audit:read", None, None),
    Row("GET", "/v1/reports/processing", "audit:read", None, None),
    Row("PATCH", "/v1/subjects/u-1/profile", "profile:write", {"attributes": {"loyalty_tier": "gold"}},
        None),
    Row("GET", "/v1/subjects/u-1/profile?purpose=personalization", "profile:read", None,
        "personalization"),
    Row("GET", "/v1/subjects/u-1/export", "subject:export", None, None),
    Row("DELETE", "/v1/subjects/u-1", "subject:erase", None, None),
    Row("POST", "/v1/decisions", "decision:write", {"subject_id": "u-1", "placement": "homepage_hero"},
        "personalization"),
    # {decision_id} is replaced by a decision made just before the call
    Row("GET", "/v1/decisions/{decision_id}/explanation?locale=de", "decision:read", None, None),
    Row("GET", "/v1/reports/consent-rates?days=30", "audit:read", None, None),
    Row("GET", "/v1/audit/recent?limit=5", "audit:read", None, None),
    Row("POST", "/v1/webhooks", "webhooks:manage", {"url": "http://127.0.0.1:9/hook",
                                                    "events": ["consent.changed"]}, None),
    Row("GET", "/v1/webhooks", "webhooks:manage", None, None),
    # {webhook_id} is replaced by a new subscription, {delivery_id} by a failed delivery of it
    Row("GET", "/v1/webhooks/{webhook_id}", "webhooks:manage", None, None),
    Row("PATCH", "/v1/webhooks/{webhook_id}", "webhooks:manage", {"description": "CRM"}, None),
    Row("DELETE", "/v1/webhooks/{webhook_id}", "webhooks:manage", None, None),
    Row("POST", "/v1/webhooks/{webhook_id}/rotate-secret", "webhooks:manage", None, None),
    Row("GET", "/v1/webhooks/{webhook_id}/deliveries", "webhooks:manage", None, None),
    Row("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", "webhooks:manage", None,
        None),
    Row("POST", "/v1/webhooks/{webhook_id}/replay", "webhooks:manage",
        {"since": "2026-01-01T00:00:00Z"}, None),
]
PURPOSE_ROWS = [r for r in ROWS if r.purpose]
OTHER_SCOPE = {s: "audit:read" if s != "audit:read" else "consent:read" for s in clients.SCOPES}
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _concrete(path: str) -> str:
    """The path without its query, with made-up ids in place of the placeholders."""
    return path.split("?")[0].replace("{webhook_id}", "whk_x").replace("{delivery_id}", "dlv_1")


def _id(row: Row) -> str:
    return f"{row.method} {row.path}"


def routed(app, row: Row) -> bool:
    try:
        app.url_map.bind("localhost").match(_concrete(row.path), method=row.method)
    except HTTPException:
        return False
    return True


rows = pytest.mark.parametrize("row", ROWS, ids=_id)


def call(client, row: Row, headers: dict | None = None):
    path = row.path
    if "{decision_id}" in path:
        gw = client.application.extensions["gateway"]
        made = decisions.decide(gw, Actor(kind="cli", id="cli"), subject_id="u-1", placement="homepage_hero")
        path = path.replace("{decision_id}", made["decision_id"])
    if "{webhook_id}" in path:
        from webhook_helpers import failed_delivery

        gw = client.application.extensions["gateway"]
        webhook_id, delivery_id = failed_delivery(gw)
        path = path.replace("{webhook_id}", webhook_id).replace("{delivery_id}", delivery_id)
    return client.open(path, method=row.method, json=row.body, headers=headers or {})


def assert_401(response):
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def creds(make_client):
    """make(row, purposes=None): a client with exactly the row's scope (and purpose)."""

    def make(row: Row, purposes=None):
        bound = [row.purpose] if purposes is None and row.purpose else list(purposes or [])
        return make_client([row.scope], bound)

    return make


def denials(gw, client_id: str) -> list[dict]:
    with gw.db.engine.connect() as conn:
        rows_ = conn.execute(sa.text(
            "SELECT data FROM audit_events WHERE type = 'access.denied' AND actor = :a"),
            {"a": client_id}).scalars().all()
    return [r if isinstance(r, dict) else json.loads(r) for r in rows_]


def test_the_table_covers_every_protected_route(app):
    """Every route that `requires` a scope has a row with its method and scope."""
    adapter = app.url_map.bind("localhost")
    covered = set()
    for row in ROWS:
        assert routed(app, row), f"{row.method} {row.path} is in the table but not a route of the app"
        endpoint, _ = adapter.match(_concrete(row.path), method=row.method)
        covered.add((row.method, endpoint, row.scope))
    for rule in app.url_map.iter_rules():
        scope = getattr(app.view_functions[rule.endpoint], "required_scope", None)
        for method in rule.methods - {"HEAD", "OPTIONS"} if scope else ():
            assert (method, rule.endpoint, scope) in covered, f"add a row for {method} {rule.rule}"


@rows
def test_no_token_is_401(client, row):
    assert_401(call(client, row))


@rows
@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c",
                                    "Bearer a.b.c.d.e", "Basic dXNlcjpwYXNz", "Token abc"])
def test_malformed_token_is_401(client, row, header):
    assert_401(call(client, row, {"Authorization": header}))


@rows
def test_wrong_scope_is_403_and_audited(client, gw, make_client, token_for, auth, row):
    other = make_client([OTHER_SCOPE[row.scope]], [row.purpose] if row.purpose else [])
    r = call(client, row, auth(token_for(other)))
    assert r.status_code == 403, r.json
    assert r.mimetype == "application/problem+json"
    assert {"reason": "scope", "scope": row.scope} in denials(gw, other["client_id"])


@pytest.mark.parametrize("row", PURPOSE_ROWS, ids=_id)
def test_purpose_not_bound_is_403_and_audited(client, gw, creds, token_for, auth, row):
    others = [p for p in gw.policy.purpose_ids if p != row.purpose][:1]
    credentials = creds(row, purposes=others)
    r = call(client, row, auth(token_for(credentials)))
    assert r.status_code == 403, r.json
    assert {"reason": "purpose", "purpose": row.purpose} in denials(gw, credentials["client_id"])


@rows
def test_expired_token_is_401(client, creds, token_for, auth, row):
    credentials = creds(row)
    with freeze_time(T0) as frozen:
        token = token_for(credentials)
        assert call(client, row, auth(token)).status_code < 300
        frozen.tick(timedelta(seconds=899))
        assert call(client, row, auth(token)).status_code < 300
        frozen.tick(timedelta(seconds=1))  # exp itself is already too late
        r = call(client, row, auth(token))
    assert_401(r)
    assert "expired" in r.json["detail"]


@rows
def test_token_from_an_unknown_key_is_401(client, gw, creds, forge, token_for, auth, row):
    credentials = creds(row)
    assert_401(call(client, row, auth(forge(credentials))))  # a fresh key, a kid nobody knows
    known = keys.jwks(gw)["keys"][0]["kid"]
    assert_401(call(client, row, auth(forge(credentials, header={"kid": known}))))  # known kid, wrong key
    assert_401(call(client, row, auth(forge(credentials, header={"kid": None}))))  # no kid at all
    assert_401(call(client, row, auth(forge(credentials, header={"kid": "k\x00"}))))  # not a kid
    assert_401(call(client, row, auth(forge(credentials, header={"kid": "k" * 5000}))))


@rows
def test_alg_none_is_401(client, gw, creds, forge, auth, row):
    credentials = creds(row)
    kid = keys.jwks(gw)["keys"][0]["kid"]
    for alg in ("none", "None", "NONE"):
        assert_401(call(client, row, auth(forge(credentials, header={"alg": alg, "kid": kid},
                                                unsigned=True))))


@rows
def test_hs256_signed_with_the_public_key_is_401(client, gw, creds, forge, auth, row):
    credentials = creds(row)
    jwk = keys.jwks(gw)["keys"][0]
    raw = jwt.JsonWebKey.import_key(jwk).get_public_key()
    secrets = [
        raw.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        raw.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        jwk["x"].encode(),
    ]
    for secret in secrets:
        token = forge(credentials, header={"alg": "HS256", "kid": jwk["kid"]}, hmac_key=secret)
        assert_401(call(client, row, auth(token)))


@rows
def test_wrong_issuer_audience_or_claims_are_401(client, gw, creds, forge, auth, row):
    """Correctly signed with the gateway's own key, but not a token for this gateway."""
    credentials = creds(row)
    key = keys.signer(gw)
    private = key.private_key

    def signed(header=None, **claims):
        return forge(credentials, key=private, header={"kid": key.kid, **(header or {})}, **claims)

    assert call(client, row, auth(signed())).status_code < 300  # the control: it would pass
    for bad in ({"iss": "https://evil.example"}, {"aud": "another-api"}, {"client_id": "cli_nobody"},
                {"iat": int(gw.now().timestamp()) + 3600}, {"scope": 42}):
        assert_401(call(client, row, auth(signed(**bad))))
    assert_401(call(client, row, auth(signed(header={"typ": "JWT"}))))  # not an access token


@rows
def test_a_token_of_another_kind_is_401(client, gw, creds, auth, row):
    """Signed with the gateway's own key and carrying every claim of an access token, but its
    header names another kind of token (a subject token, say): never a bearer token."""
    credentials = creds(row)
    now = int(gw.now().timestamp())

    def signed(typ):
        claims = {"iss": "http://localhost", "sub": credentials["client_id"], "aud": "consent-gateway",
                  "iat": now, "exp": now + 300, "jti": jwt.new_jti(),
                  "client_id": credentials["client_id"], "scope": " ".join(credentials["scopes"])}
        return keys.sign(gw, claims, typ=typ)

    assert call(client, row, auth(signed("at+jwt"))).status_code < 300  # the control: it would pass
    for typ in ("subject+jwt", "application/subject+jwt", "jwt"):
        r = call(client, row, auth(signed(typ)))
        assert_401(r)
        assert "typ" in r.json["detail"]


@rows
def test_revoked_client_is_401(client, gw, creds, token_for, auth, row):
    credentials = creds(row)
    token = token_for(credentials)
    assert call(client, row, auth(token)).status_code < 300
    clients.revoke_client(gw, credentials["client_id"])
    r = call(client, row, auth(token))
    assert_401(r)
    assert "revoked" in r.json["detail"]


@rows
def test_rotated_key_is_accepted_until_its_tokens_expire(client, gw, creds, token_for, auth, row):
    credentials = creds(row)
    with freeze_time(T0) as frozen:
        old = token_for(credentials)
        old_kid = keys.jwks(gw)["keys"][0]["kid"]
        frozen.tick(timedelta(minutes=10))
        rotated = keys.rotate_signing_key(gw)
        assert rotated["previous_kid"] == old_kid
        new = token_for(credentials)
        assert {k["kid"] for k in keys.jwks(gw)["keys"]} == {old_kid, rotated["kid"]}
        assert call(client, row, auth(old)).status_code < 300
        assert call(client, row, auth(new)).status_code < 300
        frozen.tick(timedelta(minutes=5))  # the old token's exp
        assert_401(call(client, row, auth(old)))
        assert call(client, row, auth(new)).status_code < 300
        frozen.tick(timedelta(minutes=10, seconds=59))  # retired_at + lifetime + 59 s: still published
        assert len(keys.jwks(gw)["keys"]) == 2
        frozen.tick(timedelta(seconds=1))  # retired_at + lifetime + grace: unpublished
        assert [k["kid"] for k in keys.jwks(gw)["keys"]] == [rotated["kid"]]


@rows
def test_correct_token_is_accepted(client, creds, token_for, auth, row):
    r = call(client, row, auth(token_for(creds(row))))
    assert 200 <= r.status_code < 300, r.json


@rows
def test_property_key_works_only_where_allowed(app, client, banner, row):
    endpoint, _ = app.url_map.bind("localhost").match(_concrete(row.path), method=row.method)
    r = call(client, row, banner)
    if app.view_functions[endpoint].property_ok:
        assert 200 <= r.status_code < 300, r.json
    else:
        assert_401(r)


def test_consent_posted_with_a_token_is_method_api(client, gw, make_client, token_for, auth):
    credentials = make_client(["consent:write", "consent:read"])
    r = client.post("/v1/consents", json=CHOICES, headers=auth(token_for(credentials)))
    assert r.status_code == 201
    assert [p["method"] for p in r.json["purposes"]] == ["api"]
    history = client.get("/v1/subjects/u-1/consents?history=true",
                         headers=auth(token_for(credentials))).json["history"]
    assert history[-1]["method"] == "api"
    with gw.db.engine.connect() as conn:
        actor = conn.execute(sa.text("SELECT actor FROM receipts")).scalar_one()
    assert actor == credentials["client_id"]


def test_a_token_with_a_narrower_scope_only_opens_that_scope(client, make_client, token_for, auth):
    credentials = make_client(["consent:write", "consent:read"])
    token = token_for(credentials, scope="consent:read")
    assert client.get("/v1/subjects/u-1/consents", headers=auth(token)).status_code == 200
    assert client.post("/v1/consents", json=CHOICES, headers=auth(token)).status_code == 403


# -- purpose binding, at the service level (routes with purposes call it) --------------------


def test_unknown_purpose_is_422_before_the_binding_is_checked(gw):
    actor = Actor(kind="client", id="cli_x", scopes=frozenset(), purposes=frozenset())
    with pytest.raises(InvalidRequest):
        clients.check_purpose(gw, actor, "no_such_purpose")


def test_purpose_binding_of_clients_only(gw):
    bound = Actor(kind="client", id="cli_a", purposes=frozenset({"personalization"}))
    clients.check_purpose(gw, bound, "personalization")
    with pytest.raises(Forbidden):
        clients.check_purpose(gw, bound, "ads")
    assert {"reason": "purpose", "purpose": "ads"} in denials(gw, "cli_a")
    for unbound in (Actor(kind="property", id="prop_x"), Actor(kind="cli", id="cli")):
        clients.check_purpose(gw, unbound, "ads")  # banners and the CLI are not purpose-bound


def test_requires_still_labels_views():
    @requires("consent:read", property_ok=True)
    def view():
        return "ok"

    assert view.required_scope == "consent:read" and view.property_ok is True


def test_hand_signed_token_with_the_gateway_key_round_trips(gw, creds, forge):
    """The forging helper itself is sound: a token it signs with the real key is accepted."""
    row = ROWS[2]
    credentials = creds(row)
    key = keys.signer(gw)
    private = key.private_key
    token = forge(credentials, key=private, header={"kid": key.kid})
    actor = bearer.authenticate_bearer(gw, f"Bearer {token}", row.scope)
    assert actor.id == credentials["client_id"] and actor.kind == "client"
    assert isinstance(private, ed25519.Ed25519PrivateKey)
