"""Bad input is refused with problem+json and changes nothing, on both databases: numbers that are
not finite JSON, invalid UTF-8 in the URL, oversized bodies with and without Content-Length."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

PROBLEM = "application/problem+json"
SUBJECT = "bad-input-1"


def row_counts(gw) -> dict[str, int]:
    with gw.db.engine.connect() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        return {t: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in tables}


@pytest.fixture
def service(make_client, token_for, gw):
    creds = make_client(scopes=["consent:write", "consent:read", "profile:write", "profile:read",
                                "decision:write", "decision:read", "subject:export"],
                        purposes=list(gw.policy.purpose_ids))
    return {"Authorization": f"Bearer {token_for(creds)}"}


# Each JSON endpoint with a body it would accept; {X} is where the bad number goes.
ENDPOINTS = {
    "notices": ("POST", "/v1/notices/served", "banner",
                '{"subject_id": "%s", "purposes": ["ads"], "source": {"x": [1, {"deep": {X}}]}}'),
    "consents": ("POST", "/v1/consents", "banner",
                 '{"subject_id": "%s", "purposes": {"ads": "granted"}, "source": {"banner": {X}}}'),
    "consents-top": ("POST", "/v1/consents", "banner",
                     '{"subject_id": "%s", "purposes": {"ads": "granted"}, "extra": {X}}'),
    "profile": ("PATCH", f"/v1/subjects/{SUBJECT}/profile", "service",
                '{"attributes": {"orders_count": {X}}}'),
    "profile-list": ("PATCH", f"/v1/subjects/{SUBJECT}/profile", "service",
                     '{"attributes": {"browsing_categories": ["outdoor", {X}]}}'),
    "decisions": ("POST", "/v1/decisions", "service",
                  '{"subject_id": "%s", "placement": "homepage_hero", "context": {"n": {X}}}'),
    "demo-hero": ("POST", "/demo/hero", None, '{"subject_id": "demo-1", "locale": "en", "n": {X}}'),
    "demo-profile": ("POST", "/demo/profile", None,
                     '{"subject_id": "demo-1", "browsing_categories": [{X}]}'),
}
NON_FINITE = ["1e309", "-1e309", "NaN", "Infinity", "-Infinity", "123456789e999"]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_non_finite_numbers_are_a_422_that_changes_nothing(client, gw, banner, service, endpoint,
                                                           number):
    method, path, auth, template = ENDPOINTS[endpoint]
    headers = {"banner": banner, "service": service, None: {}}[auth]
    body = template.replace("%s", SUBJECT).replace("{X}", number)
    before = row_counts(gw)
    r = client.open(path, method=method, data=body, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.mimetype == PROBLEM
    assert r.json["type"] == "/problems/validation-error"
    assert any("finite" in e["message"] for e in r.json["errors"]), r.json
    assert row_counts(gw) == before


def test_the_error_names_every_non_finite_field(client, banner):
    body = ('{"subject_id": "SUBJ", "purposes": {"ads": "granted"},'
            ' "source": {"a": NaN, "b": [1.5, 1e309], "c": {"d": -Infinity}, "ok": 1e308}}'
            ).replace("SUBJ", SUBJECT)
    r = client.post("/v1/consents", data=body, headers={**banner, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json["errors"]] == ["source.a", "source.b[1]", "source.c.d"]


def test_a_lone_surrogate_is_refused_before_the_database(client, gw, banner):
    before = row_counts(gw)
    for source, field in (('{"u": "\\ud800"}', "source.u"), ('{"\\udfff": 1}', "source"),
                          ('{"u": ["\\udc00x"]}', "source.u[0]")):
        body = f'{{"subject_id": "{SUBJECT}", "purposes": {{"ads": "granted"}}, "source": {source}}}'
        r = client.post("/v1/consents", data=body, headers={**banner, "Content-Type": "application/json"})
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.json["errors"][0]["field"] == field
    assert row_counts(gw) == before


def test_finite_numbers_are_still_stored_as_sent(client, gw, banner):
    source = {"n": 1e308, "m": -0.5, "i": 10 ** 30, "tiny": 2.5e-300, "banner": "main"}
    r = client.post("/v1/consents", headers=banner,
                    json={"subject_id": SUBJECT, "purposes": {"ads": "granted"}, "source": source})
    assert r.status_code == 201, r.get_data(as_text=True)
    with gw.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT source FROM receipts")).scalar_one()
    if isinstance(stored, str):
        import json

        stored = json.loads(stored)
    assert stored == source
