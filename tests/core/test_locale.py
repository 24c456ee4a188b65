"""The one language fallback (gateway.core.locale) and the texts that use it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import explain, locale
from gateway.core.policy import Attribute, Notice, Purpose

TEXTS = {"en": "Because.", "de": "Weil.", "nb": "Fordi."}


@pytest.mark.parametrize(("asked", "used"), [
    ("de", "de"), ("nb", "nb"), ("en", "en"), ("de-AT", "de"), ("de_AT", "de"), ("DE", "de"),
    (" de ", "de"), ("fr", "en"), ("fr-CH", "en"), ("", "en"), (None, "en"),
])
def test_pick_takes_the_locale_then_its_base_language_then_english(asked, used):
    assert locale.pick(TEXTS, asked) == (used, TEXTS[used])


@pytest.mark.parametrize(("texts", "asked", "expected"), [
    ({"en": "age range", "de": "Altersgruppe"}, "de", "Altersgruppe"),
    ({"en": "age range", "de": "Altersgruppe"}, "fr", "age range"),
    ({"de": "Altersgruppe"}, "de-AT", "Altersgruppe"),
    ({"de": "Altersgruppe"}, "fr", "age group"),
    ({}, None, "age group"),
])
def test_pick_or_falls_back_to_the_default_where_english_is_missing(texts, asked, expected):
    assert locale.pick_or(texts, asked, "age group") == expected


@given(st.one_of(st.none(), st.text(max_size=12)))
def test_pick_always_answers_from_the_texts(asked):
    used, text = locale.pick(TEXTS, asked)
    assert TEXTS[used] == text


def test_notices_labels_and_explanations_share_the_fallback():
    notices = {"en": Notice("T", "D"), "de": Notice("T-de", "D-de")}
    purpose = Purpose("p", 1, "consent", "personalize", notices)
    attribute = Attribute("age_range", "string", "user.demographic", ("p",), labels={"de": "Altersgruppe"})
    for asked in ("de", "de-AT", "de_DE", "fr", None):
        assert purpose.notice(asked) == locale.pick(purpose.notices, asked)
        assert attribute.label(asked) == locale.pick_or(attribute.labels, asked, "age range")


def test_an_explanation_names_an_attribute_whose_label_lacks_english():
    facts: explain.Facts = {
        "placement": "homepage_hero", "purpose": "p", "purpose_titles": {"en": "Tips"},
        "policy_version": "1+abc",
        "consent": {"purpose": "p", "status": "granted", "effective": True,
                    "decided_at": "2026-11-01T00:00:00Z", "receipt_id": "rcpt_1"},
        "withheld_attributes": [], "fallback": None, "engine": "rules", "rule": "r",
        "personalized": True, "summaries": {"en": "Because.", "de": "Weil."}, "reasons": [],
        "used_attributes": ["age_range"], "labels": {"age_range": {"de": "Altersgruppe"}},
    }
    out = explain.render(facts, "fr", decision_id="dec_1", controls={})
    assert "What we used: age range." in out["details"]
    assert "Was wir genutzt haben: Altersgruppe." in explain.render(facts, "de", decision_id="dec_1",
                                                                     controls={})["details"]
