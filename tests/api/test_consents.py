"""The consent ledger over HTTP, on both databases."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from freezegun import freeze_time

from gateway import create_app

ORIGIN = "https://shop.example"
VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "tcf_vectors.json").read_text(encoding="utf-8")
)


def post(client, headers, body, **extra):
    return client.post("/v1/consents", json=body, headers={**headers, **extra})


def state_of(client, headers, subject="u-1", history=False):
    r = client.get(f"/v1/subjects/{subject}/consents" + ("?history=true" if history else ""),
                   headers=headers)
    assert r.status_code == 200, r.json
    return {p["purpose"]: p for p in r.json["purposes"]}, r.json


def row_counts(gw) -> dict[str, int]:
    with gw.db.engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("receipts", "consent_events", "consent_state", "notices", "subjects",
                      "idempotency_keys")
        }


def test_policy_is_localized_and_falls_back_to_english(client):
    de = client.get("/v1/policy?locale=de").json
    assert de["purposes"][0]["title"] == "Personalisierte Inhalte"
    assert de["controller"]["name"] == "Beispiel Shop GmbH"
    assert client.get("/v1/policy?locale=nb-NO").json["purposes"][0]["title"].startswith("Person")
    fr = client.get("/v1/policy?locale=fr").json
    assert fr["purposes"][0]["title"] == "Personalised content"
    purpose = fr["purposes"][0]
    for key in ("id", "version", "legal_basis", "title", "description", "lifetime_days", "gpc",
                "tcf_purposes", "consent_mode", "data_use"):
        assert key in purpose


def test_grant_receipt_state_and_history(client, banner):
    notice = client.post("/v1/notices/served", headers=banner, json={
        "subject_id": "u-1", "purposes": ["personalization", "ads"], "locale": "de",
        "source": {"url": "https://shop.example/", "banner": "main"}})
    assert notice.status_code == 201
    assert notice.json["notice_id"].startswith("ntc_")
    r = post(client, banner, {"subject_id": "u-1", "locale": "de",
                              "purposes": {"personalization": "granted", "ads": "denied"},
                              "notice_id": notice.json["notice_id"]})
    assert r.status_code == 201
    receipt = r.json
    assert receipt["receipt_id"].startswith("rcpt_") and receipt["subject_id"] == "u-1"
    assert receipt["policy_version"] == client.get("/v1/policy").json["version"]
    lines = {p["purpose"]: p for p in receipt["purposes"]}
    assert lines["personalization"]["status"] == "granted"
    assert lines["personalization"]["method"] == "banner"
    assert lines["personalization"]["purpose_version"] == 2
    recorded = datetime.fromisoformat(receipt["recorded_at"])
    expires = datetime.fromisoformat(lines["personalization"]["expires_at"])
    assert expires - recorded == timedelta(days=395)
    assert receipt["consent_mode"]["personalization_storage"] == "granted"
    assert receipt["consent_mode"]["ad_storage"] == "denied"
    assert receipt["gpc_applied"] == [] and receipt["tcf"] is None
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN

    states, body = state_of(client, banner, history=True)
    assert states["personalization"]["status"] == "granted" and states["personalization"]["effective"]
    assert states["personalization"]["receipt_id"] == receipt["receipt_id"]
    assert states["ads"]["status"] == "denied" and not states["ads"]["effective"]
    assert states["analytics"] == {**states["analytics"], "status": "permitted", "effective": True,
                                   "legal_basis": "legitimate_interest"}
    assert states["service"]["status"] == "permitted"
    assert [h["purpose"] for h in body["history"]] == ["personalization", "ads"]
    assert body["history"][0]["notice_id"] == notice.json["notice_id"]
    assert "history" not in state_of(client, banner)[1]


def test_unknown_subject_is_not_asked(client, banner):
    states, body = state_of(client, banner, subject="nobody")
    assert states["personalization"]["status"] == "not_asked"
    assert states["ads"]["status"] == "not_asked"
    assert body["consent_mode"]["ad_storage"] == "denied"


def test_withdraw_all_in_one_call(client, banner):
    post(client, banner, {"subject_id": "u-1", "purposes": {"personalization": "granted",
                                                          "ads": "granted"}})
    r = client.delete("/v1/subjects/u-1/consents", headers=banner)
    assert r.status_code == 200
    assert {p["purpose"]: p["status"] for p in r.json["purposes"]} == {
        "personalization": "withdrawn", "ads": "withdrawn", "health_offers": "denied"}
    assert r.json["consent_mode"]["ad_storage"] == "denied"
    states, body = state_of(client, banner, history=True)
    assert states["personalization"]["status"] == "withdrawn"
    assert not states["personalization"]["effective"]
    assert [h["status"] for h in body["history"]] == ["granted", "granted", "denied", "denied", "denied"]


def test_legitimate_interest_objection_and_lifting(client, banner):
    post(client, banner, {"subject_id": "u-1", "purposes": {"analytics": "denied"}})
    states, body = state_of(client, banner)
    assert states["analytics"]["status"] == "objected" and not states["analytics"]["effective"]
    assert body["consent_mode"]["analytics_storage"] == "denied"
    post(client, banner, {"subject_id": "u-1", "purposes": {"analytics": "granted"}})
    assert state_of(client, banner)[0]["analytics"]["status"] == "permitted"


def test_gpc_denies_gpc_purposes_whatever_the_body_says(client, banner):
    r = post(client, banner, {"subject_id": "u-1", "purposes": {"ads": "granted",
                                                              "personalization": "granted"}},
             **{"Sec-GPC": "1"})
    assert r.status_code == 201
    assert r.json["gpc_applied"] == ["ads", "health_offers"]
    lines = {p["purpose"]: p for p in r.json["purposes"]}
    assert lines["ads"]["status"] == "denied" and lines["ads"]["method"] == "gpc"
    assert lines["personalization"]["status"] == "granted"
    # only the value 1 counts
    r = post(client, banner, {"subject_id": "u-2", "purposes": {"ads": "granted"}},
             **{"Sec-GPC": "0"})
    assert r.json["gpc_applied"] == []


def test_gpc_alone_is_enough_to_record(client, banner):
    r = post(client, banner, {"subject_id": "u-1"}, **{"Sec-GPC": "1"})
    assert r.status_code == 201 and r.json["gpc_applied"] == ["ads", "health_offers"]


@freeze_time("2026-03-01T10:00:00Z")
def test_expiry_at_exactly_lifetime_days(client, banner):
    post(client, banner, {"subject_id": "u-1", "purposes": {"personalization": "granted"}})
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    with freeze_time(start + timedelta(days=395) - timedelta(seconds=1)):
        assert state_of(client, banner)[0]["personalization"]["status"] == "granted"
    with freeze_time(start + timedelta(days=395)):
        s = state_of(client, banner)[0]["personalization"]
        assert s["status"] == "expired" and not s["effective"]
        assert state_of(client, banner)[1]["consent_mode"]["personalization_storage"] == "denied"


def test_reconsent_required_after_version_bump(app_config, client, banner, tmp_path, policy_dir):
    post(client, banner, {"subject_id": "u-1", "purposes": {"personalization": "granted"}})
    bumped = tmp_path / "bumped"
    shutil.copytree(policy_dir, bumped)
    doc = yaml.safe_load((bumped / "purposes.yaml").read_text())
    doc["purposes"][0]["version"] = 3
    (bumped / "purposes.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    app2 = create_app({**app_config, "GATEWAY_POLICY_DIR": str(bumped)})
    try:
        c2 = app2.test_client()
        s = state_of(c2, banner)[0]["personalization"]
        assert s["status"] == "reconsent_required" and not s["effective"]
        assert s["purpose_version"] == 2
        r = post(c2, banner, {"subject_id": "u-1", "purposes": {"personalization": "granted"}})
        assert r.json["purposes"][0]["purpose_version"] == 3
        assert r.json["policy_version"] != client.get("/v1/policy").json["version"]
        assert state_of(c2, banner)[0]["personalization"]["status"] == "granted"
    finally:
        app2.extensions["gateway"].db.dispose()


def test_idempotency_key_replays_and_conflicts(client, banner, gw):
    body = {"subject_id": "u-1", "purposes": {"personalization": "granted"}}
    first = post(client, banner, body, **{"Idempotency-Key": "abc"})
    before = row_counts(gw)
    again = post(client, banner, body, **{"Idempotency-Key": "abc"})
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert row_counts(gw) == before
    other = post(client, banner, {**body, "purposes": {"personalization": "denied"}},
                 **{"Idempotency-Key": "abc"})
    assert other.status_code == 409
    assert other.headers["Content-Type"] == "application/problem+json"
    assert row_counts(gw) == before


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["tc_string"][:24])
def test_tc_string_valid_vectors(client, banner, vector):
    r = post(client, banner, {"subject_id": "u-1", "tc_string": vector["tc_string"]})
    assert r.status_code == 201, r.json
    for key, value in vector["expected"].items():
        assert r.json["tcf"][key] == value
    consented = set(vector["expected"]["purposes_consent"])
    lines = {p["purpose"]: p for p in r.json["purposes"]}
    assert lines["personalization"]["method"] == "tcf"
    assert lines["personalization"]["status"] == ("granted" if {5, 6} <= consented else "denied")
    assert lines["ads"]["status"] == ("granted" if {2, 3, 4} <= consented else "denied")


@pytest.mark.parametrize(
    "vector",
    VECTORS["invalid"] + VECTORS["legacy_decodable"],
    ids=lambda v: v["violates"] + ":" + v["tc_string"][:16],
)
def test_tc_string_invalid_vectors(client, banner, gw, vector):
    before = row_counts(gw)
    r = post(client, banner, {"subject_id": "u-1", "tc_string": vector["tc_string"],
                              "purposes": {"analytics": "denied"}})
    assert r.status_code == 422
    assert r.json["code"] == vector["violates"]
    assert r.json["errors"][0]["field"] == "tc_string"
    assert row_counts(gw) == before


def test_tc_string_is_kept_as_proof(client, banner, gw):
    tc = VECTORS["valid"][0]["tc_string"]
    r = post(client, banner, {"subject_id": "u-1", "tc_string": tc})
    with gw.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT tc_string FROM receipts WHERE id = :i"),
                              {"i": r.json["receipt_id"]}).scalar_one()
    assert stored == tc


BAD_BODIES = [
    ({"purposes": {"ads": "granted"}}, 422, "subject_id"),
    ({"subject_id": "", "purposes": {"ads": "granted"}}, 422, "subject_id"),
    ({"subject_id": "x" * 257, "purposes": {"ads": "granted"}}, 422, "subject_id"),
    ({"subject_id": "bad\nid", "purposes": {"ads": "granted"}}, 422, "subject_id"),
    ({"subject_id": 42, "purposes": {"ads": "granted"}}, 422, "subject_id"),
    ({"subject_id": "u-1", "purposes": ["ads"]}, 422, "purposes"),
    ({"subject_id": "u-1", "purposes": {"ads": "yes"}}, 422, "purposes.ads"),
    ({"subject_id": "u-1", "purposes": {"ads": True}}, 422, "purposes"),
    ({"subject_id": "u-1", "purposes": {"unknown": "granted"}}, 422, "purposes.unknown"),
    ({"subject_id": "u-1", "purposes": {"service": "denied"}}, 422, "purposes.service"),
    ({"subject_id": "u-1", "purposes": {}}, 422, "purposes"),
    ({"subject_id": "u-1"}, 422, "purposes"),
    ({"subject_id": "u-1", "purposes": {"ads": "granted"}, "extra": 1}, 422, "extra"),
    ({"subject_id": "u-1", "purposes": {"ads": "granted"}, "locale": "!!"}, 422, "locale"),
    ({"subject_id": "u-1", "purposes": {"ads": "granted"}, "notice_id": "ntc_nope"}, 422,
     "notice_id"),
    ({"subject_id": "u-1", "purposes": {"ads": "granted"}, "source": {"a": {"b": 1}}}, 422,
     "source"),
    ({"subject_id": "u-1", "purposes": {"ads": "granted"}, "tc_string": 7}, 422, "tc_string"),
]


@pytest.mark.parametrize("body, status, field", BAD_BODIES, ids=lambda v: str(v)[:40])
def test_bad_bodies_are_problems_and_change_nothing(client, banner, gw, body, status, field):
    before = row_counts(gw)
    r = post(client, banner, body)
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(r.json)
    assert any(e["field"].startswith(field) for e in r.json["errors"]), r.json
    assert row_counts(gw) == before


@pytest.mark.parametrize(
    "data, content_type, status",
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 422),
        ("null", "application/json", 400),
        ("subject_id=u-1", "application/x-www-form-urlencoded", 415),
        ('{"subject_id": "u-1", "purposes": {"ads": "granted"}, "pad": "' + "x" * 70000 + '"}',
         "application/json", 413),
        (b"\xff\xfe\x00", "application/json", 400),
    ],
)
def test_unreadable_bodies(client, banner, gw, data, content_type, status):
    before = row_counts(gw)
    r = client.post("/v1/consents", data=data, headers={**banner, "Content-Type": content_type})
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/problem+json"
    assert row_counts(gw) == before


def test_notice_served_errors(client, banner):
    r = client.post("/v1/notices/served", headers=banner,
                    json={"subject_id": "u-1", "purposes": ["nope"], "locale": "de"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "purposes[0]"
    r = client.post("/v1/notices/served", headers=banner, json={"subject_id": "u-1", "locale": "de"})
    assert r.status_code == 422


def test_notice_of_another_subject_is_refused(client, banner):
    n = client.post("/v1/notices/served", headers=banner,
                    json={"subject_id": "u-1", "purposes": ["ads"], "locale": "en"}).json
    r = post(client, banner, {"subject_id": "u-2", "purposes": {"ads": "granted"},
                              "notice_id": n["notice_id"]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "notice_id"


def test_path_subject_ids(client, banner):
    assert client.get("/v1/subjects/" + "x" * 257 + "/consents", headers=banner).status_code == 422
    post(client, banner, {"subject_id": "a/b c", "purposes": {"ads": "granted"}})
    states, _ = state_of(client, banner, subject="a%2Fb%20c")
    assert states["ads"]["status"] == "granted"


class TestBannerCredentials:
    def test_no_key_is_401(self, client):
        r = client.get("/v1/subjects/u-1/consents")
        assert r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json"

    def test_wrong_key_is_401(self, client):
        r = client.get("/v1/subjects/u-1/consents", headers={"X-Property-Key": "pk_wrong"})
        assert r.status_code == 401

    def test_foreign_origin_is_403_without_cors(self, client, banner):
        r = client.post("/v1/consents", headers={**banner, "Origin": "https://evil.example"},
                        json={"subject_id": "u-1", "purposes": {"ads": "granted"}})
        assert r.status_code == 403
        assert "Access-Control-Allow-Origin" not in r.headers

    def test_no_origin_is_fine_for_server_side_calls(self, client, banner):
        headers = {"X-Property-Key": banner["X-Property-Key"]}
        assert post(client, headers, {"subject_id": "u", "purposes": {"ads": "denied"}}).status_code == 201

    def test_preflight_only_for_property_origins(self, client, banner):
        ok = client.options("/v1/consents", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-property-key"})
        assert ok.status_code == 204
        assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Property-Key" in ok.headers["Access-Control-Allow-Headers"]
        bad = client.options("/v1/consents", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers

    def test_policy_is_readable_cross_origin_by_property_origins(self, client, banner):
        r = client.get("/v1/policy", headers={"Origin": ORIGIN})
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        r = client.get("/v1/policy", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers


def test_not_found_and_method_not_allowed_are_problems(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    r = client.put("/v1/consents", json={})
    assert r.status_code == 405 and r.headers["Content-Type"] == "application/problem+json"


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "ready"


def test_raw_subject_id_is_never_stored(client, banner, gw):
    marker = "marker-subject-7f3e9c"
    n = client.post("/v1/notices/served", headers=banner,
                    json={"subject_id": marker, "purposes": ["ads"], "locale": "en"}).json
    post(client, banner, {"subject_id": marker, "purposes": {"ads": "granted"},
                          "notice_id": n["notice_id"]}, **{"Idempotency-Key": "k"})
    client.delete(f"/v1/subjects/{marker}/consents", headers=banner)
    with gw.db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                assert marker not in json.dumps([str(v) for v in row]), table
