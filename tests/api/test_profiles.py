"""Profiles over HTTP, on both databases: the all-or-nothing write, the permitted view and every
withheld reason, subject access and erasure, the retention purge and master-key rotation."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from contract import ValidatingClient
from freezegun import freeze_time

from gateway import create_app
from gateway.core.actor import CLI
from gateway.security.envelope import key_id
from gateway.services import profiles

POLICIES = Path(__file__).resolve().parents[2] / "policies"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
SCOPES = ("profile:write", "profile:read", "subject:export", "subject:erase", "consent:write",
          "consent:read")
PERSONALIZATION_PROFILE = {"email": "a@example.test", "browsing_categories": ["outdoor"],
                           "loyalty_tier": "gold", "age_range": "25-34"}


class Api:
    """A service client with every profile scope, bound to every purpose of the policy.

    Tokens are issued on demand at the (possibly frozen) time of the call, so tests may jump
    days ahead without holding an expired token.
    """

    def __init__(self, client, gw, credentials, token_for):
        self.client, self.gw, self.credentials, self.token_for = client, gw, credentials, token_for
        self._token, self._issued = None, None

    def headers(self) -> dict:
        now = self.gw.now()
        if self._issued is None or not self._issued <= now < self._issued + timedelta(minutes=10):
            self._token, self._issued = self.token_for(self.credentials), now
        return {"Authorization": f"Bearer {self._token}"}

    def on(self, client, gw) -> Api:
        """The same credentials against another app on the same database."""
        return Api(client, gw, self.credentials, self.token_for)

    def patch(self, subject: str, attributes: dict):
        return self.client.patch(f"/v1/subjects/{subject}/profile", json={"attributes": attributes},
                                 headers=self.headers())

    def write(self, subject: str, attributes: dict) -> dict:
        r = self.patch(subject, attributes)
        assert r.status_code == 200, r.json
        return r.json

    def view(self, subject: str, purpose: str) -> dict:
        r = self.client.get(f"/v1/subjects/{subject}/profile", query_string={"purpose": purpose},
                            headers=self.headers())
        assert r.status_code == 200, r.json
        return r.json

    def consent(self, subject: str, notice_id: str | None = None, **purposes: str) -> dict:
        body = {"subject_id": subject, "purposes": purposes}
        if notice_id:
            body["notice_id"] = notice_id
        r = self.client.post("/v1/consents", json=body, headers=self.headers())
        assert r.status_code == 201, r.json
        return r.json

    def withdraw(self, subject: str) -> dict:
        r = self.client.delete(f"/v1/subjects/{subject}/consents", headers=self.headers())
        assert r.status_code == 200, r.json
        return r.json

    def export(self, subject: str) -> dict:
        r = self.client.get(f"/v1/subjects/{subject}/export", headers=self.headers())
        assert r.status_code == 200, r.json
        return r.json

    def erase(self, subject: str):
        return self.client.delete(f"/v1/subjects/{subject}", headers=self.headers())

    def stored(self, subject: str) -> dict:
        """The subject's whole profile, decrypted (through the export)."""
        return {a["attribute"]: a["value"] for a in self.export(subject)["profile"]}


@pytest.fixture
def api(client, gw, make_client, token_for) -> Api:
    return Api(client, gw, make_client(SCOPES, gw.policy.purpose_ids), token_for)


def query(gw, sql: str, **params) -> list:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def audited(gw, type_: str) -> list[dict]:
    """Audit rows of one type: actor, subject and the data JSON."""
    rows = query(gw, "SELECT actor, subject, data FROM audit_events WHERE type = :t ORDER BY id",
                 t=type_)
    return [{"actor": r.actor, "subject": r.subject,
             "data": r.data if isinstance(r.data, dict) else json.loads(r.data)} for r in rows]


def snapshot(gw) -> dict:
    """Everything a profile write can change, byte for byte."""
    return {
        "values": sorted(tuple(r) for r in query(
            gw, "SELECT subject, attribute, ciphertext, written_at FROM profile_values")),
        "keys": sorted(tuple(r) for r in query(gw, "SELECT subject, kek_id, wrapped FROM subject_keys")),
        "audit": query(gw, "SELECT COUNT(*) FROM audit_events WHERE type = 'profile.updated'"),
    }


def second_app(app_config, policy_dir: Path):
    """Another gateway on the same database (and instance dir), with another policy."""
    other = create_app({**app_config, "GATEWAY_POLICY_DIR": str(policy_dir)})
    other.test_client_class = ValidatingClient
    return other


