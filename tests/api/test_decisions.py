"""Decisions and "why am I seeing this" over HTTP, on both databases.

The remote personalization backend is exercised over real HTTP: the example
backend of `examples/reco_backend.py`, and a small misbehaving backend defined
here (slow, failing, malformed, citing data it was not given), each started on
a free local port for the test and pointed at by a copy of the demo policy.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from contract import ValidatingClient
from freezegun import freeze_time
from sqlalchemy import select

from gateway import create_app
from gateway.core import explain
from gateway.services.auth import clients, tokens
from gateway.store.models import AuditEvent
from gateway.store.profile_models import Decision

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))
reco_backend = importlib.import_module("examples.reco_backend")

ORIGIN = "https://shop.example"
SECRET = "s3cret"
ISSUER = "http://localhost"
ALL_SCOPES = ("consent:write", "consent:read", "profile:write", "profile:read", "decision:write",
              "decision:read", "subject:export", "subject:erase")
PROFILE = {"email": "u1@example.com", "browsing_categories": ["outdoor"], "age_range": "25-34"}
NOT_FOR_PERSONALIZATION = [{"attribute": "email", "reason": "not_permitted_for_purpose"},
                           {"attribute": "age_range", "reason": "not_permitted_for_purpose"}]
T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


# --- helpers ----------------------------------------------------------------------------------

def policy_texts(policy_dir: Path) -> dict:
    """The demo policy's explanations, straight from rules.yaml: {(placement, rule or None): texts}."""
    doc = yaml.safe_load((policy_dir / "rules.yaml").read_text())
    texts = {}
    for p in doc["placements"]:
        texts[(p["id"], None)] = {k: v.strip() for k, v in p["default"]["explanation"].items()}
        for r in p.get("rules") or []:
            texts[(p["id"], r["id"])] = {k: v.strip() for k, v in r["explanation"].items()}
    return texts


def labels(policy_dir: Path) -> dict:
    doc = yaml.safe_load((policy_dir / "attributes.yaml").read_text())
    return {a["id"]: a["label"] for a in doc["attributes"]}


def grant(client, h, status="granted", subject="u-1", purpose="personalization") -> dict:
    r = client.post("/v1/consents", headers=h,
                    json={"subject_id": subject, "purposes": {purpose: status}})
    assert r.status_code == 201, r.json
    return r.json


def set_profile(client, h, attributes, subject="u-1") -> None:
    r = client.patch(f"/v1/subjects/{subject}/profile", headers=h, json={"attributes": attributes})
    assert r.status_code == 200, r.json


def decide(client, h, placement="homepage_hero", subject="u-1", expect=201, **extra) -> dict:
    r = client.post("/v1/decisions", headers=h,
                    json={"subject_id": subject, "placement": placement, **extra})
    assert r.status_code == expect, r.json
    return r.json


def consent_state(client, h, subject="u-1", purpose="personalization") -> dict:
    r = client.get(f"/v1/subjects/{subject}/consents", headers=h)
    assert r.status_code == 200, r.json
    return next(p for p in r.json["purposes"] if p["purpose"] == purpose)


def events(gw, type_: str) -> list[AuditEvent]:
    with gw.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.id)))


def decision_rows(gw) -> list[Decision]:
    with gw.db.read() as s:
        return list(s.scalars(select(Decision).order_by(Decision.made_at)))


def text(details: list[str]) -> str:
    assert details and all(isinstance(s, str) and s.strip() for s in details)
    return " ".join(details)


@pytest.fixture
def creds(make_client):
    return make_client(ALL_SCOPES, ["personalization"])


@pytest.fixture
def svc(creds, token_for, auth) -> dict:
    return auth(token_for(creds))


@pytest.fixture
def texts(policy_dir) -> dict:
    return policy_texts(policy_dir)


# --- personalized -----------------------------------------------------------------------------

