"""Audited in the same transaction as the release: a failure right after the audit INSERT leaves
neither the release nor the event (both engines).

The failure is injected into `services.audit.record` / `record_each`: the real INSERT runs,
then the call raises, inside the transaction that also holds the release. Afterwards the
database holds no event of that type and no released thing (no decision row, no receipt),
the client gets a clean 500 problem that carries no attribute value, and once the fault is
gone the same request works and is audited.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from gateway.services import audit

SCOPES = ["profile:write", "profile:read", "decision:write", "consent:write"]
SUBJECT = "atomic-subject-1"
SECRET_TIER = "platinum"


class Injected(RuntimeError):
    """The fault: raised after the audit row has been sent to the database."""


def fail_after(monkeypatch, function: str, event_type: str) -> list[str]:
    """Make audit.<function> insert as usual, then raise, for events of `event_type`."""
    real = getattr(audit, function)
    inserted: list[str] = []

    def wrapper(session, type, **kwargs):
        real(session, type, **kwargs)
        if type == event_type:
            session.flush()
            count = session.execute(sa.text("SELECT count(*) FROM audit_events WHERE type = :t"),
                                    {"t": type}).scalar_one()
            assert count >= 1, "the audit row was not inserted before the fault"
            inserted.append(type)
            raise Injected(f"injected after the {type} insert")

    monkeypatch.setattr(audit, function, wrapper)
    return inserted


def rows(gw, sql: str, **params) -> list:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def events(gw, type_: str) -> list:
    return rows(gw, "SELECT data FROM audit_events WHERE type = :t", t=type_)


@pytest.fixture
def service(gw, client):
    from gateway.services.auth import clients, tokens

    created = clients.create_client(gw, "backend", SCOPES, ["personalization"])
    token = tokens.issue_token(gw, grant_type="client_credentials", client_id=created["client_id"],
                                client_secret=created["client_secret"], scope=None,
                                remote_addr="127.0.0.1")
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def plain(app):
    """A client that does not check the contract: a 500 is a fault, not part of the API."""
    return app.test_client()


@pytest.fixture
def granted(client, banner, service):
    r = client.post("/v1/consents", headers=banner, json={
        "subject_id": SUBJECT, "purposes": {"personalization": "granted"}, "locale": "en"})
    assert r.status_code == 201
    r = client.patch(f"/v1/subjects/{SUBJECT}/profile", headers=service,
                     json={"attributes": {"loyalty_tier": SECRET_TIER, "orders_count": 3}})
    assert r.status_code == 200, r.json


def assert_clean_500(response):
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    body = response.get_data(as_text=True)
    assert json.loads(body)["status"] == 500
    assert SECRET_TIER not in body and "Injected" not in body and "Traceback" not in body


def test_profile_read_fault_after_audit_releases_nothing(gw, plain, service, granted, monkeypatch):
    inserted = fail_after(monkeypatch, "record", "profile.released")
    r = plain.get(f"/v1/subjects/{SUBJECT}/profile?purpose=personalization", headers=service)
    assert inserted == ["profile.released"]
    assert_clean_500(r)
    assert events(gw, "profile.released") == []

    monkeypatch.undo()  # the fault gone, the same read releases and is audited once
    r = plain.get(f"/v1/subjects/{SUBJECT}/profile?purpose=personalization", headers=service)
    assert r.status_code == 200 and r.get_json()["attributes"]["loyalty_tier"] == SECRET_TIER
    assert len(events(gw, "profile.released")) == 1


def test_decision_fault_after_audit_leaves_no_decision(gw, plain, service, granted, monkeypatch):
    decisions_before = rows(gw, "SELECT id FROM decisions")
    inserted = fail_after(monkeypatch, "record", "decision.made")
    r = plain.post("/v1/decisions", headers=service,
                   json={"subject_id": SUBJECT, "placement": "homepage_hero", "locale": "en"})
    assert inserted == ["decision.made"]
    assert_clean_500(r)
    assert rows(gw, "SELECT id FROM decisions") == decisions_before == []
    assert events(gw, "decision.made") == []

    monkeypatch.undo()
    r = plain.post("/v1/decisions", headers=service,
                   json={"subject_id": SUBJECT, "placement": "homepage_hero", "locale": "en"})
    assert r.status_code in (200, 201), r.get_json()
    assert r.get_json()["personalized"] is True
    assert len(rows(gw, "SELECT id FROM decisions")) == 1 and len(events(gw, "decision.made")) == 1


def test_consent_write_fault_after_audit_records_nothing(gw, plain, banner, monkeypatch):
    before = {t: rows(gw, f"SELECT count(*) FROM {t}")[0][0]
              for t in ("receipts", "consent_events", "consent_state", "audit_events")}
    inserted = fail_after(monkeypatch, "record_each", "consent.recorded")
    r = plain.post("/v1/consents", headers={**banner, "Idempotency-Key": "atomic-1"}, json={
        "subject_id": SUBJECT, "purposes": {"personalization": "granted"}, "locale": "en"})
    if not inserted:
        pytest.fail("the consent write does not audit through record_each('consent.recorded')")
    assert_clean_500(r)
    after = {t: rows(gw, f"SELECT count(*) FROM {t}")[0][0] for t in before}
    assert after == before

    monkeypatch.undo()  # and the same Idempotency-Key is not burnt by the failed attempt
    r = plain.post("/v1/consents", headers={**banner, "Idempotency-Key": "atomic-1"}, json={
        "subject_id": SUBJECT, "purposes": {"personalization": "granted"}, "locale": "en"})
    assert r.status_code == 201
    assert rows(gw, "SELECT count(*) FROM receipts")[0][0] == before["receipts"] + 1