def copy_policy(tmp_path: Path, name: str) -> tuple[Path, dict, dict]:
    target = tmp_path / name
    shutil.copytree(POLICIES, target)
    purposes = yaml.safe_load((target / "purposes.yaml").read_text())
    attributes = yaml.safe_load((target / "attributes.yaml").read_text())
    return target, purposes, attributes


def save_policy(target: Path, purposes: dict, attributes: dict) -> Path:
    (target / "purposes.yaml").write_text(yaml.safe_dump(purposes, allow_unicode=True))
    (target / "attributes.yaml").write_text(yaml.safe_dump(attributes, allow_unicode=True))
    return target


# -- PATCH: merge, remove, all or nothing ---------------------------------------------------------


def test_patch_merges_and_null_removes(api):
    r = api.write("u-1", {"loyalty_tier": "gold", "orders_count": 3, "email": "a@example.test"})
    assert r["subject_id"] == "u-1"
    assert r["updated"] == ["email", "loyalty_tier", "orders_count"] and r["removed"] == []
    r = api.write("u-1", {"orders_count": 4, "email": None, "city": None,
                          "browsing_categories": ["outdoor", "running"]})
    assert r["updated"] == ["browsing_categories", "orders_count"]
    assert "email" in r["removed"] and r["absent"] == ["city"]
    assert api.stored("u-1") == {"loyalty_tier": "gold", "orders_count": 4,
                                 "browsing_categories": ["outdoor", "running"]}
    api.write("u-1", {"loyalty_tier": None, "orders_count": None, "browsing_categories": None})
    assert api.stored("u-1") == {}


BAD_VALUES = [
    ("loyalty_tier", 5),
    ("loyalty_tier", ["gold"]),
    ("loyalty_tier", {"tier": "gold"}),
    ("loyalty_tier", "x" * 4097),
    ("orders_count", True),  # a boolean is no integer, although Python says so
    ("orders_count", False),
    ("orders_count", 3.5),
    ("orders_count", "3"),
    ("orders_count", 2**53 + 1),
    ("total_spend_eur", "12.50"),
    ("total_spend_eur", True),
    ("last_purchase_date", "2026-02-30"),
    ("last_purchase_date", "2026-2-3"),
    ("last_purchase_date", "2026-02-03T10:00:00Z"),
    ("last_purchase_date", "03.02.2026"),
    ("last_purchase_date", 20260203),
    ("browsing_categories", ["outdoor", 7]),
    ("browsing_categories", ["outdoor", None]),
    ("browsing_categories", [["outdoor"]]),
    ("browsing_categories", "outdoor"),
    ("no_such_attribute", "x"),
]


@pytest.mark.parametrize("name, value", BAD_VALUES, ids=lambda v: str(v)[:20])
def test_one_bad_value_refuses_the_whole_patch(api, gw, name, value):
    api.write("u-1", {"loyalty_tier": "silver", "orders_count": 1})
    before = snapshot(gw)
    removal = "orders_count" if name == "loyalty_tier" else "loyalty_tier"
    r = api.patch("u-1", {"email": "ok@example.test", removal: None, name: value})
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert [e["field"] for e in r.json["errors"]] == [f"attributes.{name}"]
    if isinstance(value, str) and len(value) > 2:
        assert value not in r.get_data(as_text=True)  # messages never repeat values
    assert snapshot(gw) == before
    assert api.stored("u-1") == {"loyalty_tier": "silver", "orders_count": 1}


def test_every_bad_field_is_listed_at_once(api, gw):
    api.write("u-1", {"city": "Berlin"})
    before = snapshot(gw)
    bad = {"loyalty_tier": 5, "orders_count": True, "total_spend_eur": "12", "email": None,
           "last_purchase_date": "2026-13-01", "browsing_categories": ["a", 1], "nope": 1,
           "purchase_categories": ["kitchen"]}
    r = api.patch("u-1", bad)
    assert r.status_code == 422
    assert {e["field"] for e in r.json["errors"]} == {
        "attributes.loyalty_tier", "attributes.orders_count", "attributes.total_spend_eur",
        "attributes.last_purchase_date", "attributes.browsing_categories", "attributes.nope"}
    assert all(e["message"] for e in r.json["errors"])
    assert snapshot(gw) == before
    assert api.stored("u-1") == {"city": "Berlin"}


HUGE = '{"attributes": {"loyalty_tier": "' + "x" * 70000 + '"}}'


