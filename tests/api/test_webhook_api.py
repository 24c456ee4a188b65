"""The webhook endpoints over HTTP (every response checked against openapi.yaml), the delivery
log, retry, replay, the Art. 30 report's recipients, and bad input that changes nothing."""

from __future__ import annotations

import json

import pytest
from webhook_helpers import failed_delivery, outbox

from gateway.services.webhooks_worker import Worker


@pytest.fixture
def dpo(make_client, token_for, auth):
    return auth(token_for(make_client(["webhooks:manage", "audit:read", "consent:write"])))


def create(client, dpo, **body):
    body.setdefault("url", "http://127.0.0.1:9/hook")
    body.setdefault("events", ["consent.changed"])
    return client.post("/v1/webhooks", json=body, headers=dpo)


def test_create_show_list_update_delete(client, dpo, gw):
    r = create(client, dpo, purposes=["ads"], description="CRM", events=["consent.changed",
                                                                         "subject.erased"])
    assert r.status_code == 201, r.json
    hook = r.json
    assert hook["secret"].startswith("whsec_") and hook["status"] == "active"
    webhook_id = hook["webhook_id"]
    shown = client.get(f"/v1/webhooks/{webhook_id}", headers=dpo).json
    assert "secret" not in shown and shown["purposes"] == ["ads"]
    assert json.dumps(client.get("/v1/webhooks", headers=dpo).json).count(webhook_id) == 1
    assert hook["secret"] not in client.get("/v1/webhooks", headers=dpo).get_data(as_text=True)
    r = client.patch(f"/v1/webhooks/{webhook_id}", headers=dpo,
                     json={"status": "disabled", "purposes": None, "description": None})
    assert r.status_code == 200
    assert (r.json["status"], r.json["purposes"], r.json["disabled_reason"]) == ("disabled", None, "manual")
    rotated = client.post(f"/v1/webhooks/{webhook_id}/rotate-secret", headers=dpo)
    assert rotated.status_code == 200 and rotated.json["secret"] != hook["secret"]
    assert rotated.json["previous_secret_until"] is not None
    gone = client.delete(f"/v1/webhooks/{webhook_id}", headers=dpo)
    assert gone.status_code == 200 and gone.json["webhook_id"] == webhook_id
    assert client.get(f"/v1/webhooks/{webhook_id}", headers=dpo).status_code == 404
    assert client.delete(f"/v1/webhooks/{webhook_id}", headers=dpo).status_code == 404


@pytest.mark.parametrize(("body", "fields"), [
    ({"url": "ftp://x/", "events": ["consent.changed"]}, {"url"}),
    ({"url": "http://127.0.0.1:9/", "events": ["consent.unknown"]}, {"events[0]"}),
    ({"url": "http://127.0.0.1:9/", "events": []}, {"events"}),
    ({"url": "http://127.0.0.1:9/", "events": "consent.changed"}, {"events"}),
    ({"url": "http://127.0.0.1:9/", "events": ["consent.changed"], "purposes": ["nope"]}, {"purposes[0]"}),
    ({"url": "http://127.0.0.1:9/", "events": ["consent.changed"], "purposes": "ads"}, {"purposes"}),
    ({"url": "http://127.0.0.1:9/", "events": ["consent.changed"], "description": 42}, {"description"}),
    ({"url": "http://127.0.0.1:9/", "events": ["consent.changed"], "secret": "mine"}, {"secret"}),
    ({"events": ["consent.changed"]}, {"url"}),
    ({"url": "http://127.0.0.1:9/"}, {"events"}),
    ({"url": ["http://127.0.0.1:9/"], "events": ["consent.changed"]}, {"url"}),
])
def test_bad_subscriptions_are_422_and_change_nothing(client, dpo, gw, body, fields):
    r = client.post("/v1/webhooks", json=body, headers=dpo)
    assert r.status_code == 422, r.json
    assert {e["field"] for e in r.json["errors"]} == fields
    assert client.get("/v1/webhooks", headers=dpo).json == {"webhooks": []}


def test_bad_bodies_and_unknown_ids(client, dpo):
    assert client.post("/v1/webhooks", data="{nope", headers=dpo,
                       content_type="application/json").status_code == 400
    assert client.post("/v1/webhooks", data="url=x", headers=dpo,
                       content_type="application/x-www-form-urlencoded").status_code == 415
    assert client.post("/v1/webhooks", json=[1], headers=dpo).status_code == 422
    webhook_id = create(client, dpo).json["webhook_id"]
    assert client.patch(f"/v1/webhooks/{webhook_id}", json={"status": "paused"},
                        headers=dpo).status_code == 422
    assert client.patch(f"/v1/webhooks/{webhook_id}", json={"id": "x"}, headers=dpo).status_code == 422
    assert client.patch("/v1/webhooks/whk_nope", json={}, headers=dpo).status_code == 404
    assert client.get("/v1/webhooks/whk_nope/deliveries", headers=dpo).status_code == 404
    assert client.get(f"/v1/webhooks/{webhook_id}/deliveries?status=lost",
                      headers=dpo).status_code == 422
    assert client.get(f"/v1/webhooks/{webhook_id}/deliveries?limit=0", headers=dpo).status_code == 422
    assert client.post(f"/v1/webhooks/{webhook_id}/deliveries/dlv_1/retry",
                       headers=dpo).status_code == 404
    assert client.post(f"/v1/webhooks/{webhook_id}/deliveries/x%00/retry",
                       headers=dpo).status_code == 404
    for since in ("yesterday", "2026-01-01T00:00:00", 5, None):
        assert client.post(f"/v1/webhooks/{webhook_id}/replay", json={"since": since},
                           headers=dpo).status_code == 422
    assert client.post(f"/v1/webhooks/{webhook_id}/replay", json={}, headers=dpo).status_code == 422
    assert client.post("/v1/webhooks/whk_nope/replay", json={"since": "2026-01-01T00:00:00Z"},
                       headers=dpo).status_code == 404