def test_personalized_decision_and_its_explanation(client, svc, texts, policy_dir):
    receipt = grant(client, svc)
    set_profile(client, svc, PROFILE)
    state = consent_state(client, svc)
    version = client.get("/v1/policy").json["version"]
    names = labels(policy_dir)
    rule_texts = texts[("homepage_hero", "outdoor-fans")]

    for asked, got in (("en", "en"), ("de", "de"), ("nb", "nb"), ("fr", "en"), ("de-AT", "de"),
                       (None, "en")):
        extra = {"locale": asked} if asked else {}
        d = decide(client, svc, **extra)
        assert d["decision_id"].startswith("dec_")
        assert (d["placement"], d["purpose"]) == ("homepage_hero", "personalization")
        assert d["personalized"] is True and d["content"] == {"id": "outdoor-jackets"}
        e = d["explanation"]
        assert e["decision_id"] == d["decision_id"] and e["locale"] == got
        assert e["summary"] == rule_texts[got], asked
        assert e["engine"] == "rules" and e["rule"] == "outdoor-fans" and e["fallback"] is None
        assert e["reasons"] == [
            {"rule": "loyal-customers", "matched": False,
             "blocked_by": [{"attribute": "loyalty_tier", "reason": "absent"}]},
            {"rule": "outdoor-fans", "matched": True, "attributes": ["browsing_categories"]},
        ]
        assert e["used_attributes"] == ["browsing_categories"]
        assert e["withheld_attributes"] == NOT_FOR_PERSONALIZATION
        assert e["consent"] == {"purpose": "personalization", "status": "granted",
                                "decided_at": state["decided_at"], "receipt_id": receipt["receipt_id"]}
        assert e["policy_version"] == version
        assert e["controls"]["consents"] == "/v1/subjects/u-1/consents"
        assert e["controls"]["explanation"] == f"/v1/decisions/{d['decision_id']}/explanation"
        said = text(e["details"])
        t = explain.TEXTS[got]
        assert t["used"].format(items=names["browsing_categories"][got]) in said
        assert names["email"][got] in said and names["age_range"][got] in said
        assert explain.REASONS[got]["not_permitted_for_purpose"] in said
        assert state["decided_at"][:10] in said and t["change"] in said


def test_the_controls_link_quotes_the_subject_id(client, svc):
    grant(client, svc, subject="a/b c")
    d = decide(client, svc, subject="a/b c")
    assert d["explanation"]["controls"]["consents"] == "/v1/subjects/a%2Fb%20c/consents"


def test_context_feeds_rules_but_is_no_personal_data(client, svc, texts):
    grant(client, svc)
    set_profile(client, svc, {"orders_count": 2})
    d = decide(client, svc, placement="basket_banner", locale="nb", context={"device": "mobile"})
    assert d["content"] == {"id": "app-download"} and d["personalized"] is True
    e = d["explanation"]
    assert e["summary"] == texts[("basket_banner", "mobile-regulars")]["nb"]
    assert e["reasons"] == [
        {"rule": "win-back", "matched": False,
         "blocked_by": [{"attribute": "last_purchase_date", "reason": "absent"}]},
        {"rule": "multi-category-shoppers", "matched": False,
         "blocked_by": [{"attribute": "purchase_categories", "reason": "absent"}]},
        {"rule": "mobile-regulars", "matched": True, "attributes": ["orders_count"]},
    ]
    assert e["used_attributes"] == ["orders_count"]
    desktop = decide(client, svc, placement="basket_banner", context={"device": "desktop", "page": 3})
    assert desktop["content"] == {"id": "free-shipping-info"} and desktop["personalized"] is False


# --- not personalized -------------------------------------------------------------------------

def test_without_consent_everyone_gets_the_default(client, svc, gw, texts):
    set_profile(client, svc, {**PROFILE, "loyalty_tier": "gold", "orders_count": 9})
    d = decide(client, svc, locale="de")
    assert d["content"] == {"id": "generic-hero"} and d["personalized"] is False
    e = d["explanation"]
    assert e["summary"] == texts[("homepage_hero", None)]["de"]
    assert e["rule"] is None and e["engine"] == "rules" and e["used_attributes"] == []
    # without an effective legal basis no rule runs at all, so nothing is "blocked"
    assert e["reasons"] == []
    assert e["consent"] == {"purpose": "personalization", "status": "not_asked", "decided_at": None,
                            "receipt_id": None}
    withheld = {w["attribute"]: w["reason"] for w in e["withheld_attributes"]}
    assert withheld == {"email": "not_permitted_for_purpose", "browsing_categories": "no_consent",
                        "orders_count": "no_consent", "loyalty_tier": "no_consent",
                        "age_range": "not_permitted_for_purpose"}
    said = text(e["details"])
    assert explain.TEXTS["de"]["not_asked"].format(purpose="Personalisierte Inhalte") in said
    assert explain.TEXTS["de"]["used_none"] in said
    assert explain.REASONS["de"]["no_consent"] in said
    [made] = events(gw, "decision.made")
    assert made.data["personalized"] is False and made.data.get("attributes") == []