@pytest.mark.parametrize("data, content_type, status, field", [
    ("{not json", "application/json", 400, None),
    ("null", "application/json", 400, None),
    (b"\xff\xfe\x00", "application/json", 400, None),
    ('{"attributes": {"loyalty_tier": "gold"}}', "text/plain", 415, None),
    ("attributes=gold", "application/x-www-form-urlencoded", 415, None),
    ('[{"attributes": {"loyalty_tier": "gold"}}]', "application/json", 422, "body"),
    ('"gold"', "application/json", 422, "body"),
    ("{}", "application/json", 422, "attributes"),
    ('{"loyalty_tier": "gold"}', "application/json", 422, "loyalty_tier"),
    ('{"attributes": {"loyalty_tier": "gold"}, "extra": 1}', "application/json", 422, "extra"),
    ('{"attributes": ["loyalty_tier"]}', "application/json", 422, "attributes"),
    ('{"attributes": null}', "application/json", 422, "attributes"),
    ('{"attributes": {}}', "application/json", 422, "attributes"),
    (HUGE, "application/json", 413, None),
], ids=lambda v: str(v)[:24])
def test_unusable_bodies_are_problems_and_change_nothing(api, gw, data, content_type, status, field):
    api.write("u-1", {"loyalty_tier": "silver"})
    before = snapshot(gw)
    r = api.client.patch("/v1/subjects/u-1/profile", data=data,
                         headers={**api.headers(), "Content-Type": content_type})
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(r.json)
    if field:
        assert field in [e["field"] for e in r.json["errors"]], r.json
    assert snapshot(gw) == before


@pytest.mark.parametrize("method, path", [
    ("PATCH", "/v1/subjects/{}/profile"), ("GET", "/v1/subjects/{}/profile?purpose=personalization"),
    ("GET", "/v1/subjects/{}/export"), ("DELETE", "/v1/subjects/{}"),
])
def test_subject_id_too_long_is_422(api, gw, method, path):
    before = snapshot(gw)
    r = api.client.open(path.format("x" * 257), method=method, headers=api.headers(),
                        json={"attributes": {"loyalty_tier": "gold"}} if method == "PATCH" else None)
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "subject_id"
    assert snapshot(gw) == before
    assert api.client.open(path.format("x" * 256), method=method, headers=api.headers(),
                           json={"attributes": {"loyalty_tier": "gold"}} if method == "PATCH"
                           else None).status_code == 200


# -- GET: the permitted view and every reason ---------------------------------------------------


def test_released_and_not_permitted_for_purpose(api):
    api.consent("u-1", personalization="granted", ads="granted")
    api.write("u-1", PERSONALIZATION_PROFILE)
    view = api.view("u-1", "personalization")
    assert view["subject_id"] == "u-1" and view["purpose"] == "personalization"
    assert view["effective"] is True and view["status"] == "granted"
    assert view["policy_version"] == api.client.get("/v1/policy").json["version"]
    assert list(view["attributes"].items()) == [("browsing_categories", ["outdoor"]),
                                                ("loyalty_tier", "gold")]
    assert view["withheld"] == [{"attribute": "email", "reason": "not_permitted_for_purpose"},
                                {"attribute": "age_range", "reason": "not_permitted_for_purpose"}]
    ads = api.view("u-1", "ads")
    assert ads["attributes"] == {"browsing_categories": ["outdoor"], "age_range": "25-34"}
    service = api.view("u-1", "service")  # contract: no consent needed
    assert service["effective"] is True and service["attributes"] == {"email": "a@example.test"}


def test_no_consent_when_not_asked_and_when_denied(api):
    api.write("u-1", {"loyalty_tier": "gold", "email": "a@example.test"})
    view = api.view("u-1", "personalization")
    assert view["status"] == "not_asked" and view["effective"] is False
    assert view["attributes"] == {}
    assert view["withheld"] == [{"attribute": "email", "reason": "not_permitted_for_purpose"},
                                {"attribute": "loyalty_tier", "reason": "no_consent"}]
    api.consent("u-1", personalization="denied")
    view = api.view("u-1", "personalization")
    assert view["status"] == "denied" and view["attributes"] == {}
    assert {"attribute": "loyalty_tier", "reason": "no_consent"} in view["withheld"]


