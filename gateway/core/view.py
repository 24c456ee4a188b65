"""The permitted view: the single function by which attribute values leave the gateway.

For a subject, a purpose and the time now, `permitted_view` releases an
attribute's value only if (README, "How data leaves the gateway"):

1. the attribute lists the purpose, and a special-category (Art. 9) attribute
   is used only by a purpose with `special_categories: true`;
2. the purpose's legal basis is effective at `now` (`gateway.core.consent.evaluate`);
3. the value is younger than the attribute's `retention_days`.

Every other attribute the subject has is withheld with the first of these
that fails: `not_permitted_for_purpose`, then the legal-basis reason
(`no_consent`, `consent_withdrawn`, `consent_expired`, `reconsent_required`,
`objected`), then `retention_expired`. Withheld entries carry names and
reasons, never values. Boundaries follow consent expiry (`now >= expires_at`):
a value written at `t` with `retention_days = d` is withheld from exactly
`t + d days` on. Pure: time comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .consent import WITHHELD_REASON, PurposeRecord, PurposeState, evaluate
from .errors import FieldError, InvalidRequest
from .policy import Attribute, Policy, Purpose

NOT_PERMITTED_FOR_PURPOSE = "not_permitted_for_purpose"
RETENTION_EXPIRED = "retention_expired"
# every withheld reason, in the order in which they are checked
REASONS: tuple[str, ...] = (
    NOT_PERMITTED_FOR_PURPOSE,
    *dict.fromkeys(WITHHELD_REASON.values()),
    RETENTION_EXPIRED,
)


@dataclass(frozen=True)
class StoredValue:
    """One attribute value of a subject, decrypted, with the time it was written."""

    value: Any
    written_at: datetime


@dataclass(frozen=True)
class Withheld:
    """An attribute the subject has that this purpose may not see, and why."""

    attribute: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"attribute": self.attribute, "reason": self.reason}


@dataclass(frozen=True)
class PermittedView:
    """What one purpose may see of one subject's profile at one moment."""

    purpose: str
    effective: bool
    state: PurposeState  # the purpose's legal-basis state at `now`
    released: Mapping[str, Any] = field(hash=False)  # attribute id -> value, catalogue order
    withheld: tuple[Withheld, ...]  # names and reasons, never values; catalogue order

    def withheld_reason(self, attribute_id: str) -> str | None:
        """The reason `attribute_id` is withheld, or None if it is released or absent."""
        return next((w.reason for w in self.withheld if w.attribute == attribute_id), None)

    def as_dict(self) -> dict[str, object]:
        """The view's JSON shape (openapi.yaml: `PermittedView`), without subject and policy version."""
        return {
            "purpose": self.purpose,
            "effective": self.effective,
            "attributes": dict(self.released),
            "withheld": [w.as_dict() for w in self.withheld],
        }


def retention_deadline(attribute: Attribute, written_at: datetime) -> datetime | None:
    """The first moment a value written at `written_at` is withheld, or None if kept indefinitely."""
    if attribute.retention_days is None:
        return None
    return written_at + timedelta(days=attribute.retention_days)


def permitted_for_purpose(attribute: Attribute, purpose: Purpose) -> bool:
    """Whether the catalogue lets `purpose` use `attribute` at all (whatever the legal basis)."""
    if purpose.id not in attribute.purposes:
        return False
    return purpose.special_categories or not attribute.special_category


def withheld_reason(
    attribute: Attribute, purpose: Purpose, state: PurposeState, stored: StoredValue, now: datetime
) -> str | None:
    """The first reason that keeps `stored` from `purpose` at `now`, or None to release it."""
    if not permitted_for_purpose(attribute, purpose):
        return NOT_PERMITTED_FOR_PURPOSE
    if not state.effective:
        return state.withheld_reason
    deadline = retention_deadline(attribute, stored.written_at)
    if deadline is not None and now >= deadline:
        return RETENTION_EXPIRED
    return None


def permitted_view(
    policy: Policy,
    records: Mapping[str, PurposeRecord],
    profile: Mapping[str, StoredValue],
    purpose_id: str,
    now: datetime,
) -> PermittedView:
    """The attributes of `profile` that `purpose_id` may see at `now`, and why the others not.

    `records` are the subject's current consent records by purpose id;
    `profile` the subject's decrypted values by attribute id. Only attributes
    the subject has appear; those the catalogue no longer defines are ignored.
    Raises InvalidRequest for a purpose the policy does not define.
    """
    purpose = policy.purpose(purpose_id)
    if purpose is None:
        raise InvalidRequest(
            "the policy does not define this purpose",
            errors=[FieldError("purpose", f"unknown purpose '{purpose_id}'")],
        )
    state = evaluate(purpose, records.get(purpose.id), now)
    released: dict[str, Any] = {}
    withheld: list[Withheld] = []
    for attribute in policy.attributes:
        stored = profile.get(attribute.id)
        if stored is None:
            continue
        reason = withheld_reason(attribute, purpose, state, stored, now)
        if reason is None:
            released[attribute.id] = stored.value
        else:
            withheld.append(Withheld(attribute.id, reason))
    return PermittedView(
        purpose=purpose.id,
        effective=state.effective,
        state=state,
        released=released,
        withheld=tuple(withheld),
    )