@pytest.mark.parametrize(("choice", "status", "reason"), [
    ("deny", "denied", "no_consent"),
    ("grant then deny", "withdrawn", "consent_withdrawn"),
    ("grant then withdraw all", "withdrawn", "consent_withdrawn"),
])
def test_a_no_gives_the_default(client, svc, texts, choice, status, reason):
    set_profile(client, svc, {"browsing_categories": ["outdoor"]})
    if choice.startswith("grant"):
        grant(client, svc)
        assert decide(client, svc)["personalized"] is True
    if choice.endswith("deny"):
        grant(client, svc, status="denied")
    else:
        assert client.delete("/v1/subjects/u-1/consents", headers=svc).status_code == 200
    d = decide(client, svc, locale="nb")
    assert d["content"] == {"id": "generic-hero"} and d["personalized"] is False
    e = d["explanation"]
    assert e["summary"] == texts[("homepage_hero", None)]["nb"]
    assert e["consent"]["status"] == status and e["consent"]["receipt_id"].startswith("rcpt_")
    assert e["reasons"] == [] and e["rule"] is None
    assert e["withheld_attributes"] == [{"attribute": "browsing_categories", "reason": reason}]
    assert explain.TEXTS["nb"][status].format(purpose="Personlig tilpasset innhold") in text(e["details"])


def test_expired_consent_gives_the_default(client, creds, token_for, auth):
    with freeze_time(T0):
        h = auth(token_for(creds))
        grant(client, h)
        set_profile(client, h, {"orders_count": 3})
        assert decide(client, h)["content"] == {"id": "welcome-back"}
    with freeze_time(T0 + timedelta(days=395)):
        h = auth(token_for(creds))
        e = decide(client, h)["explanation"]
        assert e["consent"]["status"] == "expired" and not e["reasons"] and e["rule"] is None
        assert e["withheld_attributes"] == [{"attribute": "orders_count", "reason": "consent_expired"}]
        assert "has expired" in text(e["details"])


def test_reconsent_required_after_a_purpose_change(app_config, client, svc, tmp_path, policy_dir):
    grant(client, svc)
    changed = tmp_path / "policy-v3"
    changed.mkdir()
    for f in policy_dir.glob("*.yaml"):
        (changed / f.name).write_text(f.read_text())
    purposes = changed / "purposes.yaml"
    source = purposes.read_text()
    assert source.count("version: 2\n") == 1
    purposes.write_text(source.replace("version: 2\n", "version: 3\n"))
    app2 = create_app({**app_config, "GATEWAY_POLICY_DIR": str(changed)})
    try:
        app2.test_client_class = ValidatingClient
        e = decide(app2.test_client(), svc)["explanation"]
        assert e["consent"]["status"] == "reconsent_required" and e["reasons"] == []
        assert "agree again" in text(e["details"])
    finally:
        app2.extensions["gateway"].db.dispose()


def test_consent_but_no_rule_matches(client, svc, texts):
    grant(client, svc)
    set_profile(client, svc, {"browsing_categories": ["kitchen"]})
    d = decide(client, svc, locale="en")
    assert d["content"] == {"id": "generic-hero"} and d["personalized"] is False
    e = d["explanation"]
    assert e["summary"] == texts[("homepage_hero", None)]["en"] and e["rule"] is None
    assert e["reasons"] == [
        {"rule": "loyal-customers", "matched": False,
         "blocked_by": [{"attribute": "loyalty_tier", "reason": "absent"}]},
        {"rule": "outdoor-fans", "matched": False},
        {"rule": "returning-customers", "matched": False,
         "blocked_by": [{"attribute": "orders_count", "reason": "absent"}]},
    ]
    assert e["used_attributes"] == [] and e["consent"]["status"] == "granted"
    assert explain.TEXTS["en"]["used_none"] in text(e["details"])


# --- every blocked_by reason ------------------------------------------------------------------
# A rule is evaluated only while the purpose's legal basis is effective, so of the withheld
# reasons only those that hold with an effective basis can block a rule: `absent` and
# `retention_expired`. The consent reasons (no_consent, consent_withdrawn, consent_expired,
# reconsent_required, objected) are asserted above to leave `reasons` empty instead, and
# `not_permitted_for_purpose` cannot occur because the loader refuses a rule that reads an
# attribute its placement's purpose may never use (tests/core/test_rules.py).

def test_blocked_by_absent_and_retention_expired(client, creds, token_for, auth, texts):
    with freeze_time(T0):
        h = auth(token_for(creds))
        grant(client, h)
        set_profile(client, h, {"browsing_categories": ["outdoor"], "loyalty_tier": "silver"})
        assert decide(client, h)["explanation"]["rule"] == "outdoor-fans"
    with freeze_time(T0 + timedelta(days=181)):
        h = auth(token_for(creds))
        grant(client, h)  # renewed: the purpose is effective, only the old value is not
        d = decide(client, h, locale="de")
        e = d["explanation"]
        assert d["content"] == {"id": "generic-hero"} and d["personalized"] is False
        assert e["summary"] == texts[("homepage_hero", None)]["de"]
        assert e["consent"]["status"] == "granted"
        assert e["reasons"] == [
            {"rule": "loyal-customers", "matched": False},  # silver: read, but not gold
            {"rule": "outdoor-fans", "matched": False,
             "blocked_by": [{"attribute": "browsing_categories", "reason": "retention_expired"}]},
            {"rule": "returning-customers", "matched": False,
             "blocked_by": [{"attribute": "orders_count", "reason": "absent"}]},
        ]
        assert e["withheld_attributes"] == [{"attribute": "browsing_categories",
                                             "reason": "retention_expired"}]
        assert explain.REASONS["de"]["retention_expired"] in text(e["details"])
        # fresh data is used again
        set_profile(client, h, {"browsing_categories": ["outdoor"]})
        assert decide(client, h)["explanation"]["rule"] == "outdoor-fans"


