"""Bad input is refused with problem+json and changes nothing, on both databases: numbers that are
not finite JSON, invalid UTF-8 in the URL, oversized bodies with and without Content-Length."""

from __future__ import annotations

import io
import json

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
        stored = json.loads(stored)
    assert stored == source


# -- bodies without Content-Length ------------------------------------------------------------
# What a server that decodes `Transfer-Encoding: chunked` hands the app: the decoded body,
# `wsgi.input_terminated` and no length. (The Flask client computes a Content-Length from any
# seekable input_stream; the header `Transfer-Encoding: chunked` makes Werkzeug ignore it.)
CHUNKED = {"headers": {"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
           "environ_overrides": {"wsgi.input_terminated": True}}


def _chunked(client, path, headers, body: bytes, method="POST"):
    return client.open(path, method=method, input_stream=io.BytesIO(body),
                       headers={**headers, **CHUNKED["headers"]},
                       environ_overrides=CHUNKED["environ_overrides"])


def _consent(subject=SUBJECT, **extra) -> bytes:
    return json.dumps({"subject_id": subject, "purposes": {"ads": "granted"}, **extra}).encode()


@pytest.mark.parametrize("body", [
    pytest.param(_consent(source={"x": "a" * 70_000}), id="large"),
    # valid JSON within the limit and padding after it: Werkzeug alone read the first 64 KiB
    # and recorded the consent
    pytest.param(_consent() + b" " * 70_000, id="padded"),
])
def test_a_chunked_body_over_the_limit_is_a_413_that_changes_nothing(client, gw, banner, body):
    before = row_counts(gw)
    r = _chunked(client, "/v1/consents", banner, body)
    assert r.status_code == 413, r.get_data(as_text=True)[:300]
    assert r.mimetype == PROBLEM and r.json["type"] == "/problems/payload-too-large"
    assert row_counts(gw) == before


def test_the_limit_is_the_same_with_and_without_content_length(client, gw, banner):
    limit = gw.settings.max_body_bytes
    exact = _consent()[:-1] + b" " * (limit - len(_consent())) + b"}"
    assert len(exact) == limit
    assert _chunked(client, "/v1/consents", banner, exact).status_code == 201
    assert client.post("/v1/consents", data=exact, headers={**banner, "Content-Type": "application/json"}
                       ).status_code == 201
    over = exact + b" "
    assert _chunked(client, "/v1/consents", banner, over).status_code == 413
    assert client.post("/v1/consents", data=over, headers={**banner, "Content-Type": "application/json"}
                       ).status_code == 413


@pytest.mark.parametrize("method,path,auth", [
    ("POST", "/v1/notices/served", "banner"),
    ("PATCH", f"/v1/subjects/{SUBJECT}/profile", "service"),
    ("POST", "/v1/decisions", "service"),
])
def test_every_json_endpoint_refuses_a_chunked_body_over_the_limit(client, gw, banner, service,
                                                                   method, path, auth):
    headers = banner if auth == "banner" else service
    before = row_counts(gw)
    r = _chunked(client, path, headers, b"{" + b" " * 70_000 + b"}", method=method)
    assert r.status_code == 413 and r.mimetype == PROBLEM
    assert row_counts(gw) == before


# -- URLs that are not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("method,path,auth", [
    ("GET", "/v1/subjects/%FF%FE/consents", "banner"),
    ("GET", "/v1/subjects/%FE%FF/consents", "banner"),
    ("GET", "/v1/subjects/ok%C3/consents", "banner"),  # a cut-off sequence
    ("GET", "/v1/subjects/%ED%A0%80/consents", "banner"),  # an encoded surrogate
    ("DELETE", "/v1/subjects/%FF%FE/consents", "banner"),
    ("GET", "/v1/subjects/%FF/profile?purpose=ads", "service"),
    ("PATCH", "/v1/subjects/%FF/profile", "service"),
    ("GET", "/v1/subjects/%C0%AF/export", "service"),  # an overlong "/"
    ("GET", f"/v1/subjects/{SUBJECT}/consents?history=%FF", "banner"),
    ("GET", "/v1/policy?locale=%E9", None),
])
def test_a_url_that_is_not_utf8_is_a_400_that_changes_nothing(client, gw, banner, service, method,
                                                              path, auth):
    headers = {"banner": banner, "service": service, None: {}}[auth]
    before = row_counts(gw)
    kwargs = {"json": {"attributes": {"orders_count": 1}}} if method == "PATCH" else {}
    r = client.open(path, method=method, headers=headers, **kwargs)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.mimetype == PROBLEM and r.json["type"] == "/problems/bad-request"
    assert r.json["errors"][0]["field"] == ("query" if "?" in path and "%" in path.split("?")[1]
                                            else "path")
    assert row_counts(gw) == before


def test_two_raw_ids_that_are_not_utf8_never_meet(client, gw, banner):
    """Werkzeug alone read both as U+FFFD U+FFFD: the second read showed the first's consent."""
    r = client.post("/v1/consents", headers=banner,
                    json={"subject_id": "\ufffd\ufffd", "purposes": {"ads": "granted"}})
    assert r.status_code == 201
    for raw in ("%FF%FE", "%FE%FF"):
        assert client.get(f"/v1/subjects/{raw}/consents", headers=banner).status_code == 400
    ok = client.get("/v1/subjects/%EF%BF%BD%EF%BF%BD/consents", headers=banner)  # U+FFFD itself
    assert ok.status_code == 200 and ok.json["subject_id"] == "\ufffd\ufffd"


def test_a_valid_utf8_id_still_works(client, banner):
    r = client.post("/v1/consents", headers=banner,
                    json={"subject_id": "kunde-ø-é", "purposes": {"ads": "granted"}})
    assert r.status_code == 201
    r = client.get("/v1/subjects/kunde-%C3%B8-%C3%A9/consents", headers=banner)
    assert r.status_code == 200 and r.json["subject_id"] == "kunde-ø-é"


def test_a_deeply_nested_body_is_walked_without_a_server_error(client, gw, banner):
    before = row_counts(gw)
    for depth in (10, 500, 900, 5000):
        body = '{"source": ' + "[" * depth + "NaN" + "]" * depth + "}"
        r = client.post("/v1/consents", data=body, headers={**banner, "Content-Type": "application/json"})
        assert r.status_code in (400, 422), (depth, r.status_code)  # 400: deeper than json reads
        assert r.mimetype == PROBLEM
        if r.status_code == 422:
            assert r.json["errors"][0]["field"] == "source" + "[0]" * depth
    assert row_counts(gw) == before
