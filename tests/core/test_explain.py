"""Explanations a person can read: complete in English, German and Norwegian, falling back to English."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

from gateway.core import explain
from gateway.core.consent import WITHHELD_REASON
from gateway.core.policy import parse_policy
from gateway.core.taxonomy import fides_taxonomy
from gateway.core.view import REASONS as WITHHELD_REASONS

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
LOCALES = ("en", "de", "nb")
FAILURES = ("timeout", "error", "invalid_answer", "unreleased_attribute", "unavailable")
STATUSES = ("granted", "denied", "withdrawn", "expired", "reconsent_required", "not_asked", "permitted",
            "objected")


@pytest.fixture(scope="module")
def demo():
    return parse_policy({p.name: p.read_text() for p in POLICIES.glob("*.yaml")}, fides_taxonomy())


def facts(demo, **changes) -> dict:
    """The stored facts of a decision, as gateway.services.decisions builds them."""
    purpose = demo.purpose("personalization")
    rule = demo.placement("homepage_hero").rule("outdoor-fans")
    base = {
        "placement": "homepage_hero", "purpose": "personalization",
        "purpose_titles": {loc: n.title for loc, n in purpose.notices.items()},
        "policy_version": demo.version,
        "consent": {"purpose": "personalization", "status": "granted", "effective": True,
                    "decided_at": "2026-10-30T09:15:00Z", "receipt_id": "rcpt_1"},
        "withheld_attributes": [{"attribute": "email", "reason": "not_permitted_for_purpose"},
                                {"attribute": "age_range", "reason": "not_permitted_for_purpose"}],
        "fallback": None, "engine": "rules", "rule": rule.id, "personalized": True,
        "summaries": dict(rule.explanation),
        "reasons": [{"rule": "outdoor-fans", "matched": True, "attributes": ["browsing_categories"]}],
        "used_attributes": ["browsing_categories"],
        "labels": {a: dict(demo.attribute(a).labels) for a in ("browsing_categories", "email", "age_range")},
    }
    base.update(changes)
    return base


def render(f: dict, locale: str | None) -> dict:
    return explain.render(f, locale, decision_id="dec_1", controls={"consents": "/v1/subjects/u-1/consents"})


# --- the demo policy is complete in every language ---------------------------------------------

def test_every_rule_and_default_of_the_demo_policy_has_en_de_and_nb(demo):
    assert demo.placements
    for placement in demo.placements:
        assert set(placement.default_explanation) >= set(LOCALES), placement.id
        assert all(placement.default_explanation[loc].strip() for loc in LOCALES), placement.id
        for rule in placement.rules:
            assert set(rule.explanation) >= set(LOCALES), (placement.id, rule.id)
            assert all(rule.explanation[loc].strip() for loc in LOCALES), (placement.id, rule.id)
            # three texts, not one copied thrice
            assert len({rule.explanation[loc] for loc in LOCALES}) == 3, (placement.id, rule.id)


def test_the_parsed_texts_are_the_yaml_texts(demo):
    doc = yaml.safe_load((POLICIES / "rules.yaml").read_text())
    for raw in doc["placements"]:
        placement = demo.placement(raw["id"])
        assert dict(placement.default_explanation) == {
            k: v.strip() for k, v in raw["default"]["explanation"].items()}
        for r in raw.get("rules") or []:
            assert dict(placement.rule(r["id"]).explanation) == {
                k: v.strip() for k, v in r["explanation"].items()}


def test_every_attribute_of_the_demo_catalogue_has_a_label_in_en_de_and_nb(demo):
    assert demo.attributes
    for attribute in demo.attributes:
        assert set(attribute.labels) >= set(LOCALES), attribute.id
        assert all(attribute.labels[loc].strip() for loc in LOCALES), attribute.id
        assert attribute.label("fr") == attribute.labels["en"]


def test_every_purpose_with_a_placement_has_a_title_in_every_language(demo):
    for purpose_id in {p.purpose for p in demo.placements}:
        notices = demo.purpose(purpose_id).notices
        assert all(notices[loc].title.strip() for loc in LOCALES), purpose_id


# --- the gateway's own sentences ---------------------------------------------------------------

def test_locales():
    assert explain.LOCALES == LOCALES and explain.FALLBACK == "en"


@pytest.mark.parametrize("table", ["TEXTS", "REASONS", "FALLBACK_WHY"])
def test_every_table_has_the_same_keys_in_every_locale(table):
    texts = getattr(explain, table)
    assert set(texts) == set(LOCALES)
    for locale in LOCALES:
        assert set(texts[locale]) == set(texts["en"]), (table, locale)
        assert all(isinstance(v, str) and v.strip() for v in texts[locale].values()), (table, locale)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_placeholders_agree_across_locales():
    for key, template in explain.TEXTS["en"].items():
        for locale in LOCALES:
            assert _fields(explain.TEXTS[locale][key]) == _fields(template), (locale, key)


def test_every_withheld_reason_every_fallback_and_every_status_can_be_said():
    assert set(explain.REASONS["en"]) == set(WITHHELD_REASONS) | {"absent"}
    assert set(explain.FALLBACK_WHY["en"]) == set(FAILURES)
    for status in STATUSES:
        assert status in explain.TEXTS["en"], status
    assert set(WITHHELD_REASON) <= set(explain.TEXTS["en"])


def test_the_fallback_codes_are_those_of_the_contract():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    enum = spec["components"]["schemas"]["Explanation"]["properties"]["fallback"]["enum"]
    assert set(enum) - {None} == set(FAILURES)


# --- render ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("asked", "got"), [
    ("en", "en"), ("de", "de"), ("nb", "nb"), ("de-AT", "de"), ("NB_no", "nb"), ("fr", "en"),
    ("", "en"), (None, "en"), ("  de ", "de"),
])
def test_render_picks_the_locale_or_falls_back_to_english(demo, asked, got):
    f = facts(demo)
    out = render(f, asked)
    assert out["locale"] == got and out["summary"] == f["summaries"][got]
    assert out["details"][-1] == explain.TEXTS[got]["change"]


def test_render_falls_back_to_english_where_a_summary_is_missing(demo):
    f = facts(demo, summaries={"en": "Because.", "de": "Weil."})
    out = render(f, "nb")
    assert out["locale"] == "en" and out["summary"] == "Because."
    assert explain.TEXTS["en"]["change"] in out["details"]


def test_a_summary_in_a_language_without_sentences_gets_english_sentences(demo):
    f = facts(demo, summaries={"en": "Because.", "fr": "Parce que."})
    out = render(f, "fr")
    assert out["locale"] == "fr" and out["summary"] == "Parce que."
    assert out["details"][-1] == explain.TEXTS["en"]["change"]


def test_render_carries_the_facts_and_hides_the_internal_flag(demo):
    f = facts(demo)
    out = render(f, "de")
    assert out["decision_id"] == "dec_1" and out["controls"] == {"consents": "/v1/subjects/u-1/consents"}
    for key in ("engine", "rule", "fallback", "personalized", "placement", "purpose", "reasons",
                "used_attributes", "withheld_attributes", "policy_version"):
        assert out[key] == f[key], key
    assert out["consent"] == {"purpose": "personalization", "status": "granted",
                              "decided_at": "2026-10-30T09:15:00Z", "receipt_id": "rcpt_1"}


# --- details -----------------------------------------------------------------------------------

@pytest.mark.parametrize("locale", LOCALES)
def test_details_name_used_and_withheld_data_in_the_locale(demo, locale):
    said = explain.details(facts(demo), locale)
    label = {a.id: a.labels[locale] for a in demo.attributes}
    title = demo.purpose("personalization").notices[locale].title
    assert said[0] == explain.TEXTS[locale]["granted"].format(purpose=title, date="2026-10-30")
    assert explain.TEXTS[locale]["used"].format(items=label["browsing_categories"]) in said
    reason = explain.REASONS[locale]["not_permitted_for_purpose"]
    withheld = f"{label['email']} ({reason}) {explain.TEXTS[locale]['and']} {label['age_range']} ({reason})"
    assert explain.TEXTS[locale]["withheld"].format(items=withheld) in said
    assert said[-1] == explain.TEXTS[locale]["change"]
    joined = " ".join(said)
    for other in LOCALES:
        if other != locale:  # nothing in the other languages
            assert demo.attribute("browsing_categories").labels[other] not in joined
            assert explain.TEXTS[other]["change"] not in joined


def test_details_join_three_items_with_commas_and_a_word(demo):
    f = facts(demo, used_attributes=["orders_count", "last_purchase_date", "total_spend_eur"],
              labels={a: dict(demo.attribute(a).labels)
                      for a in ("orders_count", "last_purchase_date", "total_spend_eur")},
              withheld_attributes=[])
    said = explain.details(f, "de")
    assert ("Was wir genutzt haben: wie oft Sie bestellt haben, das Datum Ihrer letzten Bestellung "
            "und wie viel Sie bei uns ausgegeben haben.") in said
    assert not any(s.startswith("Was wir nicht genutzt haben") for s in said)


def test_details_without_data_used(demo):
    f = facts(demo, used_attributes=[], withheld_attributes=[], labels={}, personalized=False)
    for locale in LOCALES:
        assert explain.TEXTS[locale]["used_none"] in explain.details(f, locale)


def test_a_label_missing_from_the_facts_falls_back_to_the_name(demo):
    f = facts(demo, used_attributes=["shoe_size"], labels={"email": {"en": "mail"}},
              withheld_attributes=[{"attribute": "email", "reason": "something_new"}])
    said = explain.details(f, "de")
    assert explain.TEXTS["de"]["used"].format(items="shoe size") in said
    assert explain.TEXTS["de"]["withheld"].format(items="mail (something_new)") in said


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("locale", LOCALES)
def test_every_consent_status_is_said_with_the_purpose_title(demo, status, locale):
    f = facts(demo, consent={"purpose": "personalization", "status": status, "effective": False,
                             "decided_at": None, "receipt_id": None})
    first = explain.details(f, locale)[0]
    assert demo.purpose("personalization").notices[locale].title in first


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("locale", LOCALES)
def test_a_fallback_says_why(demo, failure, locale):
    said = explain.details(facts(demo, fallback=failure), locale)
    assert explain.TEXTS[locale]["fallback"].format(why=explain.FALLBACK_WHY[locale][failure]) in said
    assert explain.TEXTS[locale]["backend"] not in said


@pytest.mark.parametrize("locale", LOCALES)
def test_the_backend_is_named_when_it_chose(demo, locale):
    said = explain.details(facts(demo, engine="backend", rule=None), locale)
    assert explain.TEXTS[locale]["backend"] in said
