"""Explanation sentences pinned as literal text: per language (en, de, nb) and per reason code.

The other explanation tests check the sentences against the implementation's own tables;
these compare them with fixed text, so that any change to a table (a reworded sentence, a
lost translation, a reason that falls back to its code) is noticed and made on purpose.
"""
# ruff: noqa: E501

from __future__ import annotations

import pytest

from gateway.core import explain

LABELS = {"loyalty_tier": {"en": "your customer status", "de": "Ihr Kundenstatus", "nb": "kundestatusen din"}}
TITLES = {"en": "Personalised content", "de": "Personalisierte Inhalte", "nb": "Personlig tilpasset innhold"}
USED_NONE = {
    "en": "We did not use any of your data for this.",
    "de": "Wir haben dafür keine Ihrer Daten genutzt.",
    "nb": "Vi brukte ingen av opplysningene dine til dette.",
}
CHANGE = {
    "en": "You can change your choice at any time in the privacy settings.",
    "de": "Sie können Ihre Entscheidung jederzeit in den Datenschutzeinstellungen ändern.",
    "nb": "Du kan endre valget ditt når som helst i personverninnstillingene.",
}
GRANTED = {
    "en": "You agreed to “Personalised content” on 2026-11-23.",
    "de": "Sie haben „Personalisierte Inhalte“ am 2026-11-23 zugestimmt.",
    "nb": "Du samtykket til «Personlig tilpasset innhold» 2026-11-23.",
}

