"""Consent rules: what a person's choices mean for each purpose, now.

The stored record of a purpose holds what was decided (`granted`, `denied`,
`withdrawn`, `objected`, `permitted`); `evaluate` adds time and policy:
expiry after `lifetime_days` and renewal after a purpose's version goes up.
Everything here is pure: time, policy and prior state come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import FieldError, InvalidRequest
from .policy import CONSENT_MODE_TYPES, Policy, Purpose

GRANTED = "granted"
DENIED = "denied"
CHOICES = (GRANTED, DENIED)

# statuses reported per purpose (openapi.yaml: `PurposeStatus`)
NOT_ASKED = "not_asked"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
RECONSENT_REQUIRED = "reconsent_required"
PERMITTED = "permitted"
OBJECTED = "objected"

# how a choice reached us
METHOD_BANNER = "banner"
METHOD_API = "api"
METHOD_GPC = "gpc"
METHOD_TCF = "tcf"
METHOD_ERASURE = "erasure"  # Art. 17: erasure stops processing

# withheld reasons by status (README, "How data leaves the gateway"), used by profiles and decisions
WITHHELD_REASON = {
    NOT_ASKED: "no_consent",
    DENIED: "no_consent",
    WITHDRAWN: "consent_withdrawn",
    EXPIRED: "consent_expired",
    RECONSENT_REQUIRED: "reconsent_required",
    OBJECTED: "objected",
}


@dataclass(frozen=True)
class PurposeRecord:
    """The last recorded decision for one subject and purpose (the current-state row)."""

    purpose: str
    status: str  # granted | denied | withdrawn | objected | permitted
    purpose_version: int
    decided_at: datetime
    expires_at: datetime | None
    receipt_id: str
    method: str


@dataclass(frozen=True)
class PurposeState:
    """What a purpose's legal basis amounts to at one moment."""

    purpose: str
    legal_basis: str
    status: str
    effective: bool
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    purpose_version: int | None = None
    receipt_id: str | None = None
    method: str | None = None

    @property
    def withheld_reason(self) -> str | None:
        """The reason an attribute is withheld for this purpose, or None when effective."""
        return None if self.effective else WITHHELD_REASON.get(self.status, "no_consent")


@dataclass(frozen=True)
class Choice:
    """One decision to record: purpose, `granted` or `denied`, and how it came."""

    purpose: str
    value: str
    method: str


def evaluate(purpose: Purpose, record: PurposeRecord | None, now: datetime) -> PurposeState:
    """The status and effectiveness of `purpose` at `now`, given its last record."""
    basis = purpose.legal_basis
    if basis in ("contract", "legal_obligation"):
        return PurposeState(purpose.id, basis, PERMITTED, True)
    if basis == "legitimate_interest":
        if record is None:
            return PurposeState(purpose.id, basis, PERMITTED, True, purpose_version=None)
        status = OBJECTED if record.status == OBJECTED else PERMITTED
        return _state(purpose, record, status, status == PERMITTED)
    if record is None:
        return PurposeState(purpose.id, basis, NOT_ASKED, False)
    if record.status != GRANTED:
        return _state(purpose, record, record.status, False)
    if record.purpose_version < purpose.version:
        return _state(purpose, record, RECONSENT_REQUIRED, False)
    if record.expires_at is not None and now >= record.expires_at:
        return _state(purpose, record, EXPIRED, False)
    return _state(purpose, record, GRANTED, True)


def _state(purpose: Purpose, record: PurposeRecord, status: str, effective: bool) -> PurposeState:
    return PurposeState(
        purpose=purpose.id,
        legal_basis=purpose.legal_basis,
        status=status,
        effective=effective,
        decided_at=record.decided_at,
        expires_at=record.expires_at,
        purpose_version=record.purpose_version,
        receipt_id=record.receipt_id,
        method=record.method,
    )


