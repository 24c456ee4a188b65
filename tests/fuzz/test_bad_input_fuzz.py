"""Fuzzing bad input on both databases (the `app` fixture: SQLite and PostgreSQL).

- Bodies: schemathesis generates a body for every JSON operation of openapi.yaml, and Hypothesis
  puts a number that is not finite JSON (`1e309`, `NaN`, `-Infinity`, ...) at a random place in
  it. Every one is a 422 naming a field, and no row changes.
- URLs: any byte string that is not UTF-8, percent-encoded into a subject id or a query, is a
  400 on every subject operation and changes nothing; any text id is never taken for one.
- Sizes: a chunked body (as a server that decodes the chunks hands it over) is a 413 exactly
  when it is longer than the limit, like a body with Content-Length.
- Logs: whatever text a client puts in a body, a failing database write logs none of it.

The real servers (Werkzeug's and gunicorn) are covered by test_bad_input_servers.py.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
SUBJECT = "fuzz-bad-input"
POISON = "__not_finite_8d1c__"
NON_FINITE = st.sampled_from(["1e309", "-1e309", "1E+400", "-2.5e999", "NaN", "Infinity",
                              "-Infinity", "123456789012345678901234567890e300"])
FUZZ = settings(max_examples=20, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
# operationId -> (method, path sent, credentials)
JSON_OPERATIONS = {
    "recordNoticeServed": ("POST", "/v1/notices/served", "banner"),
    "recordConsent": ("POST", "/v1/consents", "banner"),
    "updateProfile": ("PATCH", f"/v1/subjects/{SUBJECT}/profile", "service"),
    "decide": ("POST", "/v1/decisions", "service"),
    "decideDemoHero": ("POST", "/demo/hero", None),
    "setDemoInterests": ("POST", "/demo/profile", None),
}


def row_counts(gw) -> dict[str, int]:
    with gw.db.engine.connect() as conn:
        tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        return {t: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in tables}


@pytest.fixture
def creds(gw, banner):
    from gateway.services.auth import clients, tokens

    client = clients.create_client(gw, "fuzz", list(clients.SCOPES), list(gw.policy.purpose_ids))
    token = tokens.issue_token(gw, grant_type="client_credentials", client_id=client["client_id"],
                                client_secret=client["client_secret"], scope=None,
                                remote_addr="127.0.0.1")["access_token"]
    return {"banner": banner, "service": {"Authorization": f"Bearer {token}"}, None: {}}


def _containers(value, found):
    if isinstance(value, (dict, list)):
        found.append(value)
        for item in (value.values() if isinstance(value, dict) else value):
            _containers(item, found)
    return found


@st.composite
def poisoned(draw, operation_id: str) -> str:
    """A body of the operation, as schemathesis makes them, with one value that is not finite."""
    case = draw(schema.find_operation_by_id(operation_id).as_strategy())
    body = case.body if isinstance(case.body, dict) else {}
    body = json.loads(json.dumps(body))  # a copy, plain JSON types
    target = draw(st.sampled_from(_containers(body, [])))
    if isinstance(target, dict):
        key = draw(st.sampled_from(sorted(target)) | st.text(min_size=1, max_size=8)
                   if target else st.text(min_size=1, max_size=8))
        target[key] = POISON
    else:
        target.insert(draw(st.integers(0, len(target))), POISON)
    return json.dumps(body).replace(json.dumps(POISON), draw(NON_FINITE), 1)


@pytest.mark.parametrize("operation_id", sorted(JSON_OPERATIONS))
def test_a_non_finite_number_anywhere_in_any_body_is_a_422(client, gw, creds, operation_id):
    method, path, auth = JSON_OPERATIONS[operation_id]

    @FUZZ
    @given(body=poisoned(operation_id))
    def check(body):
        before = row_counts(gw)
        r = client.open(path, method=method, data=body,
                        headers={**creds[auth], "Content-Type": "application/json"})
        assert r.status_code == 422, (body, r.get_data(as_text=True))
        assert r.mimetype == PROBLEM
        assert any("finite" in e["message"] for e in r.json["errors"]), r.json
        assert row_counts(gw) == before

    check()


# no "/" (another route) and no control bytes (tests/contract.py matches paths line by line)
NOT_UTF8 = st.binary(min_size=1, max_size=12).filter(
    lambda b: not _is_utf8(b) and b"/" not in b and min(b) >= 0x20 and 0x7F not in b)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


SUBJECT_OPERATIONS = [("GET", "/v1/subjects/{}/consents", "banner"),
                      ("DELETE", "/v1/subjects/{}/consents", "banner"),
                      ("GET", "/v1/subjects/{}/profile?purpose=ads", "service"),
                      ("GET", "/v1/subjects/{}/export", "service"),
                      ("DELETE", "/v1/subjects/{}", "service")]


def test_a_subject_id_that_is_not_utf8_is_a_400_everywhere(client, gw, creds):
    @FUZZ
    @given(raw=NOT_UTF8, operation=st.sampled_from(SUBJECT_OPERATIONS), prefix=st.sampled_from(["", "a-"]))
    def check(raw, operation, prefix):
        method, template, auth = operation
        before = row_counts(gw)
        path = template.format(prefix + quote_from_bytes(raw, safe=""))
        r = client.open(path, method=method, headers=creds[auth])
        assert r.status_code == 400, (path, r.get_data(as_text=True))
        assert r.mimetype == PROBLEM and r.json["errors"][0]["field"] == "path"
        assert row_counts(gw) == before

    check()


def test_a_query_that_is_not_utf8_is_a_400(client, gw, creds):
    @FUZZ
    @given(raw=NOT_UTF8, name=st.sampled_from(["history", "purpose", "x"]))
    def check(raw, name):
        path = f"/v1/subjects/{SUBJECT}/consents?{name}={quote_from_bytes(raw, safe='')}"
        r = client.get(path, headers=creds["banner"])
        assert r.status_code == 400 and r.json["errors"][0]["field"] == "query"

    check()


def test_a_text_subject_id_is_never_taken_for_bad_utf8(client, creds):
    ids = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"),
                  min_size=1, max_size=20)

    @FUZZ
    @given(subject=ids)
    def check(subject):
        r = client.get(f"/v1/subjects/{quote_from_bytes(subject.encode(), safe='')}/consents",
                       headers=creds["banner"])
        assert r.status_code in (200, 422), r.get_data(as_text=True)
        if r.status_code == 200:
            assert r.json["subject_id"] == subject

    check()


def test_a_chunked_body_is_a_413_exactly_when_it_is_over_the_limit(client, gw, creds):
    limit = gw.settings.max_body_bytes
    start = json.dumps({"subject_id": SUBJECT, "purposes": {"ads": "granted"}}).encode()

    @FUZZ
    @given(extra=st.integers(-64, 64))
    def check(extra):
        body = start + b" " * (limit - len(start) + extra)
        before = row_counts(gw)
        r = client.post("/v1/consents", input_stream=io.BytesIO(body),
                        headers={**creds["banner"], "Content-Type": "application/json",
                                 "Transfer-Encoding": "chunked"},
                        environ_overrides={"wsgi.input_terminated": True})
        if len(body) > limit:
            assert r.status_code == 413 and r.mimetype == PROBLEM
            assert row_counts(gw) == before
        else:
            assert r.status_code == 201, r.get_data(as_text=True)

    check()


def test_no_client_value_reaches_the_log_when_the_database_fails(client, gw, creds, capsys, monkeypatch):
    from gateway.logging import configure_logging
    from gateway.store import consents

    sql = ("SELECT CAST(:v AS integer)" if gw.db.dialect == "postgresql"
           else "INSERT INTO no_such_table (v) VALUES (:v)")

    def add_receipt(self, values):
        self.s.execute(sa.text(sql), {"v": json.dumps(values["source"])})

    monkeypatch.setattr(consents.ConsentRepository, "add_receipt", add_receipt)
    configure_logging("DEBUG", json_lines=True)
    logging.getLogger().setLevel(logging.DEBUG)
    markers = st.text(st.characters(whitelist_categories=["Ll", "Lu", "Nd"]), min_size=12, max_size=30)

    @settings(FUZZ, max_examples=10)
    @given(marker=markers)
    def check(marker):
        capsys.readouterr()
        r = client.post("/v1/consents", headers=creds["banner"], json={
            "subject_id": f"s-{marker}", "purposes": {"ads": "granted"},
            "source": {"url": f"https://shop.example/{marker}", "banner": marker}})
        assert r.status_code == 500 and r.mimetype == PROBLEM
        out = capsys.readouterr()
        assert "request.failed" in out.err
        assert marker not in out.err + out.out

    check()