# --- 422, 400, 415 ----------------------------------------------------------------------------

def test_unknown_placement_is_422_before_the_purpose_binding(client, gw, make_client, token_for, auth):
    ads_only = auth(token_for(make_client(["decision:write"], ["ads"])))
    r = client.post("/v1/decisions", headers=ads_only, json={"subject_id": "u-1", "placement": "nope"})
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert [e["field"] for e in r.json["errors"]] == ["placement"]
    r = client.post("/v1/decisions", headers=ads_only,
                    json={"subject_id": "u-1", "placement": "homepage_hero"})
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert [e.data.get("purpose") for e in events(gw, "access.denied")] == ["personalization"]
    assert decide(client, ads_only, placement="partner_ads")["content"] == {"id": "contextual-ad"}


def test_authentication_and_scope(client, banner, make_client, token_for, auth):
    body = {"subject_id": "u-1", "placement": "homepage_hero"}
    assert client.post("/v1/decisions", json=body).status_code == 401
    reader = auth(token_for(make_client(["decision:read"], ["personalization"])))
    assert client.post("/v1/decisions", headers=reader, json=body).status_code == 403
    # a banner may read explanations but not ask for decisions
    assert client.post("/v1/decisions", headers=banner, json=body).status_code == 401


BAD_BODIES = [
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"browsing_categories": "x"}},
     "context.browsing_categories"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"page": "home", "email": "a@b.c"}},
     "context.email"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": ["page"]}, "context"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": "page=home"}, "context"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"page": {"id": 1}}}, "context.page"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"tags": ["a"]}}, "context.tags"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"page": None}}, "context.page"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "context": {"page": "x" * 257}}, "context.page"),
    ({"subject_id": "u-1", "placement": "homepage_hero",
      "context": {f"k{i}": i for i in range(21)}}, "context"),
    ({"placement": "homepage_hero"}, "subject_id"),
    ({"subject_id": "u-1"}, "placement"),
    ({"subject_id": "", "placement": "homepage_hero"}, "subject_id"),
    ({"subject_id": "x" * 257, "placement": "homepage_hero"}, "subject_id"),
    ({"subject_id": 7, "placement": "homepage_hero"}, "subject_id"),
    ({"subject_id": "u-1", "placement": 3}, "placement"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "purpose": "personalization"}, "purpose"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "locale": "!!"}, "locale"),
    ({"subject_id": "u-1", "placement": "homepage_hero", "locale": 5}, "locale"),
]


