"""Personalization decisions with their explanation, and "why am I seeing this" later."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from urllib.parse import quote

import structlog

from ..core import conditions, explain
from ..core.actor import Actor
from ..core.conditions import ReasonDict
from ..core.errors import FieldError, InvalidRequest, NotFound
from ..core.explain import ConsentFacts, Facts, WithheldFacts
from ..core.policy import JSON, Backend, Placement
from ..core.timefmt import iso as _iso
from ..core.view import PermittedView
from ..security.tokens import new_id
from ..store.db import Transaction
from ..store.decisions import DecisionRepository
from . import audit, backend, profiles
from .auth import clients
from .backend import BackendAnswer
from .context import Gateway
from .policy import ensure_stored

log = structlog.get_logger(__name__)
MAX_CONTEXT_KEYS = 20


def check_context(gw: Gateway, context: object) -> dict[str, Any]:
    """Request metadata only: flat, small, and never a catalogue attribute (no side door)."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidRequest("'context' must be an object",
                             errors=[FieldError("context", "expected an object")])
    errors = []
    if len(context) > MAX_CONTEXT_KEYS:
        errors.append(FieldError("context", f"at most {MAX_CONTEXT_KEYS} keys"))
    for key, value in context.items():
        if gw.policy.attribute(key) is not None:
            errors.append(FieldError(f"context.{key}", "names a catalogue attribute: personal data "
                                                       "goes through the profile, not the context"))
        elif not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and len(value) > 256):
            errors.append(FieldError(f"context.{key}", "must be a short text, number or boolean"))
    if errors:
        raise InvalidRequest("the context is not valid", errors=errors)
    return context


def _consent_facts(placement: Placement, view: PermittedView) -> ConsentFacts:
    state = view.state
    return {"purpose": placement.purpose, "status": state.status, "effective": state.effective,
            "decided_at": _iso(state.decided_at), "receipt_id": state.receipt_id}


def _purpose_titles(gw: Gateway, placement: Placement) -> dict[str, str]:
    purpose = gw.policy.purpose(placement.purpose)
    return {loc: n.title for loc, n in purpose.notices.items()} if purpose is not None else {}


