"""GATEWAY_RATE_LIMITS: banner calls per (limit, property, address) in fixed windows kept in the
database, so that every gateway process counts the same; off unless configured. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from contract import ValidatingClient
from freezegun import freeze_time

from gateway import create_app
from gateway.services import properties

START = datetime(2026, 12, 1, 9, 0, 10, tzinfo=UTC)  # 10 s into a minute
HERE, ELSEWHERE = "198.51.100.10", "203.0.113.20"
STATE = "/v1/subjects/u-1/consents"


@pytest.fixture
def limited(app_config):
    """limited(setting) -> (client, gateway, property key) of an app with GATEWAY_RATE_LIMITS."""
    made = []

    def make(setting: str | None, config: dict | None = None):
        app = create_app({**app_config, **({"GATEWAY_RATE_LIMITS": setting} if setting else {}),
                          **(config or {})})
        made.append(app)
        gw = app.extensions["gateway"]
        key = properties.create_property(gw, "shop", ["http://localhost"])["property_key"]
        return ValidatingClient(app, app.response_class), gw, key

    yield make
    for app in made:
        app.extensions["gateway"].db.dispose()


def get_state(api, key: str, address: str = HERE, **headers):
    return api.get(STATE, headers={"X-Property-Key": key, **headers}, environ_base={"REMOTE_ADDR": address})


def test_no_limit_unless_configured(limited):
    api, gw, key = limited(None)
    assert gw.settings.rate_limits == {}
    with freeze_time(START):
        assert all(get_state(api, key).status_code == 200 for _ in range(40))
    with gw.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM rate_counters")).scalar_one() == 0


def test_past_the_limit_a_banner_call_is_429_until_the_window_ends(limited):
    api, gw, key = limited("state=3/minute;consents=20/minute")
    with freeze_time(START) as clock:
        for _ in range(3):
            assert get_state(api, key).status_code == 200
        refused = get_state(api, key)
        assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
        assert refused.headers["Retry-After"] == "50"
        assert refused.json["type"] == "/problems/rate-limited"
        assert "state: 3/minute" in refused.json["detail"]
        assert get_state(api, key, ELSEWHERE).status_code == 200  # per address
        other = properties.create_property(gw, "blog", ["http://localhost"])["property_key"]
        assert get_state(api, other).status_code == 200  # per property
        clock.tick(49)
        assert get_state(api, key).headers["Retry-After"] == "1"
        clock.tick(1)
        assert get_state(api, key).status_code == 200  # a new window


def test_every_banner_endpoint_counts_against_its_own_limit(limited):
    api, gw, key = limited("notices=1/minute;consents=1/minute;state=1/minute;withdraw=1/minute;"
                           "explanations=1/minute;visitors=1/minute;outcomes=1/minute")
    banner = {"X-Property-Key": key}
    calls = [
        lambda: api.post("/v1/notices/served", headers=banner,
                         json={"subject_id": "u-1", "purposes": ["ads"], "locale": "en"}),
        lambda: api.post("/v1/consents", headers=banner,
                         json={"subject_id": "u-1", "purposes": {"ads": "denied"}}),
        lambda: api.get(STATE, headers=banner),
        lambda: api.delete(STATE, headers=banner),
        lambda: api.get("/v1/decisions/dec_unknown/explanation", headers=banner),
    ]
    with freeze_time(START):
        for call in calls:
            first, second = call(), call()
            assert first.status_code in (200, 201, 404), first.get_data(as_text=True)
            assert second.status_code == 429 and int(second.headers["Retry-After"]) == 50


def test_services_and_unauthenticated_calls_are_not_counted(limited):
    api, gw, key = limited("state=1/minute")
    from gateway.services.auth import clients, tokens

    made = clients.create_client(gw, "backend", ["consent:read"])
    with freeze_time(START):
        token = tokens.issue_token(gw, grant_type="client_credentials", client_id=made["client_id"],
                                    client_secret=made["client_secret"], scope=None,
                                    remote_addr=HERE)["access_token"]
        for _ in range(5):
            assert api.get(STATE, headers={"Authorization": f"Bearer {token}"},
                           environ_base={"REMOTE_ADDR": HERE}).status_code == 200
            assert get_state(api, "pk_not_a_key").status_code == 401
        assert get_state(api, key).status_code == 200  # the banner's first call in the window


def test_counters_hold_across_gateway_processes(limited, app_config):
    api, gw, key = limited("state=4/minute")
    other = create_app({**app_config, "GATEWAY_RATE_LIMITS": "state=4/minute"})
    try:
        other_api = ValidatingClient(other, other.response_class)
        with freeze_time(START):
            for target in (api, other_api, api, other_api):
                assert get_state(target, key).status_code == 200
            assert get_state(other_api, key).status_code == 429
            assert get_state(api, key).status_code == 429
        with gw.db.engine.connect() as conn:
            buckets = conn.execute(sa.text("SELECT bucket, count FROM rate_counters")).all()
        assert [c for _, c in buckets] == [6]
        assert all(HERE not in b and len(b) == 64 for b, _ in buckets)  # keyed hashes only
    finally:
        other.extensions["gateway"].db.dispose()


def test_the_address_comes_from_x_forwarded_for_only_behind_trusted_proxies(limited):
    api, _, key = limited("state=1/minute")
    with freeze_time(START):
        assert get_state(api, key, HERE, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 200
        assert get_state(api, key, HERE, **{"X-Forwarded-For": "192.0.2.2"}).status_code == 429
    api, _, key = limited("state=1/minute", {"GATEWAY_TRUSTED_PROXIES": "1"})
    with freeze_time(START):
        assert get_state(api, key, HERE, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 200
        assert get_state(api, key, HERE, **{"X-Forwarded-For": "192.0.2.2"}).status_code == 200
        assert get_state(api, key, HERE, **{"X-Forwarded-For": "192.0.2.1"}).status_code == 429


def test_expired_windows_are_swept(limited):
    api, gw, key = limited("state=5/second")
    with freeze_time(START) as clock:
        get_state(api, key)
        clock.tick(120)
        gw.caches.rate_sweep_at = 0.0
        get_state(api, key)
    with gw.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM rate_counters")).scalar_one() == 1


@pytest.mark.parametrize("setting", ["consents=20", "profiles=1/minute", "consents=1/week",
                                     "consents=1/minute;consents=2/minute"])
def test_a_bad_setting_refuses_to_start(app_config, setting):
    with pytest.raises(ValueError, match="GATEWAY_RATE_LIMITS: "):
        create_app({**app_config, "GATEWAY_RATE_LIMITS": setting})