def test_the_log_shows_failed_first_and_retry_resends(client, dpo, gw, receiver, banner):
    webhook_id, delivery_id = failed_delivery(gw, receiver.url)
    client.patch(f"/v1/webhooks/{webhook_id}", json={"events": ["policy.changed", "consent.changed"]},
                 headers=dpo)
    assert client.post("/v1/consents", headers=banner, json={
        "subject_id": "s-1", "purposes": {"ads": "denied"}}).status_code == 201
    w = Worker(gw)
    try:
        w.drain()
        log = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=dpo).json
        # the consent, and the policy.changed of the policy's first use
        assert [d["status"] for d in log["deliveries"]] == ["failed", "delivered", "delivered"]
        assert log["deliveries"][0]["delivery_id"] == delivery_id
        assert all("s-1" not in json.dumps(d) for d in log["deliveries"])
        only = client.get(f"/v1/webhooks/{webhook_id}/deliveries?status=delivered", headers=dpo).json
        assert [d["status"] for d in only["deliveries"]] == ["delivered", "delivered"]
        again = client.post(f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", headers=dpo)
        assert again.status_code == 200 and again.json["status"] == "pending"
        conflict = client.post(f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", headers=dpo)
        assert conflict.status_code == 409 and conflict.json["code"] == "not_failed"
        w.drain()
    finally:
        w.close()
    assert {d["status"] for d in client.get(f"/v1/webhooks/{webhook_id}/deliveries",
                                            headers=dpo).json["deliveries"]} == {"delivered"}
    replayed = client.post(f"/v1/webhooks/{webhook_id}/replay", json={"since": "2020-01-01T00:00:00Z"},
                           headers=dpo)
    assert replayed.status_code == 200
    assert replayed.json["unavailable"] == 3 and replayed.json["replayed"] == 0
    counts = client.get(f"/v1/webhooks/{webhook_id}", headers=dpo).json["deliveries"]
    assert counts == {"pending": 0, "retrying": 0, "delivered": 3, "failed": 0}


def test_the_processing_report_lists_subscribed_recipients(client, dpo):
    create(client, dpo, url="http://127.0.0.1:9/crm", description="Newsletter tool", purposes=["ads"])
    create(client, dpo, url="http://127.0.0.1:9/all", events=["subject.erased"])
    create(client, dpo, url="http://127.0.0.1:9/policy", events=["policy.changed"])
    report = client.get("/v1/reports/processing", headers=dpo).json
    by_purpose = {a["purpose"]: [r for r in a["recipients"] if r["type"] == "webhook"]
                  for a in report["activities"]}
    assert [r["name"] for r in by_purpose["ads"]] == ["Newsletter tool", "127.0.0.1"]
    assert [r["name"] for r in by_purpose["personalization"]] == ["127.0.0.1"]
    assert all(r["url"] != "http://127.0.0.1:9/policy" for rs in by_purpose.values() for r in rs)
    html = client.get("/v1/reports/processing?format=html", headers=dpo).get_data(as_text=True)
    assert "Newsletter tool" in html


def test_the_secret_is_stored_wrapped(client, dpo, gw):
    import sqlalchemy as sa

    secret = create(client, dpo).json["secret"]
    raw = secret.removeprefix("whsec_")
    with gw.db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM webhooks")).one()._mapping
    assert all(raw not in str(v) for v in row.values())
    assert all(__import__("base64").b64decode(raw) not in bytes(v) for v in row.values()
               if isinstance(v, bytes | memoryview))
    assert outbox(gw) == []


@pytest.mark.parametrize("body", [
    {"url": "http://127.0.0.1:9/", "events": [{"a": 1}]},
    {"url": "http://127.0.0.1:9/", "events": [["consent.changed"]]},
    {"url": "http://127.0.0.1:9/", "events": ["consent.changed"], "purposes": [{"a": 1}]},
    {"url": {"a": 1}, "events": ["consent.changed"]},
])
def test_values_of_the_wrong_kind_are_422_not_500(client, dpo, body):
    r = client.post("/v1/webhooks", json=body, headers=dpo)
    assert r.status_code == 422, r.json
    webhook_id = create(client, dpo).json["webhook_id"]
    r = client.patch(f"/v1/webhooks/{webhook_id}", json=body, headers=dpo)
    assert r.status_code == 422, r.json
