"""The browser side's routes through the contract-checking client, on both databases.

The SDK script, the demo shop (its property, its hero decision, its demo-only profile
writes, switched off by GATEWAY_DEMO=false; its property made by `demo setup` for
GATEWAY_DEMO_ORIGINS, here the test client's http://localhost), the console page, and the console's two
JSON endpoints: consent rates per purpose and day, and the latest audit events.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.core.actor import Actor
from gateway.services import audit, consent, demo, properties
from gateway.services.auth import clients, tokens
from gateway.services.context import utcnow

ISSUER = "http://localhost"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BANNER = Actor(kind="property", id="prop_test")
KEY_IN_PAGE = re.compile(r'data-property-key="(pk_[^"]+)"')


@pytest.fixture
def token(gw):
    """token(scopes) -> an access token of a new client with those scopes."""

    def make(scopes=("audit:read",)):
        creds = clients.create_client(gw, "dpo", list(scopes))
        issued = tokens.issue_token(gw, grant_type="client_credentials", client_id=creds["client_id"],
                                     client_secret=creds["client_secret"], scope=None,
                                     remote_addr="127.0.0.1")
        return {"Authorization": f"Bearer {issued['access_token']}"}, creds["client_id"]

    return make


@pytest.fixture
def dpo(token):
    return token(("audit:read",))[0]


def at(gw, when: datetime) -> None:
    gw.clock = lambda: when


def choose(gw, subject: str, **purposes) -> dict:
    receipt, _ = consent.record_consent(gw, BANNER, subject_id=subject, purposes=purposes)
    return receipt


@pytest.fixture
def app_config(app_config) -> dict:
    """The demo's origin is the test client's."""
    return {**app_config, "GATEWAY_DEMO_ORIGINS": "http://localhost"}


def demo_key(client, path="/demo") -> str:
    """The key in the demo page, after `demo setup` (which keeps an existing property)."""
    demo.setup(client.application.extensions["gateway"])
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return KEY_IN_PAGE.search(page.get_data(as_text=True)).group(1)


# -- the SDK ---------------------------------------------------------------------------------


def test_the_sdk_is_served_as_javascript_with_a_cache_header(client):
    r = client.get("/sdk/consent.js")
    assert r.status_code == 200
    assert r.mimetype == "application/javascript"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    cache = r.headers["Cache-Control"]
    assert "public" in cache and "max-age=3600" in cache
    text = r.get_data(as_text=True)
    assert "window.ConsentGateway = api" in text
    for ui in ("Accept all", "Alle ablehnen", "Godta alle", "Warum sehe ich das?", "Hvorfor ser jeg dette?"):
        assert ui in text
    again = client.get("/sdk/consent.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_the_sdk_is_plain_es2017(client):
    """No build step: nothing newer than ES2017 (no ?. or ??, no object spread, no imports)."""
    text = client.get("/sdk/consent.js").get_data(as_text=True)
    code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)  # string literals may say anything
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", code, flags=re.S)
    assert "?." not in code and "??" not in code
    assert not re.search(r"\{\s*\.\.\.|,\s*\.\.\.\w", code)
    assert not re.search(r"^\s*(import|export)\s", code, flags=re.M)


# -- the demo shop ---------------------------------------------------------------------------


def test_the_demo_page_carries_the_one_script_tag(client):
    demo.setup(client.application.extensions["gateway"])
    r = client.get("/demo?lang=de")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert 'src="/sdk/consent.js"' in html and "data-gateway" not in html  # nothing from Host
    assert KEY_IN_PAGE.search(html)
    assert "/static/demo/demo.js" in html
    assert '<html lang="nb">' in client.get("/demo?lang=nb").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/demo?lang=xx").get_data(as_text=True)
    assert '<html lang="de">' in client.get("/demo", headers={"Accept-Language": "de-AT,de;q=0.9"}).get_data(
        as_text=True)


def test_the_demo_property_is_created_once(client, gw):
    first, second = demo_key(client), demo_key(client)
    assert first == second
    demos = [p for p in properties.list_properties(gw) if p["name"] == demo.NAME]
    assert len(demos) == 1
    assert demos[0]["origins"] == ["http://localhost"]
    key_file = gw.settings.instance_dir / demo.KEY_FILE
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o077 == 0


def test_the_demo_property_survives_a_name_clash_and_a_lost_key(client, gw, banner):
    """The banner fixture made another "Demo shop" (whose key is only stored hashed)."""
    first = demo_key(client)
    (gw.settings.instance_dir / demo.KEY_FILE).unlink()
    assert client.get("/demo").status_code == 404  # the page never makes a new one
    second = demo_key(client)
    assert second != first
    assert demo_key(client) == second


def test_new_demo_origins_get_a_new_property_at_setup(app, app_config, gw):
    from contract import ValidatingClient

    from gateway import create_app

    first = demo_key(ValidatingClient(app, app.response_class))
    other = create_app({**app_config, "GATEWAY_DEMO_ORIGINS": "http://shop.test:8080, http://localhost"})
    try:
        made = demo.setup(other.extensions["gateway"])
        assert made["created"] is True
        assert made["origins"] == ["http://shop.test:8080", "http://localhost"]
        second = demo_key(ValidatingClient(other, other.response_class), "http://shop.test:8080/demo")
        assert second != first
        properties.authenticate(gw, second, "http://shop.test:8080")
        assert demo.setup(other.extensions["gateway"])["created"] is False
    finally:
        other.extensions["gateway"].db.dispose()


def test_the_demo_key_works_for_the_banner_calls_of_its_origin(client):
    key = demo_key(client)
    headers = {"X-Property-Key": key, "Origin": "http://localhost"}
    r = client.post("/v1/consents", headers=headers,
                    json={"subject_id": "demo-1", "purposes": {"personalization": "granted"}})
    assert r.status_code == 201
    assert client.post("/v1/consents", headers={**headers, "Origin": "https://evil.example"},
                       json={"subject_id": "demo-1", "purposes": {"ads": "granted"}}).status_code == 403


def test_the_hero_is_personalized_only_with_consent_and_a_profile(client, gw):
    key = demo_key(client)
    banner = {"X-Property-Key": key, "Origin": "http://localhost"}
    subject = "demo-5b0f6a1c-2d7e-4c55-9a53-0c8f1e0f4b1d"
    hero = client.post("/demo/hero", json={"subject_id": subject, "locale": "de"})
    assert hero.status_code == 200
    assert (hero.json["personalized"], hero.json["content"]["id"]) == (False, "generic-hero")
    r = client.post("/demo/profile",
                    json={"subject_id": subject, "browsing_categories": ["outdoor", "outdoor"]})
    assert r.status_code == 200
    assert r.json["updated"] == ["browsing_categories"]
    assert client.post("/demo/hero", json={"subject_id": subject}).json["personalized"] is False
    client.post("/v1/consents", headers=banner,
                json={"subject_id": subject, "purposes": {"personalization": "granted"}})
    hero = client.post("/demo/hero", json={"subject_id": subject, "locale": "de"})
    assert (hero.json["personalized"], hero.json["content"]["id"]) == (True, "outdoor-jackets")
    why = client.get(f"/v1/decisions/{hero.json['decision_id']}/explanation?locale=de", headers=banner)
    assert why.status_code == 200
    assert why.json["summary"].startswith("Sie sehen Outdoor-Jacken")
    client.delete(f"/v1/subjects/{subject}/consents", headers=banner)
    assert client.post("/demo/hero", json={"subject_id": subject}).json["content"]["id"] == "generic-hero"
    cleared = client.post("/demo/profile", json={"subject_id": subject, "browsing_categories": None})
    assert cleared.json["removed"] == ["browsing_categories"]
    with gw.db.engine.connect() as conn:
        actors = set(conn.execute(sa.text("SELECT DISTINCT actor FROM audit_events WHERE type IN "
                                          "('decision.made', 'profile.updated')")).scalars())
    assert actors == {"demo"}


@pytest.mark.parametrize("body", [
    {"subject_id": "u-1"},                             # not a demo subject: real visitors are out of reach
    {"subject_id": "demo-"},
    {"subject_id": "demo-x", "locale": "no locale"},
    {"subject_id": "demo-x", "extra": 1},
    {},
])
def test_the_hero_refuses_what_is_not_a_demo_request(client, body):
    r = client.post("/demo/hero", json=body)
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"


@pytest.mark.parametrize("body", [
    {"subject_id": "u-1", "browsing_categories": ["outdoor"]},
    {"subject_id": "demo-x", "browsing_categories": ["Outdoor Stuff"]},
    {"subject_id": "demo-x", "browsing_categories": ["a"] * 11},
    {"subject_id": "demo-x"},
    {"subject_id": "demo-x", "browsing_categories": ["outdoor"], "age_range": "25-34"},
])
def test_the_profile_route_writes_only_demo_interests(client, body):
    assert client.post("/demo/profile", json=body).status_code == 422


def test_demo_bodies_must_be_json(client):
    assert client.post("/demo/hero", data="subject_id=demo-x",
                       content_type="application/x-www-form-urlencoded").status_code == 415
    assert client.post("/demo/profile", data="{nope", content_type="application/json").status_code == 400


def test_the_demo_can_be_switched_off(app_config):
    from contract import ValidatingClient

    from gateway import create_app

    off = create_app({**app_config, "GATEWAY_DEMO": "false"})
    try:
        http = ValidatingClient(off, off.response_class)
        assert http.get("/demo").status_code == 404
        assert http.post("/demo/hero", json={"subject_id": "demo-x"}).status_code == 404
        assert http.post("/demo/profile", json={"subject_id": "demo-x", "browsing_categories": None}
                         ).status_code == 404
        assert http.get("/sdk/consent.js").status_code == 200
        assert http.get("/console").status_code == 200
        assert properties.list_properties(off.extensions["gateway"]) == []
    finally:
        off.extensions["gateway"].db.dispose()


# -- the console ------------------------------------------------------------------------------


def test_the_console_page_is_static_and_keeps_no_token(client):
    r = client.get("/console")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert 'id="sign-in-form"' in html and "/static/console/console.js" in html
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
    script = client.get("/static/console/console.js").get_data(as_text=True)
    assert "localStorage" not in script and "sessionStorage" not in script and "document.cookie" not in script
    assert "client_secret" in script and "/oauth/token" in script


# -- consent rates ------------------------------------------------------------------------------


def test_consent_rates_count_choices_per_purpose_and_utc_day(client, gw, token):
    at(gw, T0 - timedelta(days=40))
    choose(gw, "old", personalization="granted")  # outside the window
    at(gw, datetime(2026, 11, 18, 23, 59, 59, tzinfo=UTC))
    choose(gw, "a", personalization="granted", ads="denied")
    choose(gw, "b", personalization="denied", ads="denied", analytics="denied")
    at(gw, datetime(2026, 11, 19, 0, 0, 0, tzinfo=UTC))
    choose(gw, "c", personalization="granted", ads="granted")
    at(gw, T0)
    choose(gw, "a", personalization="denied")  # a withdrawal counts as denied
    choose(gw, "d", personalization="granted")
    dpo, _ = token()  # issued "at T0", like everything else here
    r = client.get("/v1/reports/consent-rates?days=30", headers=dpo)
    assert r.status_code == 200, r.json
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json
    assert (body["days"], body["since"], body["until"]) == (30, "2026-10-22", "2026-11-20")
    by = {p["purpose"]: p for p in body["purposes"]}
    assert list(by) == ["personalization", "ads", "health_offers", "analytics"]  # no contract purpose
    per = {pt["date"]: (pt["granted"], pt["denied"], pt["rate"]) for pt in by["personalization"]["series"]}
    assert len(per) == 30
    assert per["2026-11-18"] == (1, 1, 0.5)
    assert per["2026-11-19"] == (1, 0, 1.0)
    assert per["2026-11-20"] == (1, 1, 0.5)
    assert per["2026-11-17"] == (0, 0, None)
    assert (by["personalization"]["granted"], by["personalization"]["denied"]) == (3, 2)
    assert by["personalization"]["rate"] == 0.6
    assert (by["ads"]["granted"], by["ads"]["denied"], by["ads"]["rate"]) == (1, 2, 0.3333)
    assert (by["analytics"]["legal_basis"], by["analytics"]["denied"]) == ("legitimate_interest", 1)
    assert by["health_offers"]["rate"] is None and by["health_offers"]["total"] == 0
    today = client.get("/v1/reports/consent-rates?days=1", headers=dpo).json
    assert [p["date"] for p in today["purposes"][0]["series"]] == ["2026-11-20"]
    assert today["purposes"][0]["total"] == 2
    gw.clock = utcnow


def test_consent_rates_default_to_thirty_days(client, dpo):
    body = client.get("/v1/reports/consent-rates", headers=dpo).json
    assert body["days"] == 30 and all(len(p["series"]) == 30 for p in body["purposes"])


@pytest.mark.parametrize("days", ["0", "367", "abc", "1.5", "-3"])
def test_consent_rates_refuse_a_bad_window(client, dpo, days):
    r = client.get(f"/v1/reports/consent-rates?days={days}", headers=dpo)
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "days"


# -- recent audit events ------------------------------------------------------------------------


RAW = ("raw-subject-7f3a9c", "raw-subject-0d1e2f")


def test_recent_events_are_newest_first_with_pseudonyms_only(client, gw, dpo):
    at(gw, T0)
    choose(gw, RAW[0], personalization="granted")
    at(gw, T0 + timedelta(seconds=1))
    choose(gw, RAW[1], ads="denied")
    at(gw, T0 + timedelta(seconds=2))
    properties.create_property(gw, "Another shop", ["https://other.example"])
    gw.clock = utcnow
    r = client.get("/v1/audit/recent?type=consent.recorded,property.created", headers=dpo)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    events = r.json["events"]
    assert [e["type"] for e in events] == ["property.created", "consent.recorded", "consent.recorded"]
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True)
    assert events[1]["subject"] == gw.pseudonymize(RAW[1])
    assert events[1]["data"]["purpose"] == "ads"
    everything = client.get("/v1/audit/recent?limit=500", headers=dpo).get_data(as_text=True)
    assert gw.pseudonymize(RAW[0]) in everything
    assert not any(raw in everything for raw in RAW)


def test_recent_events_include_unsealed_and_sealed_ones(client, gw, dpo):
    choose(gw, RAW[0], personalization="granted")
    pending = client.get("/v1/audit/recent?type=consent.recorded", headers=dpo).json["events"]
    assert pending[0]["sealed"] is False and pending[0]["seq"] is None and pending[0]["hash"] is None
    audit.seal(gw)
    sealed = client.get("/v1/audit/recent?type=consent.recorded", headers=dpo).json["events"]
    assert sealed[0]["sealed"] is True and isinstance(sealed[0]["seq"], int) and len(sealed[0]["hash"]) == 64
    assert sealed[0]["id"] == pending[0]["id"]


def test_recent_events_filter_by_type_subject_and_limit(client, gw, dpo):
    choose(gw, RAW[0], personalization="granted", ads="denied")
    choose(gw, RAW[1], ads="granted")
    consent.serve_notice(gw, BANNER, subject_id=RAW[1], purposes=["ads"], locale="en")
    properties.create_property(gw, "Another shop", ["https://other.example"])

    def get(query):
        r = client.get(f"/v1/audit/recent?{query}", headers=dpo)
        assert r.status_code == 200, r.json
        return r.json["events"]

    assert {e["type"] for e in get("type=consent.recorded")} == {"consent.recorded"}
    assert len(get("type=consent.recorded")) == 3
    both = get("type=consent.recorded,notice.served")
    assert {e["type"] for e in both} == {"consent.recorded", "notice.served"} and len(both) == 4
    assert len(get("type=consent.recorded&type=property.created")) == 4
    mine = get(f"subject_id={RAW[1]}")
    assert {e["subject"] for e in mine} == {gw.pseudonymize(RAW[1])}
    assert sorted(e["type"] for e in mine) == ["consent.recorded", "notice.served"]
    assert get("subject_id=nobody") == []
    two = client.get("/v1/audit/recent?limit=2", headers=dpo).json
    assert (two["count"], two["limit"], len(two["events"])) == (2, 2, 2)
    assert two["events"][0]["type"] == "property.created"
    assert len(get("limit=500")) == len(get("limit=499"))


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "type=Consent%20Recorded",
                                   "type=" + "a" * 65, "subject_id=" + "x" * 257])
def test_recent_events_refuse_bad_filters(client, dpo, query):
    r = client.get(f"/v1/audit/recent?{query}", headers=dpo)
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"


# -- who may read them ----------------------------------------------------------------------------

PROTECTED = ["/v1/reports/consent-rates", "/v1/audit/recent"]


@pytest.mark.parametrize("path", PROTECTED)
def test_the_console_data_needs_a_token(client, path):
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


@pytest.mark.parametrize("path", PROTECTED)
def test_the_console_data_is_not_for_banners(client, banner, path):
    assert client.get(path, headers=banner).status_code == 401


@pytest.mark.parametrize("path", PROTECTED)
def test_the_console_data_needs_audit_read(client, gw, token, path):
    headers, client_id = token(("consent:read", "subject:export"))
    r = client.get(path, headers=headers)
    assert r.status_code == 403
    with gw.db.engine.connect() as conn:
        denied = conn.execute(sa.text("SELECT data FROM audit_events WHERE type = 'access.denied' "
                                      "AND actor = :a"), {"a": client_id}).scalars().all()
    assert [d if isinstance(d, dict) else json.loads(d) for d in denied] == [
        {"reason": "scope", "scope": "audit:read"}]


def test_the_routes_declare_their_scope(app):
    views = app.view_functions
    assert views["web.consent_rates"].required_scope == "audit:read"
    assert views["web.recent_audit"].required_scope == "audit:read"
    for public in ("web.sdk", "web.demo_page", "web.demo_hero", "web.demo_profile", "web.console_page"):
        assert not hasattr(views[public], "required_scope")
