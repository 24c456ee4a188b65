"""/readyz with the database really unreachable (nothing patched), and /metrics labels by route.

Unreachable: a PostgreSQL URL to a port on 127.0.0.1 where nothing listens, and a SQLite file
whose directory has vanished. /readyz answers 503 with `database` unreachable, and says ready
again once the database is back. /metrics: two different subject ids give one label, the
route template, and neither id appears anywhere in the metrics.
"""

from __future__ import annotations

import re
import shutil
import socket

import pytest

from gateway import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens there


@pytest.fixture
def make_client():
    made = []

    def make(config):
        from contract import ValidatingClient

        app = create_app(config)
        made.append(app)
        app.test_client_class = ValidatingClient
        return app.test_client()

    yield make
    for app in made:
        app.extensions["gateway"].db.dispose()


def assert_not_ready(response):
    assert response.status_code == 503, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("unreachable (")
    assert body["checks"]["migrations"] == "unknown"


def test_readyz_with_postgresql_on_a_closed_port(app_config, make_client):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test?connect_timeout=2"
    client = make_client({**app_config, "DATABASE_URL": url})
    assert_not_ready(client.get("/readyz"))
    assert client.get("/healthz").status_code == 200  # alive, only not ready


def test_readyz_with_a_sqlite_file_whose_directory_vanished(app_config, sqlite_template, tmp_path,
                                                             make_client):
    home = tmp_path / "dbdir"
    home.mkdir()
    shutil.copyfile(sqlite_template, home / "gateway.db")
    config = {**app_config, "DATABASE_URL": f"sqlite:///{home / 'gateway.db'}"}
    client = make_client(config)
    assert client.get("/readyz").status_code == 200

    gw = client.application.extensions["gateway"]
    shutil.rmtree(home)
    gw.db.dispose()  # the pooled connection held the old file open; a new one must find it
    assert_not_ready(client.get("/readyz"))

    home.mkdir()
    shutil.copyfile(sqlite_template, home / "gateway.db")  # back: ready again, without a restart
    assert client.get("/readyz").status_code == 200


def test_readyz_on_a_fresh_start_without_the_sqlite_directory(app_config, tmp_path, make_client):
    missing = tmp_path / "gone" / "gateway.db"
    client = make_client({**app_config, "DATABASE_URL": f"sqlite:///{missing}"})
    shutil.rmtree(missing.parent)  # make_engine creates the directory; take it away again
    assert_not_ready(client.get("/readyz"))


# --- /metrics ---------------------------------------------------------------------------------

ROUTE = "/v1/subjects/<path:subject_id>/consents"


def _samples(text: str, name: str) -> dict[str, float]:
    """{label set: value} of one metric family's samples."""
    out = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match:
            out[match.group(1)] = float(match.group(2))
    return out


def test_metrics_label_by_route_template_never_by_path(client, banner):
    ids = ["alice-7f3a9c", "bob-19e44d"]
    for subject in ids:
        assert client.get(f"/v1/subjects/{subject}/consents", headers=banner).status_code == 200
    assert client.get("/v1/no-such-thing/carol-55aa01", headers=banner).status_code == 404  # unmatched
    text = client.get("/metrics").get_data(as_text=True)

    counts = _samples(text, "gateway_http_requests_total")
    assert counts[f'method="GET",route="{ROUTE}",status="200"'] == 2.0  # one label for both ids
    assert counts['method="GET",route="(unmatched)",status="404"'] == 1.0
    latency = _samples(text, "gateway_http_request_duration_seconds_count")
    assert latency[f'method="GET",route="{ROUTE}"'] == 2.0
    for leaked in [*ids, "carol-55aa01", "no-such-thing"]:
        assert leaked not in text
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes and all(r == "(unmatched)" or r.startswith("/") for r in routes)
    assert not [r for r in routes if "alice" in r or "bob" in r]