def test_withdrawal_withholds_on_the_very_next_read(api):
    api.consent("u-1", personalization="granted")
    api.write("u-1", {"loyalty_tier": "gold", "browsing_categories": ["outdoor"]})
    assert api.view("u-1", "personalization")["attributes"] == {
        "browsing_categories": ["outdoor"], "loyalty_tier": "gold"}
    api.withdraw("u-1")
    view = api.view("u-1", "personalization")
    assert view["effective"] is False and view["status"] == "withdrawn"
    assert view["attributes"] == {}
    assert view["withheld"] == [{"attribute": "browsing_categories", "reason": "consent_withdrawn"},
                                {"attribute": "loyalty_tier", "reason": "consent_withdrawn"}]


def test_consent_expired_at_lifetime_days(api):
    with freeze_time(T0) as frozen:
        api.consent("u-1", personalization="granted")
        api.write("u-1", {"loyalty_tier": "gold"})
        frozen.move_to(T0 + 395 * DAY - SECOND)
        assert api.view("u-1", "personalization")["attributes"] == {"loyalty_tier": "gold"}
        frozen.move_to(T0 + 395 * DAY)
        view = api.view("u-1", "personalization")
    assert view["status"] == "expired" and view["attributes"] == {}
    assert view["withheld"] == [{"attribute": "loyalty_tier", "reason": "consent_expired"}]


def test_reconsent_required_after_the_purpose_version_changes(api, app_config, tmp_path):
    api.consent("u-1", personalization="granted")
    api.write("u-1", {"loyalty_tier": "gold"})
    target, purposes, attributes = copy_policy(tmp_path, "bumped")
    purposes["purposes"][0]["version"] = 3
    app2 = second_app(app_config, save_policy(target, purposes, attributes))
    try:
        api2 = api.on(app2.test_client(), app2.extensions["gateway"])
        view = api2.view("u-1", "personalization")
        assert view["status"] == "reconsent_required" and view["attributes"] == {}
        assert view["withheld"] == [{"attribute": "loyalty_tier", "reason": "reconsent_required"}]
        assert view["policy_version"] != api.view("u-1", "personalization")["policy_version"]
        api2.consent("u-1", personalization="granted")
        assert api2.view("u-1", "personalization")["attributes"] == {"loyalty_tier": "gold"}
    finally:
        app2.extensions["gateway"].db.dispose()


def test_retention_expired_at_retention_days(api):
    with freeze_time(T0) as frozen:
        api.consent("u-1", personalization="granted")
        api.write("u-1", {"browsing_categories": ["outdoor"], "purchase_categories": ["kitchen"],
                          "loyalty_tier": "gold"})
        frozen.move_to(T0 + 180 * DAY - SECOND)
        assert set(api.view("u-1", "personalization")["attributes"]) == {
            "browsing_categories", "purchase_categories", "loyalty_tier"}
        frozen.move_to(T0 + 180 * DAY)
        view = api.view("u-1", "personalization")
        assert view["effective"] is True
        assert view["attributes"] == {"purchase_categories": ["kitchen"], "loyalty_tier": "gold"}
        assert view["withheld"] == [{"attribute": "browsing_categories", "reason": "retention_expired"}]
        api.write("u-1", {"browsing_categories": ["running"]})  # a new value starts a new period
        assert api.view("u-1", "personalization")["attributes"]["browsing_categories"] == ["running"]


def test_the_first_reason_that_applies_is_given(api):
    """not_permitted_for_purpose, then the legal-basis reason, then retention_expired."""
    with freeze_time(T0) as frozen:
        api.consent("u-1", personalization="granted")
        api.write("u-1", PERSONALIZATION_PROFILE)
        frozen.move_to(T0 + 200 * DAY)  # browsing_categories is past retention, the consent is not
        assert api.view("u-1", "personalization")["withheld"] == [
            {"attribute": "email", "reason": "not_permitted_for_purpose"},
            {"attribute": "browsing_categories", "reason": "retention_expired"},
            {"attribute": "age_range", "reason": "not_permitted_for_purpose"}]
        assert api.view("u-1", "ads")["withheld"] == [  # not asked beats retention
            {"attribute": "email", "reason": "not_permitted_for_purpose"},
            {"attribute": "browsing_categories", "reason": "no_consent"},
            {"attribute": "loyalty_tier", "reason": "not_permitted_for_purpose"},
            {"attribute": "age_range", "reason": "no_consent"}]
        frozen.move_to(T0 + 400 * DAY)  # and now the consent has expired too
        assert api.view("u-1", "personalization")["withheld"] == [
            {"attribute": "email", "reason": "not_permitted_for_purpose"},
            {"attribute": "browsing_categories", "reason": "consent_expired"},
            {"attribute": "loyalty_tier", "reason": "consent_expired"},
            {"attribute": "age_range", "reason": "not_permitted_for_purpose"}]


