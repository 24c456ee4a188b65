"""The token endpoint cannot be used to lock clients out (RFC 9700): failures are throttled per
(client id, address) pair with growing delays, kept in the database; GATEWAY_TRUSTED_PROXIES
decides whether X-Forwarded-For names the address. Both engines."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from gateway import create_app

TOKEN = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}
HERE, ELSEWHERE = "198.51.100.10", "203.0.113.20"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def attempt(api, client_id: str, secret: str, address: str = HERE, **headers):
    return api.post(TOKEN, data=GRANT, headers={**basic(client_id, secret), **headers},
                    environ_base={"REMOTE_ADDR": address})


def wrong(api, credentials, address: str = HERE, **headers):
    return attempt(api, credentials["client_id"], "cs_wrong", address, **headers)


def right(api, credentials, address: str = HERE, **headers):
    return attempt(api, credentials["client_id"], credentials["client_secret"], address, **headers)


def throttle_rows(gw) -> list:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT pair, failures FROM token_throttles")).all()


def test_wrong_secrets_from_one_address_never_refuse_the_right_secret_from_another(api, gw, make_client):
    credentials = make_client()
    with freeze_time(START) as clock:
        for _ in range(10):
            response = wrong(api, credentials)
            if response.status_code == 429:  # locked: wait it out, as a patient attacker would
                clock.tick(int(response.headers["Retry-After"]))
                response = wrong(api, credentials)
            assert response.status_code == 401
        locked = right(api, credentials)  # the attacker's own address is locked now
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
        assert locked.mimetype == "application/problem+json"
        assert locked.headers["Cache-Control"] == "no-store"
        for _ in range(3):
            ok = right(api, credentials, ELSEWHERE)
            assert ok.status_code == 200, ok.get_data(as_text=True)
            assert ok.json["token_type"] == "Bearer"


def test_random_client_ids_from_one_address_do_not_lock_a_real_client(api, gw, make_client):
    credentials = make_client()
    with freeze_time(START):
        for _ in range(30):
            assert attempt(api, f"cli_{secrets.token_hex(8)}", "cs_guess").status_code == 401
        assert attempt(api, "", "").status_code == 401  # no client id at all
        assert right(api, credentials).status_code == 200  # the same address
        assert right(api, credentials, ELSEWHERE).status_code == 200
    assert len(throttle_rows(gw)) == 31  # each (id, address) pair on its own


def test_the_delay_doubles_with_every_failure_up_to_the_cap(api, gw, make_client):
    gw.settings = dataclasses.replace(gw.settings, token_free_failures=3, token_max_lock_seconds=20)
    credentials = make_client()
    locks = []
    with freeze_time(START) as clock:
        for _ in range(3):  # the free failures lock nothing
            assert wrong(api, credentials).status_code == 401
        assert throttle_rows(gw)[0][1] == 3 and right(api, credentials, ELSEWHERE).status_code == 200
        for _ in range(7):
            assert wrong(api, credentials).status_code == 401  # counts, and locks
            refused = wrong(api, credentials)  # during the lock: refused, not counted
            assert refused.status_code == 429
            locks.append(int(refused.headers["Retry-After"]))
            clock.tick(locks[-1] - 1)
            assert wrong(api, credentials).status_code == 429  # one second before the end
            clock.tick(1)
    assert locks == [1, 2, 4, 8, 16, 20, 20]
    assert [f for _, f in throttle_rows(gw)] == [10]


def test_a_success_clears_the_pair_and_old_failures_are_forgotten(api, gw, make_client):
    gw.settings = dataclasses.replace(gw.settings, token_free_failures=2)
    credentials = make_client()
    with freeze_time(START) as clock:
        for _ in range(3):
            wrong(api, credentials)
        assert right(api, credentials).status_code == 429
        clock.tick(2)
        assert right(api, credentials).status_code == 200
        assert throttle_rows(gw) == []
        for _ in range(2):
            assert wrong(api, credentials).status_code == 401
        assert right(api, credentials).status_code == 200  # two free failures again
        for _ in range(3):
            wrong(api, credentials)
        clock.tick(timedelta(days=1, seconds=5))
        assert wrong(api, credentials).status_code == 401  # a day later the count starts over
        assert [f for _, f in throttle_rows(gw)] == [1]


def test_only_keyed_hashes_are_stored(api, gw, make_client):
    credentials = make_client()
    with freeze_time(START):
        wrong(api, credentials)
    (pair, failures), = throttle_rows(gw)
    assert failures == 1 and len(pair) == 64
    assert credentials["client_id"] not in pair and HERE not in pair


def test_the_lock_holds_across_gateway_processes(app_config, api, gw, make_client):
    """Two apps on one database stand for two workers: a lock made through one holds in the other."""
    credentials = make_client()
    other = create_app(app_config)
    try:
        other_api = other.test_client()
        with freeze_time(START):
            for _ in range(gw.settings.token_free_failures + 1):
                wrong(api, credentials)
            assert right(other_api, credentials).status_code == 429
            assert right(other_api, credentials, ELSEWHERE).status_code == 200
    finally:
        other.extensions["gateway"].db.dispose()


# -- GATEWAY_TRUSTED_PROXIES -----------------------------------------------------------------


@pytest.fixture
def proxied(app_config):
    """proxied(hops) -> (test client, gateway) of an app with GATEWAY_TRUSTED_PROXIES=hops."""
    made = []

    def make(hops: int):
        app = create_app({**app_config, "GATEWAY_TRUSTED_PROXIES": str(hops)})
        made.append(app)
        return app.test_client(), app.extensions["gateway"]

    yield make
    for app in made:
        app.extensions["gateway"].db.dispose()


def test_without_trusted_proxies_x_forwarded_for_is_ignored(proxied):
    from gateway.services.auth import clients

    api, gw = proxied(0)
    credentials = clients.create_client(gw, "backend", ["consent:read"])
    with freeze_time(START):
        for i in range(gw.settings.token_free_failures + 1):
            # a different forged header each time: still one address, so the pair locks
            assert wrong(api, credentials, HERE, **{"X-Forwarded-For": f"192.0.2.{i}"}).status_code == 401
        refused = right(api, credentials, HERE, **{"X-Forwarded-For": "192.0.2.200"})
        assert refused.status_code == 429


def test_with_one_trusted_proxy_x_forwarded_for_names_the_client(proxied):
    from gateway.services.auth import clients

    api, gw = proxied(1)
    credentials = clients.create_client(gw, "backend", ["consent:read"])
    proxy = "10.0.0.2"  # every request arrives from the proxy
    with freeze_time(START):
        for _ in range(gw.settings.token_free_failures + 1):
            assert wrong(api, credentials, proxy, **{"X-Forwarded-For": HERE}).status_code == 401
        assert right(api, credentials, proxy, **{"X-Forwarded-For": HERE}).status_code == 429
        ok = right(api, credentials, proxy, **{"X-Forwarded-For": ELSEWHERE})
        assert ok.status_code == 200
        # the proxy appends the address it saw: only the last hop is believed
        spoofed = right(api, credentials, proxy, **{"X-Forwarded-For": f"{ELSEWHERE}, {HERE}"})
        assert spoofed.status_code == 429


def test_trusted_proxies_must_be_a_small_whole_number(app_config):
    for bad in ("-1", "two", "11", "1.5"):
        with pytest.raises(ValueError, match="GATEWAY_TRUSTED_PROXIES"):
            create_app({**app_config, "GATEWAY_TRUSTED_PROXIES": bad})
