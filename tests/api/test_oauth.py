"""The token endpoint, the JWKS, server metadata, client and key management (HTTP and CLI)."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import create_app
from gateway.security import jwt
from gateway.services.auth import bearer, clients, keys

TOKEN = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def get_token(api, credentials, **form):
    return api.post(TOKEN, data={**GRANT, **form},
                    headers=basic(credentials["client_id"], credentials["client_secret"]))


def verify(api, token: str, now: int) -> dict:
    keys = {k["kid"]: k for k in api.get("/.well-known/jwks.json").json["keys"]}
    return jwt.decode(token, find_key=keys.get, issuer="http://localhost", audience="consent-gateway",
                      now=now)


def oauth_error(response, status: int, error: str) -> None:
    """RFC 6749 §5.2 members inside the usual problem+json body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["error"] == error and body["error_description"] == body["detail"]
    assert body["status"] == status and body["title"] and body["type"]
    assert response.headers["Cache-Control"] == "no-store"


def scalar(gw, sql: str, **params):
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def audit_types(gw) -> list[str]:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT type FROM audit_events ORDER BY at, type")).scalars().all()


# -- the token endpoint ----------------------------------------------------------------------


def test_client_secret_basic_gives_an_rfc9068_token(api, gw, make_client):
    credentials = make_client(["consent:write", "consent:read"])
    r = get_token(api, credentials)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Pragma"] == "no-cache"
    body = r.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "consent:write consent:read"
    header, _ = jwt.unverified(body["access_token"])
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt" and header["kid"]
    claims = verify(api, body["access_token"], int(gw.now().timestamp()))
    assert claims["client_id"] == claims["sub"] == credentials["client_id"]
    assert claims["iss"] == "http://localhost" and claims["aud"] == "consent-gateway"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    assert claims["scope"] == "consent:write consent:read"


def test_client_secret_post_and_a_narrower_scope(api, make_client):
    credentials = make_client(["consent:write", "consent:read", "audit:read"])
    r = api.post(TOKEN, data={**GRANT, "scope": "audit:read consent:read", **credentials_form(credentials)})
    assert r.status_code == 200
    assert r.json["scope"] == "consent:read audit:read"