class TestExtendedCatalogue:
    """The demo catalogue plus a boolean attribute, and `analytics` (legitimate interest) on
    orders_count: the demo lists no attribute for analytics and has no boolean."""

    @pytest.fixture
    def policy_dir(self, tmp_path):
        target, purposes, attributes = copy_policy(tmp_path, "extended")
        for attribute in attributes["attributes"]:
            if attribute["id"] == "orders_count":
                attribute["purposes"].append("analytics")
        attributes["attributes"].append({
            "id": "returning_customer", "type": "boolean",
            "data_category": "user.behavior.purchase_history", "purposes": ["personalization"]})
        return save_policy(target, purposes, attributes)

    def test_objected(self, api):
        api.write("u-1", {"orders_count": 3, "loyalty_tier": "gold"})
        view = api.view("u-1", "analytics")
        assert view["status"] == "permitted" and view["attributes"] == {"orders_count": 3}
        assert view["withheld"] == [{"attribute": "loyalty_tier", "reason": "not_permitted_for_purpose"}]
        api.consent("u-1", analytics="denied")
        view = api.view("u-1", "analytics")
        assert view["status"] == "objected" and view["effective"] is False
        assert view["attributes"] == {}
        assert view["withheld"] == [{"attribute": "orders_count", "reason": "objected"},
                                    {"attribute": "loyalty_tier", "reason": "not_permitted_for_purpose"}]
        api.consent("u-1", analytics="granted")
        assert api.view("u-1", "analytics")["attributes"] == {"orders_count": 3}

    def test_released_values_keep_their_catalogue_types(self, api):
        api.consent("u-1", personalization="granted")
        written = {"last_purchase_date": "2026-10-30", "browsing_categories": ["outdoor", "running"],
                   "orders_count": 7, "total_spend_eur": 129.5, "returning_customer": True,
                   "loyalty_tier": "gold", "purchase_categories": []}
        api.write("u-1", written)
        r = api.client.get("/v1/subjects/u-1/profile?purpose=personalization", headers=api.headers())
        released = json.loads(r.get_data())["attributes"]
        assert released == written
        assert type(released["orders_count"]) is int
        assert type(released["total_spend_eur"]) is float
        assert released["returning_customer"] is True
        assert released["last_purchase_date"] == "2026-10-30"
        # falsy values are values: released, not dropped
        api.write("u-1", {"orders_count": 0, "returning_customer": False, "total_spend_eur": 0,
                          "loyalty_tier": ""})
        released = api.view("u-1", "personalization")["attributes"]
        assert released["orders_count"] == 0 and type(released["orders_count"]) is int
        assert released["returning_customer"] is False
        assert released["total_spend_eur"] == 0 and released["loyalty_tier"] == ""


def test_unknown_purpose_is_422_before_the_purpose_binding_403(client, gw, make_client, token_for, auth):
    credentials = make_client(["profile:read"], ["ads"])
    headers = auth(token_for(credentials))
    r = client.get("/v1/subjects/u-1/profile?purpose=no_such_purpose", headers=headers)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "purpose"
    r = client.get("/v1/subjects/u-1/profile?purpose=personalization", headers=headers)
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert client.get("/v1/subjects/u-1/profile?purpose=ads", headers=headers).status_code == 200
    denied = [e["data"] for e in audited(gw, "access.denied")]
    assert denied == [{"reason": "purpose", "purpose": "personalization"}]


@pytest.mark.parametrize("path", ["/v1/subjects/u-1/profile", "/v1/subjects/u-1/profile?purpose=",
                                  "/v1/subjects/u-1/profile?purpose=Personalization"])
def test_missing_or_unknown_purpose_is_422(api, path):
    r = api.client.get(path, headers=api.headers())
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "purpose"


def test_unknown_subject_is_an_empty_view(api):
    view = api.view("nobody", "personalization")
    assert view["subject_id"] == "nobody" and view["attributes"] == {} and view["withheld"] == []
    assert view["effective"] is False and view["status"] == "not_asked"


