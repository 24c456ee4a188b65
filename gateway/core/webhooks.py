"""Webhooks, the pure part: event types, which changes a consent write makes, the bodies, the
retry schedule, and which URLs and addresses a subscription may use.

Nothing here reads the clock, the network or the database: times, resolved addresses and
random numbers come in as arguments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from .consent import PurposeState
from .errors import FieldError
from .policy import Policy
from .timefmt import iso

CONSENT_CHANGED = "consent.changed"
SUBJECT_ERASED = "subject.erased"
SUBJECT_LINKED = "subject.linked"
POLICY_CHANGED = "policy.changed"
EVENT_TYPES = (CONSENT_CHANGED, SUBJECT_ERASED, SUBJECT_LINKED, POLICY_CHANGED)

# delivery statuses (openapi.yaml: `WebhookDelivery.status`)
PENDING = "pending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
OPEN = (PENDING, RETRYING)  # may still be sent
DELIVERY_STATUSES = (PENDING, RETRYING, DELIVERED, FAILED)

# subscription statuses
ACTIVE = "active"
DISABLED = "disabled"

# API.md: about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the failed attempts, then failed
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
JITTER = 0.2  # each delay is drawn from [0.8, 1.2] of the schedule's value

# how a derived change (noticed at a read, not recorded as a choice) came about
METHOD_EXPIRY = "expiry"
METHOD_POLICY_CHANGE = "policy_change"

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 500


def retry_delay(attempts: int, rand: float) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt, or None when it was the last.

    `rand` is uniform in [0, 1): the jitter that keeps a receiver that comes back from being
    hit by every retry at the same moment."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[attempts - 1]
    return base * (1 - JITTER + 2 * JITTER * rand)


@dataclass(frozen=True)
class Change:
    """One purpose whose status moved, as a `consent.changed` event lists it."""

    purpose: str
    before: str
    after: str
    effective: bool
    method: str | None
    expires_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {"purpose": self.purpose, "from": self.before, "to": self.after,
                "effective": self.effective, "method": self.method,
                "expires_at": iso(self.expires_at)}


def changes(before: Sequence[PurposeState], after: Sequence[PurposeState]) -> list[Change]:
    """The purposes whose status differs between two evaluations of the same policy, in
    policy order. A purpose granted again while granted is no change."""
    previous = {s.purpose: s for s in before}
    out = []
    for state in after:
        old = previous.get(state.purpose)
        old_status = old.status if old is not None else "not_asked"
        if old_status != state.status:
            out.append(Change(state.purpose, old_status, state.status, state.effective,
                              state.method, state.expires_at))
    return out


def common_method(items: Iterable[Change], default: str) -> str:
    """The method of every change if they share one (an erasure, a GPC signal), else `default`
    (the caller's: banner or api)."""
    methods = {c.method for c in items}
    only = methods.pop() if len(methods) == 1 else None
    return only if only is not None else default


def only_purposes(data: Mapping[str, object], purposes: Sequence[str] | None) -> dict[str, object] | None:
    """`data` of a consent.changed event with only the changes of `purposes` (None: all), or
    None when none is left: a subscription never hears of purposes it did not ask for."""
    if purposes is None:
        return dict(data)
    wanted = set(purposes)
    raw = data.get("changes")
    kept = [c for c in raw if isinstance(c, Mapping) and c.get("purpose") in wanted] \
        if isinstance(raw, list) else []
    if not kept:
        return None
    return {**data, "changes": kept}


def body(event_type: str, occurred_at: datetime, data: Mapping[str, object]) -> dict[str, object]:
    """What every delivery posts: `{"type", "timestamp", "data"}` (Standard Webhooks)."""
    return {"type": event_type, "timestamp": iso(occurred_at), "data": dict(data)}


# -- where a subscription may point ------------------------------------------------------------


def url_problems(url: object, *, https_only: bool) -> list[FieldError]:
    """What is wrong with a subscription's URL as written (the address is checked apart)."""
    if not isinstance(url, str) or not url:
        return [FieldError("url", "required: an absolute http(s) URL")]
    if len(url) > MAX_URL_LENGTH:
        return [FieldError("url", f"at most {MAX_URL_LENGTH} characters")]
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return [FieldError("url", "must not contain spaces or control characters")]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [FieldError("url", "not a valid URL")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [FieldError("url", "must be an absolute http(s) URL")]
    if https_only and parts.scheme != "https":
        return [FieldError("url", "must be https in production")]
    if parts.username is not None or parts.password is not None:
        return [FieldError("url", "must not carry credentials")]
    if parts.fragment:
        return [FieldError("url", "must not have a fragment")]
    if port == 0:
        return [FieldError("url", "port 0 is not a port")]
    return []


def address_blocked(address: str) -> bool:
    """Whether a resolved address is one a webhook may not reach without
    GATEWAY_WEBHOOK_ALLOW_PRIVATE: loopback, private, link-local, shared, reserved, multicast,
    unspecified (IPv4 inside IPv6 is judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return not ip.is_global or ip.is_multicast


def event_problems(events: object) -> list[FieldError]:
    if not isinstance(events, list) or not events:
        return [FieldError("events", f"a non-empty list of {', '.join(EVENT_TYPES)}")]
    return [FieldError(f"events[{i}]", f"unknown event type; known: {', '.join(EVENT_TYPES)}")
            for i, e in enumerate(events) if e not in EVENT_TYPES]


# -- policy.changed --------------------------------------------------------------------------


def purpose_versions(purposes_yaml: object) -> dict[str, int]:
    """{purpose id: version} of a stored policy's purposes.yaml; {} when it cannot be read."""
    from .policy.problems import Problems
    from .policy.safe_yaml import load

    if not isinstance(purposes_yaml, str):
        return {}
    document = load(purposes_yaml, Problems("purposes.yaml"))
    entries = document.get("purposes") if isinstance(document, dict) else None
    out: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) \
                and isinstance(entry.get("version"), int):
            out[entry["id"]] = entry["version"]
    return out


def reconsent_required(policy: Policy, previous: Mapping[str, int]) -> list[str]:
    """The consent purposes whose version went up since the previous policy: every consent
    given for them must be given again."""
    return [p.id for p in policy.purposes
            if p.legal_basis == "consent" and p.id in previous and p.version > previous[p.id]]
