"""Explanations a person can read: "why am I seeing this", in English, German and Norwegian.

A decision stores the facts (which rule, which data, which consent, what was
not used and why) and the summaries in every language; `render` turns them
into the explanation for one locale, with plain sentences built here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

from . import locale as _locale
from .conditions import ReasonDict

LOCALES = ("en", "de", "nb")
FALLBACK = _locale.FALLBACK


class ConsentFacts(TypedDict):
    """The legal-basis state the decision rested on (`effective` is internal, never shown)."""

    purpose: str
    status: str
    effective: NotRequired[bool]
    decided_at: str | None
    receipt_id: str | None


class WithheldFacts(TypedDict):
    attribute: str
    reason: str


class Facts(TypedDict):
    """What a decision stores to explain itself later: the input of `render`, stored as JSON.

    Stored decisions keep this shape; a new key must be NotRequired so that older
    decisions still render.
    """

    placement: str
    purpose: str
    purpose_titles: dict[str, str]  # the purpose's notice title per locale
    policy_version: str
    consent: ConsentFacts
    withheld_attributes: list[WithheldFacts]
    fallback: str | None  # why the backend was not used, or None
    engine: str  # rules | backend
    rule: str | None
    personalized: bool
    summaries: dict[str, str]  # the explanation of the content, per locale (English at least)
    reasons: list[ReasonDict]
    used_attributes: list[str]
    labels: NotRequired[dict[str, dict[str, str]]]  # attribute -> its label per locale, for those mentioned

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "granted": "You agreed to \u201c{purpose}\u201d on {date}.",
        "not_asked": "You have not agreed to \u201c{purpose}\u201d, so we do not use your data for it.",
        "denied": "You said no to \u201c{purpose}\u201d, so we do not use your data for it.",
        "withdrawn": "You withdrew your consent to \u201c{purpose}\u201d, so we no longer use your "
                     "data for it.",
        "expired": "Your consent to \u201c{purpose}\u201d has expired, so we do not use your data for it "
                   "until you renew it.",
        "reconsent_required": "We changed what \u201c{purpose}\u201d covers. Until you agree again, we do "
                              "not use your data for it.",
        "objected": "You objected to \u201c{purpose}\u201d, so we do not use your data for it.",
        "permitted": "\u201c{purpose}\u201d rests on our legitimate interest; you can object at any time.",
        "used": "What we used: {items}.",
        "used_none": "We did not use any of your data for this.",
        "withheld": "What we did not use: {items}.",
        "fallback": "Our recommendation service could not be used ({why}), so our own rules chose this.",
        "backend": "Our recommendation service chose this, using only the data listed here.",
        "change": "You can change your choice at any time in the privacy settings.",
        "and": "and",
    },
    "de": {
        "granted": "Sie haben \u201e{purpose}\u201c am {date} zugestimmt.",
        "not_asked": "Sie haben \u201e{purpose}\u201c nicht zugestimmt, daher nutzen wir Ihre Daten "
                     "dafür nicht.",
        "denied": "Sie haben \u201e{purpose}\u201c abgelehnt, daher nutzen wir Ihre Daten dafür nicht.",
        "withdrawn": "Sie haben Ihre Einwilligung zu \u201e{purpose}\u201c widerrufen, daher nutzen wir Ihre "
                     "Daten dafür nicht mehr.",
        "expired": "Ihre Einwilligung zu \u201e{purpose}\u201c ist abgelaufen. Bis Sie sie erneuern, nutzen "
                   "wir Ihre Daten dafür nicht.",
        "reconsent_required": "Wir haben geändert, was \u201e{purpose}\u201c umfasst. Bis Sie erneut "
                              "zustimmen, nutzen wir Ihre Daten dafür nicht.",
        "objected": "Sie haben \u201e{purpose}\u201c widersprochen, daher nutzen wir Ihre Daten dafür nicht.",
        "permitted": "\u201e{purpose}\u201c beruht auf unserem berechtigten Interesse; Sie können jederzeit "
                     "widersprechen.",
        "used": "Was wir genutzt haben: {items}.",
        "used_none": "Wir haben dafür keine Ihrer Daten genutzt.",
        "withheld": "Was wir nicht genutzt haben: {items}.",
        "fallback": "Unser Empfehlungsdienst war nicht nutzbar ({why}), daher haben unsere eigenen Regeln "
                    "dies ausgewählt.",
        "backend": "Unser Empfehlungsdienst hat dies ausgewählt und dabei nur die hier genannten Daten "
                   "genutzt.",
        "change": "Sie können Ihre Entscheidung jederzeit in den Datenschutzeinstellungen ändern.",
        "and": "und",
    },
    "nb": {
        "granted": "Du samtykket til \u00ab{purpose}\u00bb {date}.",
        "not_asked": "Du har ikke samtykket til \u00ab{purpose}\u00bb, så vi bruker ikke opplysningene dine "
                     "til det.",
        "denied": "Du sa nei til \u00ab{purpose}\u00bb, så vi bruker ikke opplysningene dine til det.",
        "withdrawn": "Du trakk tilbake samtykket til \u00ab{purpose}\u00bb, så vi bruker ikke lenger "
                     "opplysningene dine til det.",
        "expired": "Samtykket ditt til \u00ab{purpose}\u00bb er utløpt. Til du fornyer det, bruker vi ikke "
                   "opplysningene dine til det.",
        "reconsent_required": "Vi har endret hva \u00ab{purpose}\u00bb omfatter. Til du samtykker på nytt, "
                              "bruker vi ikke opplysningene dine til det.",
        "objected": "Du protesterte mot \u00ab{purpose}\u00bb, så vi bruker ikke opplysningene dine til det.",
        "permitted": "\u00ab{purpose}\u00bb bygger på vår berettigede interesse; du kan protestere når "
                     "som helst.",
        "used": "Dette brukte vi: {items}.",
        "used_none": "Vi brukte ingen av opplysningene dine til dette.",
        "withheld": "Dette brukte vi ikke: {items}.",
        "fallback": "Anbefalingstjenesten vår kunne ikke brukes ({why}), så våre egne regler valgte dette.",
        "backend": "Anbefalingstjenesten vår valgte dette og brukte bare opplysningene som står her.",
        "change": "Du kan endre valget ditt når som helst i personverninnstillingene.",
        "and": "og",
    },
}

REASONS: dict[str, dict[str, str]] = {
    "en": {
        "not_permitted_for_purpose": "not allowed for this purpose",
        "no_consent": "no consent",
        "consent_withdrawn": "consent withdrawn",
        "consent_expired": "consent expired",
        "reconsent_required": "consent needs renewing",
        "objected": "you objected",
        "retention_expired": "too old to use",
        "absent": "we do not have it",
    },
    "de": {
        "not_permitted_for_purpose": "für diesen Zweck nicht erlaubt",
        "no_consent": "keine Einwilligung",
        "consent_withdrawn": "Einwilligung widerrufen",
        "consent_expired": "Einwilligung abgelaufen",
        "reconsent_required": "Einwilligung muss erneuert werden",
        "objected": "Sie haben widersprochen",
        "retention_expired": "zu alt, um sie zu nutzen",
        "absent": "liegt uns nicht vor",
    },
    "nb": {
        "not_permitted_for_purpose": "ikke tillatt til dette formålet",
        "no_consent": "mangler samtykke",
        "consent_withdrawn": "samtykket er trukket tilbake",
        "consent_expired": "samtykket er utløpt",
        "reconsent_required": "samtykket må fornyes",
        "objected": "du har protestert",
        "retention_expired": "for gammelt til å brukes",
        "absent": "har vi ikke",
    },
}

FALLBACK_WHY: dict[str, dict[str, str]] = {
    "en": {"timeout": "no answer in time", "error": "it answered with an error",
           "invalid_answer": "its answer could not be read",
           "unreleased_attribute": "it cited data it was not given", "unavailable": "it is not set up"},
    "de": {"timeout": "keine Antwort rechtzeitig", "error": "er antwortete mit einem Fehler",
           "invalid_answer": "seine Antwort war nicht lesbar",
           "unreleased_attribute": "er berief sich auf Daten, die er nicht erhalten hatte",
           "unavailable": "er ist nicht eingerichtet"},
    "nb": {"timeout": "ikke svar i tide", "error": "den svarte med en feil",
           "invalid_answer": "svaret kunne ikke leses",
           "unreleased_attribute": "den viste til opplysninger den ikke hadde fått",
           "unavailable": "den er ikke satt opp"},
}


def _join(items: Sequence[str], locale: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {TEXTS[locale]['and']} " + items[-1]


def details(facts: Facts, locale: str) -> list[str]:
    """Plain sentences: the consent, the data used, the data not used, how to change it."""
    t = TEXTS[locale]
    consent = facts["consent"]
    purpose = _locale.pick(facts["purpose_titles"], locale)[1]
    status = consent["status"]
    sentences = []
    if status == "granted":
        sentences.append(t["granted"].format(purpose=purpose, date=(consent.get("decided_at") or "")[:10]))
    elif status in t:
        sentences.append(t[status].format(purpose=purpose))
    labels = facts.get("labels", {})

    def label(name: str) -> str:
        return _locale.pick_or(labels.get(name) or {}, locale, name.replace("_", " "))

    fallback = facts.get("fallback")
    if fallback:
        why = FALLBACK_WHY[locale].get(fallback, fallback)
        sentences.append(t["fallback"].format(why=why))
    elif facts.get("engine") == "backend":
        sentences.append(t["backend"])
    used = facts.get("used_attributes") or []
    sentences.append(t["used"].format(items=_join([label(a) for a in used], locale)) if used
                     else t["used_none"])
    withheld = facts.get("withheld_attributes") or []
    if withheld:
        items = [f"{label(w['attribute'])} ({REASONS[locale].get(w['reason'], w['reason'])})"
                 for w in withheld]
        sentences.append(t["withheld"].format(items=_join(items, locale)))
    sentences.append(t["change"])
    return sentences


def render(facts: Facts, locale: str | None, *, decision_id: str,
           controls: Mapping[str, str]) -> dict[str, object]:
    """The explanation of a stored decision in `locale` (falling back to English)."""
    used_locale, summary = _locale.pick(facts["summaries"], locale)
    sentence_locale = used_locale if used_locale in TEXTS else FALLBACK
    return {
        "decision_id": decision_id,
        "locale": used_locale,
        "summary": summary,
        "details": details(facts, sentence_locale),
        "engine": facts["engine"],
        "rule": facts.get("rule"),
        "fallback": facts.get("fallback"),
        "personalized": facts["personalized"],
        "placement": facts["placement"],
        "purpose": facts["purpose"],
        "reasons": facts["reasons"],
        "used_attributes": facts["used_attributes"],
        "withheld_attributes": facts["withheld_attributes"],
        "consent": {k: v for k, v in facts["consent"].items() if k != "effective"},
        "policy_version": facts["policy_version"],
        "controls": dict(controls),
    }