def test_writes_and_releases_are_audited_with_names_never_values(api, gw):
    subject = "audit-subject-5c1d"
    api.consent(subject, personalization="granted")
    api.write(subject, {"loyalty_tier": "value-marker-1", "email": "value-marker-2@example.test",
                        "orders_count": 918273})
    api.write(subject, {"email": None})
    api.view(subject, "personalization")
    pseudonym = gw.pseudonymize(subject)
    client_id = api.credentials["client_id"]
    updated = audited(gw, "profile.updated")
    assert [e["data"]["attributes"] for e in updated] == [["email", "loyalty_tier", "orders_count"], []]
    assert updated[1]["data"]["removed"] == ["email"]
    assert {(e["actor"], e["subject"]) for e in updated} == {(client_id, pseudonym)}
    [released] = audited(gw, "profile.released")
    assert released["actor"] == client_id and released["subject"] == pseudonym
    assert released["data"]["purpose"] == "personalization"
    assert released["data"]["attributes"] == ["loyalty_tier", "orders_count"]
    everything = json.dumps([[str(v) for v in r] for r in query(gw, "SELECT * FROM audit_events")])
    for value in ("value-marker-1", "value-marker-2", "918273", subject):
        assert value not in everything


# -- export and erasure ---------------------------------------------------------------------------


def test_export_holds_everything_about_the_subject(api, gw):
    notice = api.client.post("/v1/notices/served", headers=api.headers(), json={
        "subject_id": "u-1", "purposes": ["personalization", "ads"], "locale": "de"}).json
    api.consent("u-1", notice_id=notice["notice_id"], personalization="granted", ads="granted")
    api.consent("u-1", ads="denied")
    api.write("u-1", {"loyalty_tier": "gold", "browsing_categories": ["outdoor"],
                      "last_purchase_date": "2026-02-01"})
    api.view("u-1", "personalization")
    api.consent("other", personalization="granted")
    api.write("other", {"loyalty_tier": "bronze"})

    export = api.export("u-1")
    assert export["subject_id"] == "u-1" and export["erasure"] is None
    states = {p["purpose"]: p for p in export["consents"]["purposes"]}
    assert states["personalization"]["status"] == "granted" and states["ads"]["status"] == "withdrawn"
    assert [(h["purpose"], h["status"]) for h in export["consents"]["history"]] == [
        ("personalization", "granted"), ("ads", "granted"), ("ads", "denied")]
    assert [n["notice_id"] for n in export["notices"]] == [notice["notice_id"]]
    profile = {a["attribute"]: a for a in export["profile"]}
    assert {k: a["value"] for k, a in profile.items()} == {
        "loyalty_tier": "gold", "browsing_categories": ["outdoor"], "last_purchase_date": "2026-02-01"}
    for name, entry in profile.items():
        attribute = gw.policy.attribute(name)
        assert entry["data_category"] == attribute.data_category
        assert entry["purposes"] == list(attribute.purposes) and entry["type"] == attribute.type
    assert profile["browsing_categories"]["retention_days"] == 180
    types = [e["type"] for e in export["audit_events"]]
    for expected in ("notice.served", "consent.recorded", "profile.updated", "profile.released"):
        assert expected in types
    assert "bronze" not in json.dumps(export)  # nothing of the other subject
    assert {p["purpose"] for p in export["processing"]["purposes"]} == set(gw.policy.purpose_ids)
    for activity in export["processing"]["purposes"]:
        assert activity["legal_basis"] and "retention" in activity
    [exported] = audited(gw, "subject.exported")
    assert exported["subject"] == gw.pseudonymize("u-1")
    assert exported["actor"] == api.credentials["client_id"]