def test_invalid_requests_are_422_and_change_nothing(client, svc, gw):
    grant(client, svc)
    set_profile(client, svc, {"browsing_categories": ["outdoor"]})
    for body, field in BAD_BODIES:
        r = client.post("/v1/decisions", headers=svc, json=body)
        assert r.status_code == 422, (body, r.json)
        assert r.mimetype == "application/problem+json"
        assert r.json["status"] == 422 and r.json["title"]
        assert field in [e["field"] for e in r.json["errors"]], (body, r.json["errors"])
    r = client.post("/v1/decisions", headers=svc, json=["homepage_hero"])
    assert r.status_code == 422
    r = client.post("/v1/decisions", headers=svc, data='{"subject_id": "u-1",',
                    content_type="application/json")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    r = client.post("/v1/decisions", headers=svc, data="subject_id=u-1&placement=homepage_hero",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.mimetype == "application/problem+json"
    assert decision_rows(gw) == [] and events(gw, "decision.made") == []
    # a null context is no context; short flat metadata is fine
    assert decide(client, svc, context=None)["personalized"] is True
    assert decide(client, svc, context={"page": "home", "ab": True, "w": 1.5})["personalized"] is True


# --- stored, audited, explained later ---------------------------------------------------------

def test_decision_is_stored_and_audited(client, svc, gw):
    grant(client, svc)
    set_profile(client, svc, PROFILE)
    d = decide(client, svc, locale="de")
    version = client.get("/v1/policy").json["version"]
    [row] = decision_rows(gw)
    assert row.id == d["decision_id"] and row.policy_version == version
    assert row.subject == gw.pseudonymize("u-1") and row.subject != "u-1"
    assert (row.placement, row.purpose, row.engine, row.rule, row.personalized) == (
        "homepage_hero", "personalization", "rules", "outdoor-fans", True)
    assert row.content == {"id": "outdoor-jackets"}
    [made] = events(gw, "decision.made")
    assert made.subject == row.subject
    assert made.data["decision_id"] == d["decision_id"]
    assert made.data["attributes"] == ["browsing_categories"]
    assert made.data["policy_version"] == version and made.data["rule"] == "outdoor-fans"
    assert made.data["placement"] == "homepage_hero" and made.data["engine"] == "rules"
    assert "u1@example.com" not in json.dumps(made.data) and '"outdoor"' not in json.dumps(made.data)


def test_explanation_later_in_another_language(client, svc, gw, banner, texts):
    grant(client, svc)
    set_profile(client, svc, PROFILE)
    d = decide(client, svc, locale="de")
    made = d["explanation"]
    r = client.get(f"/v1/decisions/{d['decision_id']}/explanation?locale=nb", headers=svc)
    assert r.status_code == 200, r.json
    e = r.json
    assert e["locale"] == "nb" and e["summary"] == texts[("homepage_hero", "outdoor-fans")]["nb"]
    for key in ("decision_id", "engine", "rule", "reasons", "used_attributes", "withheld_attributes",
                "consent", "policy_version", "personalized", "placement", "purpose", "fallback"):
        assert e[key] == made[key], key
    assert e["made_at"] == d["made_at"]
    assert explain.TEXTS["nb"]["change"] in text(e["details"])
    assert text(e["details"]) != text(made["details"])
    assert e["controls"]["consents"].endswith("/consents")
    [viewed] = events(gw, "explanation.viewed")
    assert viewed.data["decision_id"] == d["decision_id"] and viewed.data["locale"] == "nb"
    assert viewed.subject == gw.pseudonymize("u-1")

    # a banner (property key) may read it; unknown locale falls back to English
    r = client.get(f"/v1/decisions/{d['decision_id']}/explanation?locale=xx", headers=banner)
    assert r.status_code == 200 and r.json["locale"] == "en"
    assert r.json["summary"] == texts[("homepage_hero", "outdoor-fans")]["en"]
    r = client.get(f"/v1/decisions/{d['decision_id']}/explanation?locale=de-DE", headers=banner)
    assert r.json["locale"] == "de" and r.json["summary"] == made["summary"]
    assert len(events(gw, "explanation.viewed")) == 3


def test_explanation_unknown_id_and_rights(client, svc, gw, make_client, token_for, auth):
    grant(client, svc)
    d = decide(client, svc)
    for unknown in ("dec_nope", "x" * 100):
        r = client.get(f"/v1/decisions/{unknown}/explanation", headers=svc)
        assert r.status_code == 404 and r.mimetype == "application/problem+json"
        assert r.json["status"] == 404
    writer = auth(token_for(make_client(["decision:write"], ["personalization"])))
    r = client.get(f"/v1/decisions/{d['decision_id']}/explanation", headers=writer)
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert client.get(f"/v1/decisions/{d['decision_id']}/explanation").status_code == 401
    assert events(gw, "explanation.viewed") == []


def test_export_lists_decisions_and_erasure_deletes_them(client, svc, gw, texts):
    grant(client, svc)
    set_profile(client, svc, PROFILE)
    first = decide(client, svc, locale="de")
    second = decide(client, svc, placement="basket_banner")
    grant(client, svc, subject="u-2")
    other = decide(client, svc, subject="u-2")
    r = client.get("/v1/subjects/u-1/export", headers=svc)
    assert r.status_code == 200, r.json
    listed = r.json["decisions"]
    assert [x["decision_id"] for x in listed] == [first["decision_id"], second["decision_id"]]
    x = listed[0]
    assert x["placement"] == "homepage_hero" and x["personalized"] is True
    assert x["content"] == {"id": "outdoor-jackets"}
    assert x["policy_version"] == first["explanation"]["policy_version"]
    assert x["explanation"]["rule"] == "outdoor-fans"
    assert x["explanation"]["summaries"] == texts[("homepage_hero", "outdoor-fans")]
    assert x["explanation"]["used_attributes"] == ["browsing_categories"]
    assert x["explanation"]["withheld_attributes"] == NOT_FOR_PERSONALIZATION
    assert {"decision.made"} <= {ev["type"] for ev in r.json["audit_events"]}

    assert client.delete("/v1/subjects/u-1", headers=svc).status_code == 200
    assert [row.id for row in decision_rows(gw)] == [other["decision_id"]]
    assert client.get(f"/v1/decisions/{first['decision_id']}/explanation",
                      headers=svc).status_code == 404
    assert client.get("/v1/subjects/u-1/export", headers=svc).json["decisions"] == []
    [erased] = events(gw, "subject.erased")
    assert erased.data["decisions_deleted"] == 2


# --- the remote backend, over real HTTP -------------------------------------------------------

class FakeBackend(ThreadingHTTPServer):
    """A backend that records what it receives and answers as `mode` says."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.mode = "ok"
        self.requests: list[SimpleNamespace] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/decide"


GOOD_ANSWER = {
    "content": {"id": "trail-gear"}, "attributes": ["browsing_categories"],
    "explanation": {"en": "Picked from what you browsed.", "de": "Aus dem, was Sie angesehen haben.",
                    "nb": "Valgt ut fra det du har sett på."},
}


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeBackend

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(SimpleNamespace(path=self.path, headers=dict(self.headers), body=body))
        mode = self.server.mode
        try:
            if mode == "slow":
                self.server.release.wait(5)
                self._send(200, json.dumps(GOOD_ANSWER).encode())
            elif mode == "trickle":  # every read is quick enough, the whole answer is not
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                for _ in range(3):
                    time.sleep(0.15)
                    self.wfile.write(b"X-Wait: 1\r\n")
                    self.wfile.flush()
                raw = json.dumps(GOOD_ANSWER).encode()
                self.wfile.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
            elif mode == "slowloris":  # a header line now and then, for far longer than timeout_ms
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(50):
                    self.wfile.flush()
                    if self.server.release.wait(0.1):
                        return
                    self.wfile.write(b"X-Wait: 1\r\n")
                raw = json.dumps(GOOD_ANSWER).encode()
                self.wfile.write(b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
            elif mode == "huge":
                self._send(200, json.dumps({"content": {"id": "x" * 300_000}, "attributes": []}).encode())
            elif mode == "500":
                self._send(500, b'{"error": "boom"}')
            elif mode == "malformed":
                self._send(200, b'{"content": {"id": "x"')
            elif mode == "wrong_shape":
                self._send(200, b'[{"content": {"id": "x"}}]')
            elif mode == "no_content":
                self._send(200, b'{"attributes": []}')
            elif mode == "bad_explanation":
                self._send(200, json.dumps({"content": {"id": "x"}, "attributes": [],
                                            "explanation": {"en": ""}}).encode())
            elif mode == "unreleased":
                self._send(200, json.dumps({"content": {"id": "partner-outdoor-festival"},
                                            "attributes": ["browsing_categories", "age_range"]}).encode())
            elif mode == "no_explanation":
                self._send(200, json.dumps({"content": {"id": "picked"}, "attributes": []}).encode())
            else:
                self._send(200, json.dumps(GOOD_ANSWER).encode())
        except OSError:
            pass  # the gateway stopped waiting

    def _send(self, status: int, raw: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format, *args):  # noqa: A002
        pass


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def fake():
    server = FakeBackend()
    thread = _serve(server)
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def reco():
    server = reco_backend.serve("127.0.0.1", 0, SECRET)
    thread = _serve(server)
    server.url = f"http://127.0.0.1:{server.server_address[1]}/decide"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend_gateway(app_config, policy_dir, tmp_path):
    """make(url, secret=SECRET, timeout_ms=1000, rules=True) -> the gateway with product_recommendations
    pointing at `url`: SimpleNamespace(gw, client, headers) with a personalization-bound client."""
    made = []

    def make(url: str, *, secret: str = SECRET, timeout_ms: int = 1000, rules: bool = True):
        target = tmp_path / f"policy-{len(made)}"
        target.mkdir()
        for f in policy_dir.glob("*.yaml"):
            (target / f.name).write_text(f.read_text())
        doc = yaml.safe_load((target / "rules.yaml").read_text())
        place = next(p for p in doc["placements"] if p["id"] == "product_recommendations")
        assert place["backend"]["secret_env"] == "RECO_BACKEND_SECRET"
        place["backend"].update(url=url, timeout_ms=timeout_ms)
        if not rules:
            place.pop("rules")
        (target / "rules.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        application = create_app({**app_config, "GATEWAY_POLICY_DIR": str(target),
                                  "RECO_BACKEND_SECRET": secret})
        made.append(application)
        application.test_client_class = ValidatingClient
        gw = application.extensions["gateway"]
        c = clients.create_client(gw, "reco-test", list(ALL_SCOPES), ["personalization"])
        token = tokens.issue_token(gw, grant_type="client_credentials", client_id=c["client_id"],
                                    client_secret=c["client_secret"], scope=None,
                                    remote_addr="127.0.0.1")["access_token"]
        return SimpleNamespace(gw=gw, client=application.test_client(), url=url,
                               headers={"Authorization": f"Bearer {token}"})

    yield make
    for application in made:
        application.extensions["gateway"].db.dispose()


RECO_PROFILE = {"email": "u1@example.com", "browsing_categories": ["outdoor"], "loyalty_tier": "silver",
                "age_range": "25-34", "city": "Berlin"}


def test_the_example_backend_decides(reco, backend_gateway, policy_dir):
    g = backend_gateway(reco.url)
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, RECO_PROFILE)
    expected = reco_backend.recommend({"profile": {"browsing_categories": ["outdoor"]}})
    d = decide(g.client, g.headers, placement="product_recommendations", locale="de",
               context={"page": "product"})
    assert d["personalized"] is True and d["content"] == expected["content"]
    e = d["explanation"]
    assert e["engine"] == "backend" and e["fallback"] is None and e["rule"] is None
    assert e["summary"] == expected["explanation"]["de"]
    assert e["used_attributes"] == ["browsing_categories"] and e["reasons"] == []
    said = text(e["details"])
    assert explain.TEXTS["de"]["backend"] in said
    assert labels(policy_dir)["browsing_categories"]["de"] in said
    r = g.client.get(f"/v1/decisions/{d['decision_id']}/explanation?locale=nb", headers=g.headers)
    assert r.json["summary"] == expected["explanation"]["nb"] and r.json["engine"] == "backend"

    [released] = events(g.gw, "profile.released")
    assert released.data["recipient"] == reco.url
    assert released.data["decision_id"] == d["decision_id"]
    assert released.data["attributes"] == ["browsing_categories", "loyalty_tier"]
    [made] = events(g.gw, "decision.made")
    assert made.data["engine"] == "backend" and made.data["attributes"] == ["browsing_categories"]
    assert "fallback" not in made.data
    [row] = decision_rows(g.gw)
    assert row.engine == "backend" and row.content == expected["content"]


def test_the_backend_receives_only_the_permitted_view(fake, backend_gateway):
    g = backend_gateway(fake.url)
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, RECO_PROFILE)
    d = decide(g.client, g.headers, placement="product_recommendations", locale="nb",
               context={"page": "product", "device": "mobile"})
    assert d["explanation"]["engine"] == "backend" and d["content"] == {"id": "trail-gear"}
    assert d["explanation"]["summary"] == GOOD_ANSWER["explanation"]["nb"]
    [req] = fake.requests
    assert req.path == "/decide"
    assert req.headers["Content-Type"] == "application/json"
    assert reco_backend.verify(SECRET, req.body, req.headers["X-Gateway-Signature"])
    assert not reco_backend.verify("other", req.body, req.headers["X-Gateway-Signature"])
    sent = json.loads(req.body)
    assert sent == {"decision_id": d["decision_id"], "subject_id": "u-1",
                    "placement": "product_recommendations", "purpose": "personalization",
                    "locale": "nb", "context": {"page": "product", "device": "mobile"},
                    "profile": {"browsing_categories": ["outdoor"], "loyalty_tier": "silver"}}
    view = g.client.get("/v1/subjects/u-1/profile?purpose=personalization", headers=g.headers).json
    assert sent["profile"] == view["attributes"]
    for withheld in (b"email", b"u1@example.com", b"age_range", b"25-34", b"city", b"Berlin"):
        assert withheld not in req.body


FALLBACKS = [("slow", "timeout"), ("trickle", "timeout"), ("slowloris", "timeout"), ("500", "error"),
             ("huge", "invalid_answer"),
             ("malformed", "invalid_answer"), ("wrong_shape", "invalid_answer"),
             ("no_content", "invalid_answer"), ("bad_explanation", "invalid_answer"),
             ("unreleased", "unreleased_attribute")]


@pytest.mark.parametrize(("mode", "failure"), FALLBACKS)
def test_a_failing_backend_falls_back_to_the_rules(fake, backend_gateway, texts, mode, failure):
    fake.mode = mode
    g = backend_gateway(fake.url, timeout_ms=300 if failure == "timeout" else 1000)
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, {"browsing_categories": ["kitchen"], "age_range": "18-24"})
    started = time.perf_counter()
    d = decide(g.client, g.headers, placement="product_recommendations", locale="de")
    # the answer comes about timeout_ms after the call, however long the backend dawdles (5 s)
    assert time.perf_counter() - started < 2.5
    assert len(fake.requests) == 1
    e = d["explanation"]
    assert e["engine"] == "rules" and e["fallback"] == failure
    assert d["content"] == {"id": "home-kitchen-picks"} and e["rule"] == "home-browsers"
    assert e["summary"] == texts[("product_recommendations", "home-browsers")]["de"]
    assert e["used_attributes"] == ["browsing_categories"]
    assert [x["rule"] for x in e["reasons"]] == ["rfm-champions", "bought-outdoor", "home-browsers"]
    assert explain.FALLBACK_WHY["de"][failure] in text(e["details"])
    r = g.client.get(f"/v1/decisions/{d['decision_id']}/explanation?locale=en", headers=g.headers)
    assert explain.TEXTS["en"]["fallback"].format(why=explain.FALLBACK_WHY["en"][failure]) \
        in text(r.json["details"])
    [made] = events(g.gw, "decision.made")
    assert made.data["fallback"] == failure and made.data["engine"] == "rules"
    assert made.data["attributes"] == ["browsing_categories"]
    assert [ev.data["attributes"] for ev in events(g.gw, "profile.released")] == [["browsing_categories"]]
    refused = events(g.gw, "decision.backend_refused")
    if failure == "unreleased_attribute":
        [ev] = refused
        assert ev.data["attributes"] == ["age_range"] and ev.data["decision_id"] == d["decision_id"]
        assert ev.data["recipient"] == fake.url and ev.subject == g.gw.pseudonymize("u-1")
    else:
        assert refused == []


def test_a_bad_signature_is_refused_by_the_example_backend(reco, backend_gateway):
    g = backend_gateway(reco.url, secret="not-the-backends-secret")
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, {"purchase_categories": ["outdoor"]})
    d = decide(g.client, g.headers, placement="product_recommendations")
    e = d["explanation"]
    assert e["engine"] == "rules" and e["fallback"] == "error"
    assert d["content"] == {"id": "outdoor-accessories"} and e["rule"] == "bought-outdoor"


def test_an_unreachable_backend_falls_back(closed_port, backend_gateway, texts):
    g = backend_gateway(f"http://127.0.0.1:{closed_port}/decide")
    grant(g.client, g.headers)
    d = decide(g.client, g.headers, placement="product_recommendations", locale="nb")
    e = d["explanation"]
    assert e["fallback"] == "error" and e["engine"] == "rules" and d["personalized"] is False
    assert d["content"] == {"id": "bestsellers"}
    assert e["summary"] == texts[("product_recommendations", None)]["nb"]


def test_without_a_secret_the_backend_is_not_called(fake, backend_gateway):
    g = backend_gateway(fake.url, secret="")
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, {"purchase_categories": ["outdoor"]})
    d = decide(g.client, g.headers, placement="product_recommendations")
    e = d["explanation"]
    assert e["fallback"] == "unavailable" and e["engine"] == "rules" and e["rule"] == "bought-outdoor"
    assert explain.FALLBACK_WHY["en"]["unavailable"] in text(e["details"])
    assert fake.requests == []
    assert events(g.gw, "profile.released") == []
    [made] = events(g.gw, "decision.made")
    assert made.data["fallback"] == "unavailable"


@pytest.mark.parametrize("choice", [None, "denied"])
def test_without_an_effective_legal_basis_the_backend_is_not_called(fake, backend_gateway, choice):
    g = backend_gateway(fake.url)
    if choice:
        grant(g.client, g.headers, status=choice)
    set_profile(g.client, g.headers, RECO_PROFILE)
    d = decide(g.client, g.headers, placement="product_recommendations")
    e = d["explanation"]
    assert d["content"] == {"id": "bestsellers"} and d["personalized"] is False
    assert e["engine"] == "rules" and e["fallback"] is None and e["reasons"] == []
    assert fake.requests == []
    assert events(g.gw, "profile.released") == []


def test_a_backend_answer_without_explanation_gets_the_generic_one(fake, backend_gateway):
    fake.mode = "no_explanation"
    g = backend_gateway(fake.url)
    grant(g.client, g.headers)
    d = decide(g.client, g.headers, placement="product_recommendations", locale="de")
    e = d["explanation"]
    assert e["engine"] == "backend" and d["content"] == {"id": "picked"} and d["personalized"] is True
    assert e["summary"] == explain.TEXTS["de"]["backend"] and e["used_attributes"] == []
    assert explain.TEXTS["de"]["used_none"] in text(e["details"])


def test_a_placement_with_only_a_backend(fake, backend_gateway, texts):
    fake.mode = "500"
    g = backend_gateway(fake.url, rules=False)
    grant(g.client, g.headers)
    set_profile(g.client, g.headers, {"browsing_categories": ["kitchen"]})
    d = decide(g.client, g.headers, placement="product_recommendations")
    e = d["explanation"]
    assert e["fallback"] == "error" and e["reasons"] == [] and e["rule"] is None
    assert d["content"] == {"id": "bestsellers"} and d["personalized"] is False
    assert e["summary"] == texts[("product_recommendations", None)]["en"]
    fake.mode = "ok"
    assert decide(g.client, g.headers, placement="product_recommendations")["explanation"]["engine"] \
        == "backend"
