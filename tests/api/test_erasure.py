"""Erasure stops processing (GDPR Art. 17), over HTTP and the CLI, on both databases.

`DELETE /v1/subjects/{id}` records, in its own transaction, every consent purpose withdrawn
and every legitimate-interest purpose objected (method `erasure`); the erasure record is
permanent; a profile write is a 409 `subject_erased` until a consent given after the
erasure; the export says when the subject was erased and keeps the consent history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from gateway.services import profiles

SCOPES = ("profile:write", "profile:read", "subject:export", "subject:erase", "consent:write",
          "consent:read", "decision:write")
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with freeze_time(T0) as clock:
        yield clock


@pytest.fixture
def svc(frozen, gw, make_client, token_for, auth) -> dict:
    """A service token minted at T0, the frozen time every test here runs at."""
    return auth(token_for(make_client(SCOPES, gw.policy.purpose_ids)))


def consent(client, svc, subject="u-1", **purposes):
    r = client.post("/v1/consents", headers=svc, json={"subject_id": subject, "purposes": purposes})
    assert r.status_code == 201, r.json
    return r.json


def write(client, svc, subject="u-1", **attributes):
    return client.patch(f"/v1/subjects/{subject}/profile", headers=svc, json={"attributes": attributes})


def states(client, svc, subject="u-1") -> dict:
    r = client.get(f"/v1/subjects/{subject}/consents", headers=svc)
    assert r.status_code == 200, r.json
    return {p["purpose"]: p for p in r.json["purposes"]}


def export(client, svc, subject="u-1") -> dict:
    r = client.get(f"/v1/subjects/{subject}/export", headers=svc)
    assert r.status_code == 200, r.json
    return r.json


def count(gw, sql: str, **params) -> int:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_erasure_withdraws_every_consent_and_objects_to_every_legitimate_interest(client, svc, gw, frozen):
    consent(client, svc, personalization="granted", ads="granted", analytics="granted")
    assert write(client, svc, browsing_categories=["outdoor"]).status_code == 200
    frozen.tick(timedelta(minutes=1))
    r = client.delete("/v1/subjects/u-1", headers=svc)
    assert r.status_code == 200
    now = states(client, svc)
    assert {p: s["status"] for p, s in now.items()} == {
        "personalization": "withdrawn", "ads": "withdrawn", "health_offers": "denied",
        "analytics": "objected", "service": "permitted"}
    for purpose in ("personalization", "ads", "health_offers", "analytics"):
        assert now[purpose]["method"] == "erasure" and now[purpose]["effective"] is False
        assert now[purpose]["decided_at"] == r.json["erased_at"]
    # one receipt for the erasure's choices, in the same transaction as the erasure's audit event
    receipts = {s["receipt_id"] for p, s in now.items() if p != "service"}
    assert len(receipts) == 1
    [erased] = [e for e in export(client, svc)["audit_events"] if e["type"] == "subject.erased"]
    assert erased["receipt_id"] in receipts
    decision = client.post("/v1/decisions", headers=svc,
                           json={"subject_id": "u-1", "placement": "homepage_hero"})
    assert decision.status_code == 201 and decision.json["personalized"] is False


def test_a_profile_write_after_erasure_is_409_until_a_new_consent(client, svc, gw, frozen):
    consent(client, svc, personalization="granted")
    client.delete("/v1/subjects/u-1", headers=svc)
    before = count(gw, "SELECT COUNT(*) FROM profile_values")
    frozen.tick(timedelta(seconds=5))
    r = write(client, svc, loyalty_tier="gold")
    assert r.status_code == 409
    assert r.mimetype == "application/problem+json"
    assert r.json["code"] == "subject_erased" and r.json["erased_at"] == "2026-11-20T12:00:00Z"
    assert count(gw, "SELECT COUNT(*) FROM profile_values") == before
    assert count(gw, "SELECT COUNT(*) FROM subject_keys") == 0
    # a denial, an objection lifted or a withdrawal is not a new consent
    consent(client, svc, ads="denied", analytics="granted")
    assert write(client, svc, loyalty_tier="gold").status_code == 409
    frozen.tick(timedelta(seconds=5))
    consent(client, svc, personalization="granted")
    r = write(client, svc, loyalty_tier="gold")
    assert r.status_code == 200, r.json
    assert write(client, svc, loyalty_tier="silver").status_code == 200
    exported = export(client, svc)
    assert exported["erasure"] == {"erased_at": "2026-11-20T12:00:00Z",
                                   "actor": exported["erasure"]["actor"]}
    assert [a["value"] for a in exported["profile"]] == ["silver"]


def test_the_erasure_record_is_permanent_and_the_export_keeps_the_history(client, svc, gw, frozen):
    consent(client, svc, personalization="granted", ads="denied")
    write(client, svc, loyalty_tier="gold", email="person@example.org")
    frozen.tick(timedelta(minutes=1))
    erased_at = client.delete("/v1/subjects/u-1", headers=svc).json["erased_at"]
    first = export(client, svc)
    frozen.tick(timedelta(minutes=1))
    consent(client, svc, personalization="granted")
    assert write(client, svc, loyalty_tier="platinum").status_code == 200
    later = export(client, svc)
    assert first["erasure"]["erased_at"] == erased_at == later["erasure"]["erased_at"]
    assert first["profile"] == [] and first["decisions"] == []
    history = [(h["purpose"], h["status"], h["method"]) for h in first["consents"]["history"]]
    assert history[:2] == [("personalization", "granted", "api"), ("ads", "denied", "api")]
    assert sorted(history[2:]) == [("ads", "denied", "erasure"), ("analytics", "denied", "erasure"),
                                   ("health_offers", "denied", "erasure"),
                                   ("personalization", "denied", "erasure")]
    assert "person@example.org" not in json.dumps(first) + json.dumps(later)
    assert [h["method"] for h in later["consents"]["history"]][-1] == "api"
    assert [(a["attribute"], a["value"]) for a in later["profile"]] == [("loyalty_tier", "platinum")]
    assert count(gw, "SELECT COUNT(*) FROM erasures") == 1


def test_erasing_again_moves_the_erasure_and_stops_processing_again(client, svc, gw, frozen):
    client.delete("/v1/subjects/u-1", headers=svc)
    frozen.tick(timedelta(minutes=1))
    consent(client, svc, personalization="granted")
    assert write(client, svc, loyalty_tier="gold").status_code == 200
    frozen.tick(timedelta(minutes=1))
    second = client.delete("/v1/subjects/u-1", headers=svc).json["erased_at"]
    assert write(client, svc, loyalty_tier="gold").status_code == 409
    assert export(client, svc)["erasure"]["erased_at"] == second == "2026-11-20T12:02:00Z"
    assert states(client, svc)["personalization"]["status"] == "withdrawn"


def test_erasure_leaves_other_subjects_alone(client, svc, gw):
    consent(client, svc, subject="u-2", personalization="granted")
    assert write(client, svc, subject="u-2", loyalty_tier="gold").status_code == 200
    client.delete("/v1/subjects/u-1", headers=svc)
    assert states(client, svc, "u-2")["personalization"]["status"] == "granted"
    assert write(client, svc, subject="u-2", loyalty_tier="silver").status_code == 200
    assert export(client, svc, "u-2")["erasure"] is None


def test_cli_erase_behaves_like_the_endpoint(client, svc, gw, runner, frozen):
    consent(client, svc, personalization="granted", analytics="granted")
    write(client, svc, loyalty_tier="gold")
    frozen.tick(timedelta(minutes=1))
    result = runner.invoke(args=["subjects", "erase", "u-1", "--yes"])
    assert result.exit_code == 0, result.output
    now = states(client, svc)
    assert (now["personalization"]["status"], now["personalization"]["method"]) == (
        "withdrawn", "erasure")
    assert now["analytics"]["status"] == "objected"
    r = write(client, svc, loyalty_tier="gold")
    assert r.status_code == 409 and r.json["code"] == "subject_erased"
    frozen.tick(timedelta(minutes=1))
    consent(client, svc, personalization="granted")
    assert write(client, svc, loyalty_tier="gold").status_code == 200
    exported = json.loads(runner.invoke(args=["subjects", "export", "u-1"]).output)
    assert exported["erasure"]["actor"] == "cli"
    assert exported["erasure"]["erased_at"] == "2026-11-20T12:01:00Z"


def test_the_demo_profile_write_is_refused_for_an_erased_demo_visitor(gw):
    """Every profile write goes through the same check, whoever asks."""
    from gateway.core.actor import CLI
    from gateway.core.errors import Conflict
    from gateway.services import demo

    profiles.erase_subject(gw, CLI, "demo-1")
    with pytest.raises(Conflict) as refused:
        demo.set_interests(gw, "demo-1", ["outdoor"])
    assert refused.value.extra["code"] == "subject_erased"