def test_erasure(api, gw):
    api.consent("u-1", personalization="granted", ads="denied")
    api.write("u-1", {"loyalty_tier": "gold", "browsing_categories": ["outdoor"], "email": "a@b.test"})
    api.write("u-2", {"loyalty_tier": "silver"})
    pseudonym = gw.pseudonymize("u-1")
    [old_key] = query(gw, "SELECT wrapped FROM subject_keys WHERE subject = :s", s=pseudonym)
    events = query(gw, "SELECT id, status FROM consent_events WHERE subject = :s ORDER BY id", s=pseudonym)

    r = api.erase("u-1")
    assert r.status_code == 200
    assert set(r.json) == {"subject_id", "erased_at"} and r.json["subject_id"] == "u-1"
    assert r.json["erased_at"].endswith("Z")

    for purpose in gw.policy.purpose_ids:
        view = api.view("u-1", purpose)
        assert view["attributes"] == {} and view["withheld"] == [], purpose
    export = api.export("u-1")
    assert export["erasure"]["erased_at"] == r.json["erased_at"]
    assert export["erasure"]["actor"] == api.credentials["client_id"]
    assert export["profile"] == [] and export["decisions"] == []
    history = export["consents"]["history"]  # the consent history stays as proof
    assert [(h["purpose"], h["status"], h["method"]) for h in history[:2]] == [
        ("personalization", "granted", "api"), ("ads", "denied", "api")]
    assert {h["method"] for h in history[2:]} == {"erasure"}
    assert query(gw, "SELECT * FROM subject_keys WHERE subject = :s", s=pseudonym) == []
    assert query(gw, "SELECT * FROM profile_values WHERE subject = :s", s=pseudonym) == []
    after = query(gw, "SELECT id, status FROM consent_events WHERE subject = :s ORDER BY id", s=pseudonym)
    assert after[:len(events)] == events  # earlier events untouched, the erasure's appended
    [erased] = audited(gw, "subject.erased")
    assert erased["subject"] == pseudonym and erased["data"]["values_deleted"] == 3
    assert api.stored("u-2") == {"loyalty_tier": "silver"}  # nobody else is touched
    assert api.erase("u-1").status_code == 200  # erasing again is harmless

    refused = api.client.patch("/v1/subjects/u-1/profile", headers=api.headers(),
                               json={"attributes": {"loyalty_tier": "platinum"}})
    assert refused.status_code == 409 and refused.json["code"] == "subject_erased"
    api.consent("u-1", personalization="granted")  # a new consent after the erasure
    api.write("u-1", {"loyalty_tier": "platinum"})  # new data after erasure: a new key
    [new_key] = query(gw, "SELECT wrapped FROM subject_keys WHERE subject = :s", s=pseudonym)
    assert new_key != old_key
    export = api.export("u-1")
    assert export["erasure"] is not None  # the erasure record is permanent
    assert {a["attribute"]: a["value"] for a in export["profile"]} == {"loyalty_tier": "platinum"}
    assert api.view("u-1", "personalization")["attributes"] == {"loyalty_tier": "platinum"}


def test_erasing_an_unknown_subject_is_fine(api, gw):
    r = api.erase("never-seen")
    assert r.status_code == 200 and r.json["subject_id"] == "never-seen"
    assert api.export("never-seen")["erasure"] is not None


# -- retention purge -------------------------------------------------------------------------------


