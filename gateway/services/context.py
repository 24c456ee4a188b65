"""The gateway's wiring: what every service needs, built once by create_app or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..core.errors import PolicyInvalid, PolicyProblem
from ..core.policy import Policy
from ..security import jwt
from ..security.envelope import KeyRing
from ..security.pseudonym import Pseudonymizer
from ..security.signing import AuditSigner
from ..settings import Settings
from ..store.db import Database
from .auth.idp import IdpKeys


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Caches:
    """What the services remember between requests. Every field is safe to lose: losing one
    costs a read or a computation, never a wrong answer."""

    # the passphrase that protects the token signing keys at rest (read once from the
    # environment or instance/)
    signing_key_passphrase: bytes | None = None
    # the active token signing key, unwrapped, by kid (only the active one is kept)
    signing_keys: dict[str, jwt.PrivateKey] = field(default_factory=dict)
    # (issuer, token) -> (claims, valid from, valid until) for bearer tokens already verified
    verified_tokens: dict[tuple[str, str], tuple[dict[str, Any], int, int]] = field(
        default_factory=dict)
    # the organisation's IdP's signing keys, fetched from its JWKS URL (with their own lock)
    idp_keys: IdpKeys = field(default_factory=IdpKeys)
    # the policy version last recorded in policy_versions by this process
    policy_stored: str | None = None
    # when this process last signed the audit chain's head (monotonic seconds)
    audit_sealed_at: float = 0.0
    # the audit signing key, loaded once
    audit_signer: AuditSigner | None = None
    # when this process last swept expired rate-limit windows (monotonic seconds)
    rate_sweep_at: float = 0.0


@dataclass
class Gateway:
    settings: Settings
    db: Database
    # None only on the command line, when the policy on disk is invalid (so that
    # `policy check` can say why); create_app refuses to serve without one
    loaded_policy: Policy | None
    policy_files: dict[str, str]
    pseudonymize: Pseudonymizer
    keyring: KeyRing
    clock: Callable[[], datetime] = utcnow
    caches: Caches = field(default_factory=Caches)

    @property
    def policy(self) -> Policy:
        """The policy in force; a command that needs one fails clearly when none loaded."""
        if self.loaded_policy is None:
            raise PolicyInvalid([PolicyProblem(
                str(self.settings.policy_dir), "",
                "the policy on disk is invalid; run 'flask --app gateway policy check' to see why")])
        return self.loaded_policy

    def now(self) -> datetime:
        """The current time, truncated to microseconds and always aware UTC."""
        return self.clock().astimezone(UTC)
