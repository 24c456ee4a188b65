"""Headers, the issuer, token lifetimes and /metrics (both engines)."""

from __future__ import annotations

import re

import pytest

from gateway import create_app
from gateway.security import jwt
from gateway.services import demo
from gateway.services.auth import keys
from gateway.settings import Settings

BANNER_ORIGIN = "http://localhost"


@pytest.fixture
def app_config(app_config) -> dict:
    return {**app_config, "GATEWAY_DEMO_ORIGINS": BANNER_ORIGIN}


@pytest.fixture
def dpo(gw, make_client, token_for, auth):
    return auth(token_for(make_client(["audit:read", "consent:read", "subject:export", "decision:read"])))


def csp(response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    policy = response.headers["Content-Security-Policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
            for d in (part.strip() for part in policy.split(";")) if d}


# -- HTML pages ------------------------------------------------------------------------------


def test_the_demo_page_has_a_strict_policy_and_its_scripts_carry_the_nonce(client, gw):
    demo.setup(gw)
    page = client.get("/demo")
    assert page.status_code == 200
    policy = csp(page)
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert f"'nonce-{nonce}'" in policy["style-src"] and policy["object-src"] == "'none'"
    html = page.get_data(as_text=True)
    assert html.count(f'nonce="{nonce}"') == 2  # demo.js and the SDK, which gives it to its <style>
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    again = client.get("/demo")
    assert csp(again)["script-src"] != policy["script-src"]  # a new nonce per response


def test_the_console_allows_no_inline_script_and_no_framing(client):
    page = client.get("/console")
    policy = csp(page)
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["frame-src"] == "blob:"  # the Art. 30 report is shown from a blob: URL
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.get_data(as_text=True)


def test_the_art30_report_page_styles_only_with_its_nonce(client, dpo):
    page = client.get("/v1/reports/processing?format=html", headers=dpo)
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = csp(page)
    nonce = re.search(r"'nonce-([^']+)'", policy["style-src"]).group(1)
    html = page.get_data(as_text=True)
    assert f'<style nonce="{nonce}">' in html and html.count("<style") == 1 and "<script" not in html
    assert policy["frame-ancestors"] == "'none'" and "'unsafe-inline'" not in policy["style-src"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/v1/policy", "/v1/audit/public-key", "/v1/subjects/u-1/consents",
                                  "/v1/subjects/u-1/export", "/v1/audit/recent",
                                  "/v1/decisions/dec_x/explanation", "/v1/reports/processing"])
def test_every_v1_response_is_no_store_and_nosniff(client, dpo, path):
    response = client.get(path, headers=dpo)
    assert response.status_code in (200, 404), response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers  # JSON, not a page


def test_errors_are_no_store_and_nosniff_too(client):
    for response in (client.get("/v1/subjects/u-1/consents"), client.get("/nowhere")):
        assert response.status_code in (401, 404)
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_public_documents_keep_their_own_caching(client):
    assert client.get("/.well-known/jwks.json").headers["Cache-Control"] == "public, max-age=300"
    sdk = client.get("/sdk/consent.js")
    assert "max-age=3600" in sdk.headers["Cache-Control"]
    assert sdk.headers["X-Content-Type-Options"] == "nosniff"


# -- the issuer ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "attacker.test:8443", "localhost:1"])
def test_the_host_header_never_reaches_iss_or_the_metadata(client, make_client, host):
    credentials = make_client()
    meta = client.get("/.well-known/oauth-authorization-server", headers={"Host": host})
    assert meta.json["issuer"] == "http://localhost"
    assert meta.json["token_endpoint"] == "http://localhost/oauth/token"
    assert meta.json["jwks_uri"] == "http://localhost/.well-known/jwks.json"
    issued = client.post("/oauth/token", headers={"Host": host},
                         data={"grant_type": "client_credentials", **{
                             "client_id": credentials["client_id"],
                             "client_secret": credentials["client_secret"]}})
    assert issued.status_code == 200
    token = issued.json["access_token"]
    assert jwt.unverified(token)[1]["iss"] == "http://localhost"
    # and the token works whatever Host the next request names
    used = client.get("/v1/subjects/u-1/consents", headers={"Authorization": f"Bearer {token}",
                                                            "Host": "other.example"})
    assert used.status_code == 200