def test_purge_deletes_expired_values_and_keeps_fresh_ones(api, gw, runner):
    with freeze_time(T0) as frozen:
        api.consent("old", personalization="granted")
        api.write("old", {"browsing_categories": ["outdoor"], "purchase_categories": ["kitchen"],
                          "loyalty_tier": "gold"})
        frozen.move_to(T0 + 100 * DAY)
        api.write("fresh", {"browsing_categories": ["running"]})
        frozen.move_to(T0 + 180 * DAY - SECOND)
        result = runner.invoke(args=["purge"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["purged"] == {}
        frozen.move_to(T0 + 180 * DAY)
        assert api.view("old", "personalization")["withheld"] == [
            {"attribute": "browsing_categories", "reason": "retention_expired"}]
        result = runner.invoke(args=["purge"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["purged"] == {"browsing_categories": 1}
        view = api.view("old", "personalization")
        assert view["withheld"] == []  # purged: no longer listed
        assert view["attributes"] == {"purchase_categories": ["kitchen"], "loyalty_tier": "gold"}
        assert api.stored("fresh") == {"browsing_categories": ["running"]}
    left = {(s, a) for s, a in query(gw, "SELECT subject, attribute FROM profile_values")}
    assert left == {(gw.pseudonymize("old"), "purchase_categories"),
                    (gw.pseudonymize("old"), "loyalty_tier"),
                    (gw.pseudonymize("fresh"), "browsing_categories")}
    assert [e["data"].get("counts") for e in audited(gw, "profile.purged")] == [
        None, {"browsing_categories": 1}]


# -- master key rotation ----------------------------------------------------------------------------

SERVICE_PROFILE = {"email": "a@example.test", "orders_count": 5, "last_purchase_date": "2026-01-31"}


def ciphertexts(gw) -> list:
    return sorted(tuple(r) for r in query(gw, "SELECT subject, attribute, ciphertext FROM profile_values"))


def keks(gw) -> set[str]:
    return {r[0] for r in query(gw, "SELECT kek_id FROM subject_keys")}


def service_view(gw, subject: str) -> dict:
    return profiles.read_view(gw, CLI, subject, "service")["attributes"]


def test_rotate_master_with_a_new_dev_key(app_config):
    dev_config = {**app_config, "GATEWAY_MASTER_KEY": ""}  # the dev key in the instance dir
    app = create_app(dev_config)
    gw = app.extensions["gateway"]
    try:
        for subject in ("u-1", "u-2"):
            profiles.update_profile(gw, CLI, subject, SERVICE_PROFILE)
        before_keks, before_values = keks(gw), ciphertexts(gw)
        assert before_keks == {gw.keyring.current}
        result = app.test_cli_runner().invoke(args=["keys", "rotate-master", "--new-dev-key"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output[result.output.index("{"):])
        assert out["rewrapped"] == 2 and out["key_id"] == gw.keyring.current
        assert keks(gw) == {out["key_id"]} and out["key_id"] not in before_keks
        assert ciphertexts(gw) == before_values  # the values are not touched
        assert service_view(gw, "u-1") == SERVICE_PROFILE
        assert [e["data"]["rewrapped"] for e in audited(gw, "key.rotated")] == [2]
    finally:
        gw.db.dispose()
    restarted = create_app(dev_config)  # the new key (and the old one) persist in the instance dir
    try:
        gw2 = restarted.extensions["gateway"]
        assert gw2.keyring.current == out["key_id"]
        assert service_view(gw2, "u-2") == SERVICE_PROFILE
    finally:
        restarted.extensions["gateway"].db.dispose()


def test_new_dev_key_is_refused_when_the_master_key_is_set(gw, runner):
    profiles.update_profile(gw, CLI, "u-1", SERVICE_PROFILE)
    before = keks(gw)
    result = runner.invoke(args=["keys", "rotate-master", "--new-dev-key"])
    assert result.exit_code != 0
    assert "GATEWAY_MASTER_KEY is set" in result.output and "Traceback" not in result.output
    assert keks(gw) == before


def test_rotate_master_after_prepending_a_key(app_config, gw):
    import base64

    for subject in ("u-1", "u-2", "u-3"):
        profiles.update_profile(gw, CLI, subject, SERVICE_PROFILE)
    old_kek, before_values = gw.keyring.current, ciphertexts(gw)
    new_key = base64.b64encode(b"n" * 32).decode()
    rotated = create_app({**app_config,
                          "GATEWAY_MASTER_KEY": f"{new_key},{app_config['GATEWAY_MASTER_KEY']}"})
    gw2 = rotated.extensions["gateway"]
    try:
        assert service_view(gw2, "u-1") == SERVICE_PROFILE  # readable with the old key still in the ring
        result = rotated.test_cli_runner().invoke(args=["keys", "rotate-master"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out == {"key_id": key_id(b"n" * 32), "rewrapped": 3}
        assert keks(gw2) == {key_id(b"n" * 32)} != {old_kek}
        assert ciphertexts(gw2) == before_values
        again = rotated.test_cli_runner().invoke(args=["keys", "rotate-master"])
        assert json.loads(again.output)["rewrapped"] == 0
    finally:
        gw2.db.dispose()
    new_only = create_app({**app_config, "GATEWAY_MASTER_KEY": new_key})  # the old key dropped
    try:
        gw3 = new_only.extensions["gateway"]
        for subject in ("u-1", "u-2", "u-3"):
            assert service_view(gw3, subject) == SERVICE_PROFILE
    finally:
        new_only.extensions["gateway"].db.dispose()


# -- CLI: subjects export / erase -----------------------------------------------------------------


def test_cli_subjects_export_and_erase(api, gw, runner):
    api.consent("u-1", personalization="granted")
    api.write("u-1", {"loyalty_tier": "gold"})
    result = runner.invoke(args=["subjects", "export", "u-1"])
    assert result.exit_code == 0, result.output
    export = json.loads(result.output)
    assert export["subject_id"] == "u-1"
    assert [(a["attribute"], a["value"]) for a in export["profile"]] == [("loyalty_tier", "gold")]
    assert audited(gw, "subject.exported")[-1]["actor"] == "cli"

    result = runner.invoke(args=["subjects", "erase", "u-1", "--yes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["subject_id"] == "u-1"
    assert audited(gw, "subject.erased")[-1]["actor"] == "cli"
    assert api.stored("u-1") == {}
    assert json.loads(runner.invoke(args=["subjects", "export", "u-1"]).output)["erasure"]["actor"] == "cli"

    result = runner.invoke(args=["subjects", "erase", "x" * 257, "--yes"])
    assert result.exit_code != 0 and "subject_id" in result.output and "Traceback" not in result.output