WITHHELD = {
    ('en', 'not_permitted_for_purpose'): 'What we did not use: your customer status (not allowed for this purpose).',
    ('en', 'no_consent'): 'What we did not use: your customer status (no consent).',
    ('en', 'consent_withdrawn'): 'What we did not use: your customer status (consent withdrawn).',
    ('en', 'consent_expired'): 'What we did not use: your customer status (consent expired).',
    ('en', 'reconsent_required'): 'What we did not use: your customer status (consent needs renewing).',
    ('en', 'objected'): 'What we did not use: your customer status (you objected).',
    ('en', 'retention_expired'): 'What we did not use: your customer status (too old to use).',
    ('en', 'absent'): 'What we did not use: your customer status (we do not have it).',
    ('de', 'not_permitted_for_purpose'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (für diesen Zweck nicht erlaubt).',
    ('de', 'no_consent'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (keine Einwilligung).',
    ('de', 'consent_withdrawn'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (Einwilligung widerrufen).',
    ('de', 'consent_expired'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (Einwilligung abgelaufen).',
    ('de', 'reconsent_required'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (Einwilligung muss erneuert werden).',
    ('de', 'objected'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (Sie haben widersprochen).',
    ('de', 'retention_expired'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (zu alt, um sie zu nutzen).',
    ('de', 'absent'): 'Was wir nicht genutzt haben: Ihr Kundenstatus (liegt uns nicht vor).',
    ('nb', 'not_permitted_for_purpose'): 'Dette brukte vi ikke: kundestatusen din (ikke tillatt til dette formålet).',
    ('nb', 'no_consent'): 'Dette brukte vi ikke: kundestatusen din (mangler samtykke).',
    ('nb', 'consent_withdrawn'): 'Dette brukte vi ikke: kundestatusen din (samtykket er trukket tilbake).',
    ('nb', 'consent_expired'): 'Dette brukte vi ikke: kundestatusen din (samtykket er utløpt).',
    ('nb', 'reconsent_required'): 'Dette brukte vi ikke: kundestatusen din (samtykket må fornyes).',
    ('nb', 'objected'): 'Dette brukte vi ikke: kundestatusen din (du har protestert).',
    ('nb', 'retention_expired'): 'Dette brukte vi ikke: kundestatusen din (for gammelt til å brukes).',
    ('nb', 'absent'): 'Dette brukte vi ikke: kundestatusen din (har vi ikke).',
}
STATUS = {
    ('en', 'granted'): 'You agreed to “Personalised content” on 2026-11-23.',
    ('en', 'not_asked'): 'You have not agreed to “Personalised content”, so we do not use your data for it.',
    ('en', 'denied'): 'You said no to “Personalised content”, so we do not use your data for it.',
    ('en', 'withdrawn'): 'You withdrew your consent to “Personalised content”, so we no longer use your data for it.',
    ('en', 'expired'): 'Your consent to “Personalised content” has expired, so we do not use your data for it until you renew it.',
    ('en', 'reconsent_required'): 'We changed what “Personalised content” covers. Until you agree again, we do not use your data for it.',
    ('en', 'objected'): 'You objected to “Personalised content”, so we do not use your data for it.',
    ('en', 'permitted'): '“Personalised content” rests on our legitimate interest; you can object at any time.',
    ('de', 'granted'): 'Sie haben „Personalisierte Inhalte“ am 2026-11-23 zugestimmt.',
    ('de', 'not_asked'): 'Sie haben „Personalisierte Inhalte“ nicht zugestimmt, daher nutzen wir Ihre Daten dafür nicht.',
    ('de', 'denied'): 'Sie haben „Personalisierte Inhalte“ abgelehnt, daher nutzen wir Ihre Daten dafür nicht.',
    ('de', 'withdrawn'): 'Sie haben Ihre Einwilligung zu „Personalisierte Inhalte“ widerrufen, daher nutzen wir Ihre Daten dafür nicht mehr.',
    ('de', 'expired'): 'Ihre Einwilligung zu „Personalisierte Inhalte“ ist abgelaufen. Bis Sie sie erneuern, nutzen wir Ihre Daten dafür nicht.',
    ('de', 'reconsent_required'): 'Wir haben geändert, was „Personalisierte Inhalte“ umfasst. Bis Sie erneut zustimmen, nutzen wir Ihre Daten dafür nicht.',
    ('de', 'objected'): 'Sie haben „Personalisierte Inhalte“ widersprochen, daher nutzen wir Ihre Daten dafür nicht.',
    ('de', 'permitted'): '„Personalisierte Inhalte“ beruht auf unserem berechtigten Interesse; Sie können jederzeit widersprechen.',
    ('nb', 'granted'): 'Du samtykket til «Personlig tilpasset innhold» 2026-11-23.',
    ('nb', 'not_asked'): 'Du har ikke samtykket til «Personlig tilpasset innhold», så vi bruker ikke opplysningene dine til det.',
    ('nb', 'denied'): 'Du sa nei til «Personlig tilpasset innhold», så vi bruker ikke opplysningene dine til det.',
    ('nb', 'withdrawn'): 'Du trakk tilbake samtykket til «Personlig tilpasset innhold», så vi bruker ikke lenger opplysningene dine til det.',
    ('nb', 'expired'): 'Samtykket ditt til «Personlig tilpasset innhold» er utløpt. Til du fornyer det, bruker vi ikke opplysningene dine til det.',
    ('nb', 'reconsent_required'): 'Vi har endret hva «Personlig tilpasset innhold» omfatter. Til du samtykker på nytt, bruker vi ikke opplysningene dine til det.',
    ('nb', 'objected'): 'Du protesterte mot «Personlig tilpasset innhold», så vi bruker ikke opplysningene dine til det.',
    ('nb', 'permitted'): '«Personlig tilpasset innhold» bygger på vår berettigede interesse; du kan protestere når som helst.',
}
FALLBACK = {
    ('en', 'timeout'): 'Our recommendation service could not be used (no answer in time), so our own rules chose this.',
    ('en', 'error'): 'Our recommendation service could not be used (it answered with an error), so our own rules chose this.',
    ('en', 'invalid_answer'): 'Our recommendation service could not be used (its answer could not be read), so our own rules chose this.',
    ('en', 'unreleased_attribute'): 'Our recommendation service could not be used (it cited data it was not given), so our own rules chose this.',
    ('en', 'unavailable'): 'Our recommendation service could not be used (it is not set up), so our own rules chose this.',
    ('de', 'timeout'): 'Unser Empfehlungsdienst war nicht nutzbar (keine Antwort rechtzeitig), daher haben unsere eigenen Regeln dies ausgewählt.',
    ('de', 'error'): 'Unser Empfehlungsdienst war nicht nutzbar (er antwortete mit einem Fehler), daher haben unsere eigenen Regeln dies ausgewählt.',
    ('de', 'invalid_answer'): 'Unser Empfehlungsdienst war nicht nutzbar (seine Antwort war nicht lesbar), daher haben unsere eigenen Regeln dies ausgewählt.',
    ('de', 'unreleased_attribute'): 'Unser Empfehlungsdienst war nicht nutzbar (er berief sich auf Daten, die er nicht erhalten hatte), daher haben unsere eigenen Regeln dies ausgewählt.',
    ('de', 'unavailable'): 'Unser Empfehlungsdienst war nicht nutzbar (er ist nicht eingerichtet), daher haben unsere eigenen Regeln dies ausgewählt.',
    ('nb', 'timeout'): 'Anbefalingstjenesten vår kunne ikke brukes (ikke svar i tide), så våre egne regler valgte dette.',
    ('nb', 'error'): 'Anbefalingstjenesten vår kunne ikke brukes (den svarte med en feil), så våre egne regler valgte dette.',
    ('nb', 'invalid_answer'): 'Anbefalingstjenesten vår kunne ikke brukes (svaret kunne ikke leses), så våre egne regler valgte dette.',
    ('nb', 'unreleased_attribute'): 'Anbefalingstjenesten vår kunne ikke brukes (den viste til opplysninger den ikke hadde fått), så våre egne regler valgte dette.',
    ('nb', 'unavailable'): 'Anbefalingstjenesten vår kunne ikke brukes (den er ikke satt opp), så våre egne regler valgte dette.',
}
BACKEND_AND_USED = {
    'en': ['Our recommendation service chose this, using only the data listed here.', 'What we used: your customer status and orders count.', 'You can change your choice at any time in the privacy settings.'],
    'de': ['Unser Empfehlungsdienst hat dies ausgewählt und dabei nur die hier genannten Daten genutzt.', 'Was wir genutzt haben: Ihr Kundenstatus und orders count.', 'Sie können Ihre Entscheidung jederzeit in den Datenschutzeinstellungen ändern.'],
    'nb': ['Anbefalingstjenesten vår valgte dette og brukte bare opplysningene som står her.', 'Dette brukte vi: kundestatusen din og orders count.', 'Du kan endre valget ditt når som helst i personverninnstillingene.'],
}


def facts(**changes) -> dict:
    out = {"consent": {"status": "granted", "decided_at": "2026-11-23T10:00:00Z"},
           "purpose_titles": TITLES, "labels": LABELS, "used_attributes": [], "withheld_attributes": []}
    out.update(changes)
    return out


def test_every_reason_status_and_fallback_code_is_pinned_in_every_language():
    assert set(explain.LOCALES) == {"en", "de", "nb"}
    assert {(loc, r) for loc in explain.LOCALES for r in explain.REASONS[loc]} == set(WITHHELD)
    assert {(loc, f) for loc in explain.LOCALES for f in explain.FALLBACK_WHY[loc]} == set(FALLBACK)
    # every status of the README's table of consent statuses
    statuses = {"not_asked", "granted", "denied", "withdrawn", "expired", "reconsent_required",
                "permitted", "objected"}
    assert {(loc, s) for loc in explain.LOCALES for s in statuses} == set(STATUS)
    assert all(s in explain.TEXTS[loc] for loc in explain.LOCALES for s in statuses)


@pytest.mark.parametrize(("locale", "reason"), sorted(WITHHELD))
def test_withheld_reason_sentence(locale, reason):
    withheld = [{"attribute": "loyalty_tier", "reason": reason}]
    assert explain.details(facts(withheld_attributes=withheld), locale) == [
        GRANTED[locale], USED_NONE[locale], WITHHELD[(locale, reason)], CHANGE[locale]]


@pytest.mark.parametrize(("locale", "status"), sorted(STATUS))
def test_consent_status_sentence(locale, status):
    consent = {"status": status, "decided_at": "2026-11-23T10:00:00Z"}
    assert explain.details(facts(consent=consent), locale) == [
        STATUS[(locale, status)], USED_NONE[locale], CHANGE[locale]]


@pytest.mark.parametrize(("locale", "why"), sorted(FALLBACK))
def test_fallback_sentence(locale, why):
    assert explain.details(facts(fallback=why), locale) == [
        GRANTED[locale], FALLBACK[(locale, why)], USED_NONE[locale], CHANGE[locale]]


@pytest.mark.parametrize("locale", sorted(BACKEND_AND_USED))
def test_backend_and_used_sentences(locale):
    got = explain.details(facts(engine="backend", used_attributes=["loyalty_tier", "orders_count"]), locale)
    assert got == [GRANTED[locale], *BACKEND_AND_USED[locale]]


def test_an_unknown_locale_gets_the_english_sentences_pinned_above():
    out = explain.render({**facts(), "summaries": {"en": "Same for everyone."}, "engine": "rules",
                          "personalized": False, "placement": "homepage_hero", "purpose": "personalization",
                          "reasons": [], "policy_version": "v"}, "fr", decision_id="dec_1", controls={})
    assert out["locale"] == "en"
    assert out["details"] == [GRANTED["en"], USED_NONE["en"], CHANGE["en"]]
