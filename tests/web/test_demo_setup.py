"""The demo never mints credentials from a request (both databases).

Its property comes from `flask --app gateway demo setup` for GATEWAY_DEMO_ORIGINS; `/demo`
only reads the kept key, whatever `Host` a request sends. GATEWAY_DEMO is on in development,
off in production, and the gateway refuses to start in production with it on.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from gateway.services import demo, properties
from gateway.settings import Settings

FOREIGN_HOSTS = ["evil.example", "attacker.test:8443", "127.0.0.2:8000", "localhost:1",
                 "[::1]:9000", "xn--80ak6aa92e.com", "shop.example"]


@pytest.fixture
def app_config(app_config) -> dict:
    return {**app_config, "GATEWAY_DEMO_ORIGINS": "http://localhost"}


def count_properties(gw) -> int:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM properties")).scalar_one()


def test_foreign_host_headers_create_no_property(client, gw):
    demo.setup(gw)
    before = count_properties(gw)
    keys = set()
    for host in FOREIGN_HOSTS:
        r = client.get("/demo", headers={"Host": host})
        assert r.status_code == 200, host
        html = r.get_data(as_text=True)
        assert host.split(":")[0] not in html, host  # nothing of the Host header in the page
        keys.add(html.split('data-property-key="')[1].split('"')[0])
    assert count_properties(gw) == before == 1
    assert len(keys) == 1
    [prop] = properties.list_properties(gw)
    assert prop["origins"] == ["http://localhost"]


def test_without_setup_the_page_is_a_404_and_creates_nothing(client, gw):
    for host in FOREIGN_HOSTS + ["localhost"]:
        r = client.get("/demo", headers={"Host": host})
        assert r.status_code == 404
        assert r.mimetype == "application/problem+json"
        assert "demo setup" in r.json["detail"]
    assert count_properties(gw) == 0


def test_the_demo_routes_make_no_property_either(client, gw):
    subject = "demo-42"
    assert client.post("/demo/hero", json={"subject_id": subject},
                       headers={"Host": "evil.example"}).status_code == 200
    assert client.post("/demo/profile", json={"subject_id": subject, "browsing_categories": ["outdoor"]},
                       headers={"Host": "evil.example"}).status_code == 200
    assert count_properties(gw) == 0


def test_cli_demo_setup_is_idempotent(runner, gw):
    first = runner.invoke(args=["demo", "setup"])
    assert first.exit_code == 0, first.output
    made = json.loads(first.output)
    assert made["created"] is True and made["origins"] == ["http://localhost"]
    assert "property_key" not in made
    again = json.loads(runner.invoke(args=["demo", "setup"]).output)
    assert again["created"] is False and again["property_id"] == made["property_id"]
    assert count_properties(gw) == 1


def test_cli_demo_setup_refuses_bad_origins(app_config):
    from gateway import create_app

    app = create_app({**app_config, "GATEWAY_DEMO_ORIGINS": "not an origin, https://ok.example/path"})
    try:
        result = app.test_cli_runner().invoke(args=["demo", "setup"])
        assert result.exit_code != 0
        assert "GATEWAY_DEMO_ORIGINS" in result.output and "Traceback" not in result.output
        assert count_properties(app.extensions["gateway"]) == 0
    finally:
        app.extensions["gateway"].db.dispose()


def test_cli_demo_setup_with_the_demo_off_does_nothing(app_config):
    from gateway import create_app

    app = create_app({**app_config, "GATEWAY_DEMO": "false"})
    try:
        result = app.test_cli_runner().invoke(args=["demo", "setup"])
        assert result.exit_code == 0 and "switched off" in result.output
        assert count_properties(app.extensions["gateway"]) == 0
    finally:
        app.extensions["gateway"].db.dispose()


@pytest.mark.parametrize(("environ", "demo_on", "origins"), [
    ({}, True, ("http://127.0.0.1:8000", "http://localhost:8000")),
    ({"PORT": "9001"}, True, ("http://127.0.0.1:9001", "http://localhost:9001")),
    ({"GATEWAY_DEMO": "false"}, False, ("http://127.0.0.1:8000", "http://localhost:8000")),
    ({"GATEWAY_DEMO": "off"}, False, ("http://127.0.0.1:8000", "http://localhost:8000")),
    ({"GATEWAY_DEMO_ORIGINS": " https://demo.example ,http://127.0.0.1:8000,"}, True,
     ("https://demo.example", "http://127.0.0.1:8000")),
    ({"GATEWAY_ENV": "production", "GATEWAY_ISSUER": "https://consent.example"}, False,
     ("http://127.0.0.1:8000", "http://localhost:8000")),
    ({"GATEWAY_ENV": "production", "GATEWAY_ISSUER": "https://consent.example", "GATEWAY_DEMO": "false"},
     False,
     ("http://127.0.0.1:8000", "http://localhost:8000")),
])
def test_demo_settings(environ, demo_on, origins):
    settings = Settings.load(environ)
    assert (settings.demo, settings.demo_origins) == (demo_on, origins)


@pytest.mark.parametrize("value", ["true", "1", "yes", "on"])
def test_production_refuses_to_start_with_the_demo_on(app_config, value):
    from gateway import create_app

    with pytest.raises(ValueError, match="GATEWAY_DEMO"):
        create_app({**app_config, "GATEWAY_ENV": "production", "GATEWAY_DEMO": value})
