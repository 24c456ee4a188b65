"""A property key works only from its own origins: A's key from B's allowed origin is refused.

For every banner endpoint (every route that accepts `X-Property-Key`): property A's key
with A's origin works, with property B's origin (allowed for B, a real property of the
gateway) it is a 403 problem and changes nothing, and B's key with B's origin works again.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
import sqlalchemy as sa

from gateway.core.actor import Actor
from gateway.services import decisions, properties

A_ORIGIN = "https://shop-a.example"
B_ORIGIN = "https://shop-b.example"


class Row(NamedTuple):
    method: str
    path: str
    body: dict | None


NOTICE = {"subject_id": "u-1", "purposes": ["personalization"], "locale": "en"}
CHOICES = {"subject_id": "u-1", "purposes": {"personalization": "granted"}, "locale": "en"}
BANNER_ROWS = [
    Row("POST", "/v1/notices/served", NOTICE),
    Row("POST", "/v1/consents", CHOICES),
    Row("GET", "/v1/subjects/u-1/consents", None),
    Row("DELETE", "/v1/subjects/u-1/consents", None),
    Row("GET", "/v1/decisions/{decision_id}/explanation?locale=de", None),
]
WRITES = ("receipts", "notices", "consent_events")


@pytest.fixture
def keys(gw) -> dict:
    a = properties.create_property(gw, "Shop A", [A_ORIGIN])
    b = properties.create_property(gw, "Shop B", [B_ORIGIN, "http://127.0.0.1:8000"])
    return {"a": a["property_key"], "b": b["property_key"]}


def call(client, row: Row, key: str, origin: str):
    path = row.path
    if "{decision_id}" in path:
        gw = client.application.extensions["gateway"]
        made = decisions.decide(gw, Actor(kind="cli", id="cli"), subject_id="u-1", placement="homepage_hero")
        path = path.replace("{decision_id}", made["decision_id"])
    return client.open(path, method=row.method, json=row.body,
                       headers={"X-Property-Key": key, "Origin": origin})


def counts(gw) -> dict:
    with gw.db.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for t in WRITES if t in names}


def test_the_table_is_every_banner_endpoint(app):
    adapter = app.url_map.bind("localhost")
    banner_routes = {(m, rule.endpoint) for rule in app.url_map.iter_rules()
                     if getattr(app.view_functions[rule.endpoint], "property_ok", False)
                     for m in rule.methods - {"HEAD", "OPTIONS"}}
    covered = {(row.method, adapter.match(row.path.split("?")[0].replace("{decision_id}", "dec_x"),
                                          method=row.method)[0]) for row in BANNER_ROWS}
    assert banner_routes and covered == banner_routes


@pytest.mark.parametrize("row", BANNER_ROWS, ids=lambda r: f"{r.method} {r.path}")
def test_a_key_from_another_propertys_origin_is_refused(client, gw, keys, row):
    before = counts(gw)
    r = call(client, row, keys["a"], B_ORIGIN)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    assert "origin" in r.json["detail"]
    assert "Access-Control-Allow-Origin" not in r.headers
    if row.method != "GET":
        assert counts(gw) == before, "a refused call wrote something"

    # each key from its own origin, and B's key from A's origin refused too
    assert 200 <= call(client, row, keys["a"], A_ORIGIN).status_code < 300
    assert 200 <= call(client, row, keys["b"], B_ORIGIN).status_code < 300
    assert call(client, row, keys["b"], A_ORIGIN).status_code == 403


@pytest.mark.parametrize("row", BANNER_ROWS, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("origin", ["https://shop-b.example:443", "HTTPS://SHOP-B.EXAMPLE",
                                    "http://127.0.0.1:8000", "https://shop-a.example.evil",
                                    "https://x.shop-a.example", "null"])
def test_spellings_of_other_origins_are_refused(client, keys, row, origin):
    r = call(client, row, keys["a"], origin)
    assert r.status_code == 403, (origin, r.get_data(as_text=True))
    assert r.mimetype == "application/problem+json"