@pytest.mark.parametrize(("environ", "issuer"), [
    ({}, "http://127.0.0.1:8000"),
    ({"PORT": "9001"}, "http://127.0.0.1:9001"),
    ({"HOST": "0.0.0.0", "PORT": "8080"}, "http://127.0.0.1:8080"),
    ({"HOST": "::1"}, "http://[::1]:8000"),
    ({"GATEWAY_ISSUER": "https://consent.example/"}, "https://consent.example"),
    ({"GATEWAY_ISSUER": "https://consent.example", "GATEWAY_ENV": "production"}, "https://consent.example"),
])
def test_issuer_setting(environ, issuer):
    assert Settings.load(environ).issuer == issuer


@pytest.mark.parametrize(("environ", "message"), [
    ({"GATEWAY_ENV": "production"}, "GATEWAY_ISSUER is required"),
    ({"GATEWAY_ENV": "production", "GATEWAY_ISSUER": "http://consent.example"}, "https URL in production"),
    ({"GATEWAY_ISSUER": "consent.example"}, "http\\(s\\) URL"),
    ({"GATEWAY_ISSUER": "https://consent.example/?a=1"}, "without query"),
    ({"GATEWAY_ISSUER": "ftp://consent.example"}, "http\\(s\\) URL"),
])
def test_bad_issuers_refuse_to_start(environ, message):
    with pytest.raises(ValueError, match=message):
        Settings.load(environ)


def test_production_refuses_to_start_without_an_issuer(app_config):
    with pytest.raises(ValueError, match="GATEWAY_ISSUER is required"):
        create_app({**app_config, "GATEWAY_ENV": "production", "GATEWAY_ISSUER": ""})


# -- token lifetimes -------------------------------------------------------------------------


def signed(gw, credentials, **overrides) -> str:
    """A token signed with the gateway's own active key, as a key holder could sign anything."""
    key = keys.signer(gw)
    private = key.private_key
    now = int(gw.now().timestamp())
    claims = {"iss": "http://localhost", "sub": credentials["client_id"], "aud": "consent-gateway",
              "iat": now, "exp": now + gw.settings.token_ttl_seconds, "jti": jwt.new_jti(),
              "client_id": credentials["client_id"], "scope": " ".join(credentials["scopes"])}
    claims.update(overrides)
    return jwt.encode(claims, private_key=private, kid=key.kid, algorithm=key.algorithm)


def test_tokens_never_live_longer_than_the_configured_lifetime(client, gw, make_client, auth):
    credentials = make_client()
    now = int(gw.now().timestamp())
    ttl = gw.settings.token_ttl_seconds
    path = "/v1/subjects/u-1/consents"
    assert client.get(path, headers=auth(signed(gw, credentials))).status_code == 200
    assert client.get(path, headers=auth(signed(gw, credentials, exp=now + ttl + 20))).status_code == 200
    for overrides in ({"exp": now + 365 * 86400}, {"exp": now + ttl + 120},
                      {"iat": now - 86400, "exp": now + 60},   # old iat, stretched exp
                      {"iat": now + 3600, "exp": now + 3600 + ttl},  # issued in the future
                      {"iat": float(now)}):
        response = client.get(path, headers=auth(signed(gw, credentials, **overrides)))
        assert response.status_code == 401, overrides


# -- /metrics --------------------------------------------------------------------------------


@pytest.fixture
def metrics_app(app_config):
    made = []

    def make(**config):
        app = create_app({**app_config, **config})
        made.append(app)
        from contract import ValidatingClient

        return ValidatingClient(app, app.response_class)

    yield make
    for app in made:
        app.extensions["gateway"].db.dispose()


def test_metrics_are_open_in_development_without_a_token(client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert response.status_code == 200 and b"gateway_http_requests_total" in response.data


def test_metrics_need_the_token_when_one_is_set(metrics_app):
    api = metrics_app(GATEWAY_METRICS_TOKEN="scrape-me-0123456789")
    assert api.get("/metrics").status_code == 401
    for header in ("Bearer wrong", "Bearer scrape-me-012345678", "Basic scrape-me-0123456789", "Bearer"):
        response = api.get("/metrics", headers={"Authorization": header})
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
    ok = api.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"},
                 environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert ok.status_code == 200


PRODUCTION = {"GATEWAY_ENV": "production", "GATEWAY_ISSUER": "https://consent.example",
              "GATEWAY_DEMO": "false", "GATEWAY_AUDIT_SIGNING_KEY": None}


@pytest.mark.parametrize(("address", "status"), [("127.0.0.1", 200), ("::1", 200), ("203.0.113.5", 403),
                                                 ("10.0.0.1", 403)])
def test_production_without_a_token_answers_loopback_only(metrics_app, monkeypatch, address, status):
    monkeypatch.setattr("gateway._require_production_secrets", lambda gw: None)
    api = metrics_app(**{k: v for k, v in PRODUCTION.items() if v is not None})
    response = api.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status