def decide(gw: Gateway, actor: Actor, *, subject_id: str, placement: str, locale: str | None = None,
           context: object = None) -> dict[str, Any]:
    place = gw.policy.placement(placement)
    if place is None:
        raise InvalidRequest("unknown placement",
                             errors=[FieldError("placement", f"unknown placement {placement!r}")])
    clients.check_purpose(gw, actor, place.purpose, field="placement")
    context = check_context(gw, context)
    decision_id = new_id("dec")
    view = profiles.permitted(gw, actor, subject_id, place.purpose, audit_type=None)
    now = gw.now()
    withheld: list[WithheldFacts] = [{"attribute": w.attribute, "reason": w.reason} for w in view.withheld]
    fallback: str | None = None
    content: dict[str, JSON] = dict(place.default_content)
    rule_id: str | None = None
    engine = "rules"
    used: list[str] = []
    reasons: list[ReasonDict] = []
    summaries = dict(place.default_explanation)
    personalized = False
    remote: Backend | None = place.backend if view.effective else None
    answer: BackendAnswer | None = None
    if remote is not None:
        payload = {"decision_id": decision_id, "subject_id": subject_id, "placement": place.id,
                   "purpose": place.purpose, "locale": locale, "context": context,
                   "profile": dict(view.released)}
        answer = backend.call(remote, gw.settings.secret(remote.secret_env), payload,
                              set(view.released), gw.policy)
        if answer.failure is None and answer.content is not None:  # an answer without a failure has content
            content, engine, personalized = answer.content, "backend", True
            used = list(answer.attributes)
            if answer.explanation and "en" in answer.explanation:
                summaries = dict(answer.explanation)
            else:
                summaries = {loc: explain.TEXTS[loc]["backend"] for loc in explain.LOCALES}
        else:
            fallback = answer.failure
            log.warning("backend.fallback", placement=place.id, reason=answer.failure,
                        elapsed_ms=answer.elapsed_ms)
    if view.effective and engine == "rules" and place.rules:
        outcome = conditions.evaluate(place, view, context, now)
        reasons = [r.as_dict() for r in outcome.reasons]
        if outcome.rule is not None:
            content, rule_id, personalized = dict(outcome.rule.content), outcome.rule.id, True
            summaries = dict(outcome.rule.explanation)
            used = list(outcome.used_attributes)
    mentioned = set(used) | {w["attribute"] for w in withheld}
    labels = {a.id: dict(a.labels) for a in gw.policy.attributes if a.id in mentioned}
    facts: Facts = {
        "placement": place.id,
        "purpose": place.purpose,
        "purpose_titles": _purpose_titles(gw, place),
        "policy_version": gw.policy.version,
        "consent": _consent_facts(place, view),
        "withheld_attributes": withheld,
        "fallback": fallback,
        "engine": engine, "rule": rule_id, "personalized": personalized, "summaries": summaries,
        "reasons": reasons, "used_attributes": used, "labels": labels,
    }
    pseudonym = gw.pseudonymize(subject_id)
    with gw.db.write() as s:
        version = ensure_stored(gw, s)
        DecisionRepository(s).add(
            decision_id=decision_id, subject=pseudonym, placement=place.id, purpose=place.purpose,
            policy_version=version, personalized=personalized, engine=engine, rule=rule_id,
            content=content, explanation=facts, actor=actor.id, made_at=now)
        if remote is not None and answer is not None:
            _audit_backend(s, actor, now, pseudonym, decision_id, version, place, view, remote, answer)
        audit.record(s, "decision.made", actor=actor, at=now, subject=pseudonym, decision_id=decision_id,
                     placement=place.id, purpose=place.purpose, engine=engine, rule=rule_id,
                     personalized=personalized, attributes=sorted(used), fallback=fallback,
                     policy_version=version)
    return {
        "decision_id": decision_id,
        "placement": place.id,
        "purpose": place.purpose,
        "personalized": personalized,
        "content": content,
        "made_at": _iso(now),
        "explanation": explain.render(facts, locale, decision_id=decision_id, controls={
            "consents": f"/v1/subjects/{quote(subject_id, safe='')}/consents",
            "explanation": f"/v1/decisions/{decision_id}/explanation",
        }),
    }


def _audit_backend(s: Transaction, actor: Actor, now: datetime, pseudonym: str, decision_id: str,
                   version: str, place: Placement, view: PermittedView, remote: Backend,
                   answer: BackendAnswer) -> None:
    """What a call to the placement's backend released, and what it cited without being given."""
    if answer.failure != "unavailable":  # the call was made: the permitted view left the gateway
        audit.record(s, "profile.released", actor=actor, at=now, subject=pseudonym,
                     purpose=place.purpose, attributes=sorted(view.released),
                     recipient=remote.url, decision_id=decision_id, policy_version=version)
    if answer.failure == "unreleased_attribute":
        audit.record(s, "decision.backend_refused", actor=actor, at=now, subject=pseudonym,
                     decision_id=decision_id, placement=place.id, recipient=remote.url,
                     attributes=sorted(set(answer.attributes) - set(view.released)))


def explanation(gw: Gateway, actor: Actor, decision_id: str, locale: str | None) -> dict[str, Any]:
    """ "Why am I seeing this": a stored decision's explanation in `locale`; audited."""
    with gw.db.write() as s:
        row = DecisionRepository(s).get(decision_id) if len(decision_id) <= 40 else None
        if row is None:
            raise NotFound(f"no decision {decision_id!r}")
        audit.record(s, "explanation.viewed", actor=actor, at=gw.now(), subject=row.subject,
                     decision_id=decision_id, locale=locale)
        # `decide` stored these facts; JSON gives them back as plain dicts of the same shape
        facts, made_at = cast(Facts, row.explanation), row.made_at
    rendered = explain.render(facts, locale, decision_id=decision_id, controls={
        "consents": "/v1/subjects/{subject_id}/consents",
        "explanation": f"/v1/decisions/{decision_id}/explanation",
    })
    rendered["made_at"] = _iso(made_at)
    return rendered