def credentials_form(credentials) -> dict:
    return {"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}


@pytest.mark.parametrize("scope", ["subject:erase", "consent:read subject:erase", "nonsense",
                                   "consent:read  consent:write"])
def test_scope_outside_the_client_is_invalid_scope(api, make_client, scope):
    oauth_error(get_token(api, make_client(["consent:read", "consent:write"]), scope=scope),
                400, "invalid_scope")


def test_token_lifetime_is_configurable(app_config, make_client):
    app = create_app({**app_config, "GATEWAY_TOKEN_TTL": "60"})
    try:
        gw = app.extensions["gateway"]
        credentials = clients.create_client(gw, "short", ["consent:read"])
        r = app.test_client().post(TOKEN, data={**GRANT, **credentials_form(credentials)})
        assert r.json["expires_in"] == 60
    finally:
        app.extensions["gateway"].db.dispose()


@pytest.mark.parametrize("how", ["wrong secret", "unknown client", "no credentials", "bad basic",
                                 "id without secret", "NUL in the id", "huge id"])
def test_bad_client_authentication_is_invalid_client(api, make_client, how):
    credentials = make_client()
    headers, form = {}, dict(GRANT)
    if how == "wrong secret":
        headers = basic(credentials["client_id"], credentials["client_secret"] + "x")
    elif how == "unknown client":
        headers = basic("cli_unknown", credentials["client_secret"])
    elif how == "bad basic":
        headers = {"Authorization": "Basic !!!not-base64"}
    elif how == "id without secret":
        form["client_id"] = credentials["client_id"]
    elif how == "NUL in the id":
        form.update(client_id="cli_\x00", client_secret="cs_x")
    elif how == "huge id":
        headers = basic("c" * 5000, "cs_x")
    r = api.post(TOKEN, data=form, headers=headers)
    oauth_error(r, 401, "invalid_client")
    assert r.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("form,error", [
    ({}, "invalid_request"),
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
])
def test_grant_type_errors(api, make_client, form, error):
    credentials = make_client()
    r = api.post(TOKEN, data=form, headers=basic(credentials["client_id"], credentials["client_secret"]))
    oauth_error(r, 400, error)


def test_malformed_token_requests_are_invalid_request(api, make_client):
    credentials = make_client()
    oauth_error(api.post(TOKEN, json={**GRANT, **credentials_form(credentials)}), 400, "invalid_request")
    both = api.post(TOKEN, data={**GRANT, **credentials_form(credentials)},
                    headers=basic(credentials["client_id"], credentials["client_secret"]))
    oauth_error(both, 400, "invalid_request")
    twice = api.post(TOKEN, data=f"grant_type=client_credentials&scope=a&scope=b&client_id="
                     f"{credentials['client_id']}&client_secret={credentials['client_secret']}",
                     content_type="application/x-www-form-urlencoded")
    oauth_error(twice, 400, "invalid_request")


# Throttling of failed attempts: tests/api/test_token_throttle.py


# -- keys, JWKS, metadata --------------------------------------------------------------------


def test_jwks_is_created_lazily_and_persists_across_restarts(app_config, api, gw):
    assert scalar(gw, "SELECT COUNT(*) FROM signing_keys") == 0  # create_app made none
    r = api.get("/.well-known/jwks.json")
    assert r.status_code == 200 and "max-age" in r.headers["Cache-Control"]
    (key,) = r.json["keys"]
    assert key["kid"] and key["alg"] == "EdDSA" and key["kty"] == "OKP" and key["use"] == "sig"
    assert "d" not in key
    pem = scalar(gw, "SELECT private_key_pem FROM signing_keys")
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    again = create_app(app_config)  # another worker, or a restart
    try:
        assert again.test_client().get("/.well-known/jwks.json").json == r.json
    finally:
        again.extensions["gateway"].db.dispose()


def test_two_workers_creating_the_first_key_agree(app_config, gw):
    workers = [create_app(app_config).extensions["gateway"] for _ in range(4)]
    barrier = threading.Barrier(len(workers))
    found, failures = [], []

    def run(worker):
        try:
            barrier.wait()
            found.append(keys.active_key(worker).kid)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.db.dispose()
    assert not failures
    assert len(set(found)) == 1
    assert scalar(gw, "SELECT COUNT(*) FROM signing_keys") == 1


def test_es256_signing_is_configurable(app_config):
    app = create_app({**app_config, "GATEWAY_SIGNING_ALG": "ES256"})
    try:
        gw = app.extensions["gateway"]
        credentials = clients.create_client(gw, "ec", ["consent:read"])
        c = app.test_client()
        token = c.post(TOKEN, data={**GRANT, **credentials_form(credentials)}).json["access_token"]
        assert jwt.unverified(token)[0]["alg"] == "ES256"
        assert c.get("/.well-known/jwks.json").json["keys"][0]["kty"] == "EC"
        assert c.get("/v1/subjects/u-1/consents", headers={"Authorization": f"Bearer {token}"}
                     ).status_code == 200
    finally:
        app.extensions["gateway"].db.dispose()


def test_server_metadata(api):
    meta = api.get("/.well-known/oauth-authorization-server").json
    assert meta["issuer"] == "http://localhost"
    assert meta["token_endpoint"] == "http://localhost/oauth/token"
    assert meta["jwks_uri"] == "http://localhost/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert set(meta["scopes_supported"]) == set(clients.SCOPES)


def test_configured_issuer_is_used_everywhere(app_config):
    app = create_app({**app_config, "GATEWAY_ISSUER": "https://consent.example/"})
    try:
        gw, c = app.extensions["gateway"], app.test_client()
        assert c.get("/.well-known/oauth-authorization-server").json["issuer"] == "https://consent.example"
        credentials = clients.create_client(gw, "b", ["consent:read"])
        token = c.post(TOKEN, data={**GRANT, **credentials_form(credentials)}).json["access_token"]
        assert jwt.unverified(token)[1]["iss"] == "https://consent.example"
        # accepted whatever Host the request names
        r = c.get("/v1/subjects/u-1/consents", headers={"Authorization": f"Bearer {token}"},
                  base_url="http://10.0.0.5:8000")
        assert r.status_code == 200
    finally:
        app.extensions["gateway"].db.dispose()


# -- the CLI ---------------------------------------------------------------------------------


def cli_json(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_create_list_rotate_revoke(api, gw, runner):
    created = cli_json(runner, "clients", "create", "--name", "Shop backend", "--scope", "consent:read",
                       "--scope", "consent:write", "--purpose", "personalization")
    assert set(created) >= {"client_id", "client_secret", "scopes", "purposes"}
    assert created["scopes"] == ["consent:write", "consent:read"]
    assert created["purposes"] == ["personalization"]
    secret = created["client_secret"]
    assert scalar(gw, "SELECT COUNT(*) FROM clients WHERE secret_hash LIKE :s", s=f"%{secret}%") == 0
    assert scalar(gw, "SELECT secret_hash FROM clients").startswith("sha256$")

    listed = cli_json(runner, "clients", "list")
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    assert "client_secret" not in listed[0] and "secret_hash" not in listed[0]

    token = get_token(api, created).json["access_token"]
    rotated = cli_json(runner, "clients", "rotate-secret", created["client_id"])
    oauth_error(get_token(api, created), 401, "invalid_client")  # the old secret
    assert get_token(api, {**created, "client_secret": rotated["client_secret"]}).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/v1/subjects/u-1/consents", headers=headers).status_code == 200  # tokens stay

    revoked = cli_json(runner, "clients", "revoke", created["client_id"])
    assert revoked["revoked_at"]
    oauth_error(get_token(api, {**created, "client_secret": rotated["client_secret"]}), 401,
                "invalid_client")
    assert api.get("/v1/subjects/u-1/consents", headers=headers).status_code == 401
    assert cli_json(runner, "clients", "revoke", created["client_id"]) == revoked  # idempotent

    types = audit_types(gw)
    assert types.count("client.created") == 1 and types.count("client.revoked") == 1
    assert "client.secret_rotated" in types
    assert scalar(gw, "SELECT actor FROM audit_events WHERE type = 'client.created'") == "cli"


@pytest.mark.parametrize("args,message", [
    (["--scope", "consent:fly"], "unknown scope 'consent:fly'"),
    (["--scope", "consent:read", "--purpose", "mind_reading"], "unknown purpose 'mind_reading'"),
])
def test_cli_create_refuses_unknown_scopes_and_purposes(runner, gw, args, message):
    result = runner.invoke(args=["clients", "create", "--name", "x", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert scalar(gw, "SELECT COUNT(*) FROM clients") == 0


@pytest.mark.parametrize("command", ["revoke", "rotate-secret"])
def test_cli_unknown_client_is_a_readable_error(runner, command):
    result = runner.invoke(args=["clients", command, "cli_nope"])
    assert result.exit_code == 1 and "no client" in result.output


def test_cli_keys_rotate(api, gw, runner):
    first = api.get("/.well-known/jwks.json").json["keys"][0]["kid"]
    rotated = cli_json(runner, "keys", "rotate")
    assert rotated["previous_kid"] == first and rotated["kid"] != first
    assert [k["kid"] for k in api.get("/.well-known/jwks.json").json["keys"]] == [rotated["kid"], first]
    assert "key.rotated" in audit_types(gw)
    retired = scalar(gw, "SELECT private_key_pem FROM signing_keys WHERE kid = :k", k=first)
    assert retired == ""  # a retired key signs nothing more


# -- the organisation's own identity provider ------------------------------------------------


@pytest.fixture
def idp():
    """A JWKS served on 127.0.0.1 by a thread, and a function that signs RS256 tokens."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.JsonWebKey.import_key(key.public_key(), {"kty": "RSA"}).as_dict(), "kid": "idp-1",
           "alg": "RS256", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def sign(claims, kid="idp-1"):
        return jwt.JsonWebToken(["RS256"]).encode({"alg": "RS256", "kid": kid}, claims, key).decode()

    yield {"url": f"http://127.0.0.1:{server.server_port}/jwks", "sign": sign, "hits": hits}
    server.shutdown()
    server.server_close()


def test_tokens_of_the_organisations_idp_are_accepted(app_config, idp):
    app = create_app({**app_config, "GATEWAY_IDP_ISSUER": "https://login.example.org",
                      "GATEWAY_IDP_AUDIENCE": "api://consent", "GATEWAY_IDP_JWKS_URL": idp["url"]})
    try:
        gw, c = app.extensions["gateway"], app.test_client()
        now = int(gw.now().timestamp())
        base = {"iss": "https://login.example.org", "aud": "api://consent", "iat": now, "exp": now + 300,
                "azp": "shop-backend"}

        def get(claims, path="/v1/subjects/u-1/consents"):
            return c.get(path, headers={"Authorization": f"Bearer {idp['sign'](claims)}"})

        assert get({**base, "scope": "consent:read openid"}).status_code == 200
        assert get({**base, "scp": ["consent:read"]}).status_code == 200
        assert get({**base, "scope": "profile:read"}).status_code == 403
        assert get({**base, "scope": "consent:read", "aud": "other"}).status_code == 401
        assert get({**base, "scope": "consent:read", "exp": now - 1}).status_code == 401
        assert c.get("/v1/subjects/u-1/consents", headers={
            "Authorization": f"Bearer {idp['sign']({**base, 'scope': 'consent:read'}, kid='nope')}"
        }).status_code == 401
        assert len(idp["hits"]) == 1  # cached; an unknown kid does not refetch within 30 s
        post = c.post("/v1/consents", json={"subject_id": "u-1", "locale": "en",
                                            "purposes": {"personalization": "granted"}},
                      headers={"Authorization": f"Bearer {idp['sign']({**base, 'scope': 'consent:write'})}"})
        assert post.status_code == 201 and post.json["purposes"][0]["method"] == "api"
        actor = bearer.authenticate_bearer(
            gw, f"Bearer {idp['sign']({**base, 'scope': 'profile:read', 'purposes': ['ads']})}",
            "profile:read")
        assert actor.id == "idp:shop-backend" and actor.purposes == {"ads"}
    finally:
        app.extensions["gateway"].db.dispose()


# -- verified tokens are remembered briefly; the client row is read every time ---------------


def _statements(gw):
    """Collect the SQL the gateway sends (lower-cased) while the returned list is alive."""
    seen: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        seen.append(statement.lower())

    sa.event.listen(gw.db.engine, "before_cursor_execute", before)
    return seen, lambda: sa.event.remove(gw.db.engine, "before_cursor_execute", before)


def test_a_token_is_verified_once_a_minute_but_revocation_is_immediate(api, gw, make_client):
    from freezegun import freeze_time

    credentials = make_client(scopes=("consent:read",))
    url = "/v1/subjects/visitor-cache/consents"
    with freeze_time("2026-11-30T10:00:00Z") as frozen:
        header = {"Authorization": "Bearer " + get_token(api, credentials).json["access_token"]}
        seen, stop = _statements(gw)
        try:
            assert api.get(url, headers=header).status_code == 200
            assert sum("from signing_keys" in q for q in seen) == 1  # verified: the key was read
            seen.clear()
            frozen.tick(timedelta(seconds=59))
            assert api.get(url, headers=header).status_code == 200
            assert not any("from signing_keys" in q for q in seen)  # remembered: no key lookup
            assert sum("from clients" in q for q in seen) == 1  # but the client row is read
            seen.clear()
            frozen.tick(timedelta(seconds=1))
            assert api.get(url, headers=header).status_code == 200
            assert sum("from signing_keys" in q for q in seen) == 1  # a minute on: verified again
        finally:
            stop()
        clients.revoke_client(gw, credentials["client_id"])
        r = api.get(url, headers=header)
    assert r.status_code == 401 and "revoked" in r.json["detail"]


def test_a_remembered_token_is_still_refused_at_its_expiry(api, gw, make_client):
    from freezegun import freeze_time

    credentials = make_client(scopes=("consent:read",))
    url = "/v1/subjects/visitor-cache/consents"
    with freeze_time("2026-11-30T10:00:00Z") as frozen:
        header = {"Authorization": "Bearer " + get_token(api, credentials).json["access_token"]}
        frozen.tick(timedelta(seconds=900 - 30))
        assert api.get(url, headers=header).status_code == 200  # verified 30 s before exp
        frozen.tick(timedelta(seconds=29))
        assert api.get(url, headers=header).status_code == 200  # remembered
        frozen.tick(timedelta(seconds=1))  # exp: the memory ends there, not a minute later
        r = api.get(url, headers=header)
    assert r.status_code == 401 and "expired" in r.json["detail"]