def next_record(
    purpose: Purpose,
    previous: PurposeRecord | None,
    choice: Choice,
    *,
    at: datetime,
    receipt_id: str,
) -> PurposeRecord:
    """The record that results from applying `choice` after `previous`."""
    if purpose.legal_basis == "legitimate_interest":
        status = OBJECTED if choice.value == DENIED else PERMITTED
        expires_at = None
    elif choice.value == GRANTED:
        status = GRANTED
        expires_at = at + timedelta(days=purpose.lifetime_days) if purpose.lifetime_days else None
    else:
        was_given = previous is not None and previous.status in (GRANTED, WITHDRAWN)
        status = WITHDRAWN if was_given else DENIED
        expires_at = None
    return PurposeRecord(
        purpose=purpose.id,
        status=status,
        purpose_version=purpose.version,
        decided_at=at,
        expires_at=expires_at,
        receipt_id=receipt_id,
        method=choice.method,
    )


def resolve_choices(
    policy: Policy,
    requested: Mapping[str, str],
    *,
    method: str,
    tcf_consents: Iterable[int] | None = None,
    gpc: bool = False,
) -> list[Choice]:
    """Merge the body's choices, a TC string's purpose consents and a GPC signal.

    Precedence, strongest last: the body, then the TC string for purposes that
    map to TCF purposes, then GPC, which denies every `gpc: true` purpose.
    Raises InvalidRequest for unknown purposes, bad values and purposes whose
    legal basis no choice can change.
    """
    errors: list[FieldError] = []
    for pid, value in requested.items():
        purpose = policy.purpose(pid)
        if purpose is None:
            errors.append(FieldError(f"purposes.{pid}", "unknown purpose"))
        elif not purpose.settable:
            errors.append(
                FieldError(
                    f"purposes.{pid}",
                    f"legal basis is {purpose.legal_basis}: no choice can change it",
                )
            )
        elif value not in CHOICES:
            errors.append(FieldError(f"purposes.{pid}", "must be 'granted' or 'denied'"))
    if errors:
        raise InvalidRequest("the choices name purposes that cannot be set", errors=errors)

    choices: dict[str, Choice] = {
        pid: Choice(pid, value, method) for pid, value in requested.items()
    }
    if tcf_consents is not None:
        granted_bits = set(tcf_consents)
        for purpose in policy.purposes:
            if purpose.tcf_purposes and purpose.legal_basis == "consent":
                ok = all(n in granted_bits for n in purpose.tcf_purposes)
                choices[purpose.id] = Choice(purpose.id, GRANTED if ok else DENIED, METHOD_TCF)
    if gpc:
        for purpose in policy.purposes:
            if purpose.gpc:
                choices[purpose.id] = Choice(purpose.id, DENIED, METHOD_GPC)
    order = {p.id: i for i, p in enumerate(policy.purposes)}
    return sorted(choices.values(), key=lambda c: order[c.purpose])


def withdraw_all(policy: Policy, *, method: str) -> list[Choice]:
    """Art. 7(3): one call denies every consent-based purpose."""
    return [Choice(p.id, DENIED, method) for p in policy.purposes if p.legal_basis == "consent"]


def erasure_choices(policy: Policy) -> list[Choice]:
    """Art. 17: erasure stops processing. Every consent-based purpose is denied (withdrawn
    where it was given) and every legitimate-interest purpose objected to, method `erasure`."""
    return [Choice(p.id, DENIED, METHOD_ERASURE) for p in policy.purposes
            if p.legal_basis in ("consent", "legitimate_interest")]


def states(
    policy: Policy, records: Mapping[str, PurposeRecord], now: datetime
) -> list[PurposeState]:
    """Every purpose of the policy, in policy order, evaluated at `now`."""
    return [evaluate(p, records.get(p.id), now) for p in policy.purposes]


def consent_mode(policy: Policy, current: Iterable[PurposeState]) -> dict[str, str]:
    """Google Consent Mode v2: a type is granted iff every purpose listing it is effective."""
    effective = {s.purpose: s.effective for s in current}
    result = {}
    for mode in CONSENT_MODE_TYPES:
        listing = [p.id for p in policy.purposes if mode in p.consent_mode]
        ok = bool(listing) and all(effective.get(pid, False) for pid in listing)
        result[mode] = GRANTED if ok else DENIED
    return result
