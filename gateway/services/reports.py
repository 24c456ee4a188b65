"""GDPR Art. 30 records of processing, derived from the policy and the configuration."""

from __future__ import annotations

from ..core.audit_chain import timestamp
from ..core.policy import Policy
from ..store.reports import ReportRepository
from . import webhooks
from .context import Gateway

DPV_BASIS = {
    "consent": "dpv:Consent",
    "legitimate_interest": "dpv:LegitimateInterest",
    "contract": "dpv:ContractPerformance",
    "legal_obligation": "dpv:LegalObligation",
}
BASIS_TEXT = {
    "consent": "Consent, GDPR Art. 6(1)(a)",
    "legitimate_interest": "Legitimate interest, GDPR Art. 6(1)(f)",
    "contract": "Performance of a contract, GDPR Art. 6(1)(b)",
    "legal_obligation": "Legal obligation, GDPR Art. 6(1)(c)",
}


def _taxonomy_names() -> dict[str, str]:
    from fideslang import DEFAULT_TAXONOMY

    return {i.fides_key: i.name for i in [*DEFAULT_TAXONOMY.data_use,
                                          *DEFAULT_TAXONOMY.data_category] if i.name is not None}


def _backends(policy: Policy) -> dict[str, list[dict[str, str]]]:
    by_purpose: dict[str, list[dict[str, str]]] = {}
    for placement in policy.placements:
        backend = placement.backend
        if backend is not None:
            by_purpose.setdefault(placement.purpose, []).append(
                {"type": "personalization_backend", "name": backend.url,
                 "placement": placement.id})
    return by_purpose


def processing_records(gw: Gateway) -> dict[str, object]:
    policy = gw.policy
    names = _taxonomy_names()
    with gw.db.read() as s:
        clients = ReportRepository(s).client_recipients()
    backends = _backends(policy)
    activities: list[dict[str, object]] = []
    for p in policy.purposes:
        _, notice = p.notice("en")
        attributes = [a for a in policy.attributes if p.id in a.purposes]
        recipients = [
            {"type": "client", "id": c.id, "name": c.name, "scopes": sorted(c.scopes)}
            for c in clients if p.id in c.purposes
        ] + backends.get(p.id, []) + webhooks.recipients(gw, p.id)
        activities.append({
            "purpose": p.id,
            "title": notice.title,
            "description": notice.description,
            "purpose_version": p.version,
            "legal_basis": p.legal_basis,
            "legal_basis_text": BASIS_TEXT[p.legal_basis],
            "legal_basis_dpv": DPV_BASIS[p.legal_basis],
            "data_use": p.data_use,
            "data_use_name": names.get(p.data_use, p.data_use),
            "special_categories": p.special_categories,
            "data_categories": sorted({a.data_category for a in attributes}),
            "data_category_names": sorted({names.get(a.data_category, a.data_category)
                                           for a in attributes}),
            "attributes": [
                {"id": a.id, "data_category": a.data_category,
                 "special_category": a.special_category, "retention_days": a.retention_days}
                for a in attributes
            ],
            "recipients": recipients,
            "retention": {
                "consent_lifetime_days": p.lifetime_days,
                "attribute_retention_days": {a.id: a.retention_days for a in attributes},
            },
            "gpc_honoured": p.gpc,
            "tcf_purposes": list(p.tcf_purposes),
            "consent_mode": list(p.consent_mode),
        })
    c = policy.controller
    return {
        "title": "Records of processing activities (GDPR Art. 30)",
        "generated_at": timestamp(gw.now()),
        "policy_version": policy.version,
        "controller": {"name": c.name, "contact": c.contact, "address": c.address, "dpo": c.dpo},
        "data_subjects": "Visitors and customers of the controller's website and apps",
        "security_measures": [
            "Subjects are stored and audited under keyed pseudonyms (HMAC-SHA256)",
            "Profile values encrypted at rest per subject (AES-256-GCM, envelope encryption)",
            "Tamper-evident audit log: hash chain with Ed25519-signed exports",
            "Service access by OAuth2 client credentials bound to scopes and purposes",
        ],
        "activities": activities,
    }
