"""Loading the policy from its directory, storing every version, and the public view."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import PolicyInvalid, PolicyProblem
from ..core.policy import POLICY_FILES, Policy, parse_policy
from ..core.taxonomy import fides_taxonomy
from ..store.db import Transaction
from ..store.policies import PolicyRepository
from . import audit, webhooks
from .context import Gateway


def read_policy_files(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        raise PolicyInvalid([PolicyProblem(str(directory), "", "is not a directory")])
    files = {}
    for name in POLICY_FILES:
        path = directory / name
        if path.exists():
            try:
                files[name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyInvalid([PolicyProblem(name, "", f"cannot be read: {exc}")]) from exc
    return files


def load_policy(directory: Path) -> tuple[Policy, dict[str, str]]:
    """Read and check a policy directory; raises PolicyInvalid naming every problem."""
    files = read_policy_files(directory)
    return parse_policy(files, fides_taxonomy()), files


def ensure_stored(gw: Gateway, session: Transaction) -> str:
    """Store the policy in force (once per version) and audit that it was loaded.

    Safe under concurrency (insert-or-nothing); the process only remembers that
    the version is stored once the transaction that stored it has committed.
    """
    version = gw.policy.version
    if gw.caches.policy_stored == version:
        return version
    now = gw.now()
    repo = PolicyRepository(session)
    if repo.store(version=version, declared_version=gw.policy.declared_version,
                  content_hash=gw.policy.content_hash, files=gw.policy_files, loaded_at=now):
        audit.record(session, "policy.loaded", actor="system", at=now, policy_version=version)
        webhooks.policy_changed(gw, session, version, now)

    def remember() -> None:
        gw.caches.policy_stored = version

    repo.after_commit(remember)
    return version


def public_view(policy: Policy, locale: str | None) -> dict:
    """GET /v1/policy: the policy in force, with notice texts in `locale` (or English)."""
    purposes = []
    for p in policy.purposes:
        used, notice = p.notice(locale)
        purposes.append(
            {
                "id": p.id,
                "version": p.version,
                "legal_basis": p.legal_basis,
                "title": notice.title,
                "description": notice.description,
                "locale": used,
                "lifetime_days": p.lifetime_days,
                "gpc": p.gpc,
                "special_categories": p.special_categories,
                "tcf_purposes": list(p.tcf_purposes),
                "consent_mode": list(p.consent_mode),
                "data_use": p.data_use,
            }
        )
    attributes = [
        {
            "id": a.id,
            "type": a.type,
            "data_category": a.data_category,
            "special_category": a.special_category,
            "purposes": list(a.purposes),
            "retention_days": a.retention_days,
        }
        for a in policy.attributes
    ]
    c = policy.controller
    return {
        "version": policy.version,
        "declared_version": policy.declared_version,
        "locale": locale if locale in policy.locales else "en",
        "locales": list(policy.locales),
        "controller": {"name": c.name, "contact": c.contact, "address": c.address, "dpo": c.dpo},
        "purposes": purposes,
        "attributes": attributes,
    }
