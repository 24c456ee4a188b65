"""Exact decoder and validator for IAB TCF v2 TC strings (v2.2 / v2.3 rules).

A TC string is one or more base64url segments joined by ``.``; the core segment comes first
and every other segment starts with a 3-bit type. Fields are big-endian bit fields, laid out
as in the IAB Tech Lab's "TCF v2: Consent string and vendor list formats" specification.
This module is pure: standard library only, no I/O, no clock.

``decode`` turns any ``str`` into a :class:`TCString` or raises :class:`TCFError`; ``validate``
applies today's policy rules; ``parse_for_consent`` does both, which is what the consent
endpoint needs.
"""

from __future__ import annotations

import builtins
import re
import string
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

__all__ = ["ERROR_CODES", "PublisherTC", "TCFError", "TCString", "decode", "parse_for_consent",
           "validate"]

ERROR_CODES = frozenset({
    "malformed", "not_version_2", "policy_version_below_4", "not_service_specific",
    "legitimate_interest_for_purposes_3_to_6", "disclosed_vendors_missing",
})

_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
_SEXTETS = {char: format(value, "06b") for value, char in enumerate(_ALPHABET)}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_IDS_PER_SEGMENT = 1 << 18  # four full 16-bit id lists; stops range lists from exploding
_DISCLOSED, _ALLOWED, _PUBLISHER_TC = 1, 2, 3


class TCFError(ValueError):
    """A TC string that cannot be decoded or that breaks a TCF rule; ``code`` names the rule."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _malformed(message: str) -> TCFError:
    return TCFError("malformed", message)


@dataclass(frozen=True)
class PublisherTC:
    """The optional Publisher TC segment (type 3)."""

    pub_purposes_consent: tuple[int, ...]
    pub_purposes_li_transparency: tuple[int, ...]
    num_custom_purposes: int
    custom_purposes_consent: tuple[int, ...]
    custom_purposes_li_transparency: tuple[int, ...]


@dataclass(frozen=True)
class TCString:
    """A decoded TC string. Id lists are sorted tuples of 1-based ids."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: tuple[int, ...]
    purposes_consent: tuple[int, ...]
    purposes_li_transparency: tuple[int, ...]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: tuple[int, ...]
    vendor_legitimate_interests: tuple[int, ...]
    publisher_restrictions: tuple[tuple[int, int, tuple[int, ...]], ...]
    disclosed_vendors: tuple[int, ...] | None
    allowed_vendors: tuple[int, ...] | None
    publisher_tc: PublisherTC | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; key names match the test vectors in ``tests/data/tcf_vectors.json``."""
        out: dict[str, object] = {}
        for name, value in vars(self).items():
            if isinstance(value, datetime):
                value = _rfc3339(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        out["publisher_restrictions"] = [
            {"purpose_id": purpose, "restriction_type": kind, "vendors": list(vendors)}
            for purpose, kind, vendors in self.publisher_restrictions
        ]
        if self.publisher_tc is not None:
            out["publisher_tc"] = {k: list(v) if isinstance(v, tuple) else v
                                   for k, v in asdict(self.publisher_tc).items()}
        return out


def _rfc3339(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, with a tenths digit only when the timestamp has one."""
    tenths = moment.microsecond // 100_000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{tenths}" if tenths else "") + "Z"


class _BitReader:
    """Reads big-endian bit fields from one segment, raising ``malformed`` past its end."""

    def __init__(self, bits: str, what: str):
        self.bits, self.what, self.pos = bits, what, 0
        self.ids_left = _MAX_IDS_PER_SEGMENT

    def _take(self, n: int) -> str:
        if self.pos + n > len(self.bits):
            raise _malformed(f"The {self.what} segment is truncated at bit {self.pos}.")
        chunk = self.bits[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self, n: int) -> int:
        """An ``n``-bit unsigned integer."""
        return int(self._take(n), 2)

    def bool(self) -> bool:
        """One bit as a boolean."""
        return self._take(1) == "1"

    def bits_set(self, n: builtins.int) -> tuple[builtins.int, ...]:
        """The 1-based positions of the set bits in the next ``n`` bits."""
        ids = tuple(i for i, bit in enumerate(self._take(n), start=1) if bit == "1")
        self.spend(len(ids))
        return ids

    def letters(self, count: builtins.int) -> str:
        """``count`` upper-case letters of 6 bits each, A = 0."""
        values = [self.int(6) for _ in range(count)]
        if any(value > 25 for value in values):
            raise _malformed(f"The {self.what} segment has a letter outside A-Z.")
        return "".join(chr(ord("A") + value) for value in values)

    def deciseconds(self) -> datetime:
        """A 36-bit timestamp in deciseconds since the epoch."""
        return _EPOCH + timedelta(milliseconds=self.int(36) * 100)

    def spend(self, count: builtins.int) -> None:
        """Count decoded ids against the segment's budget."""
        self.ids_left -= count
        if self.ids_left < 0:
            raise _malformed(f"The {self.what} segment decodes to too many vendor ids.")

    def ranges(self, limit: builtins.int) -> tuple[builtins.int, ...]:
        """NumEntries 12 x (IsARange 1, Start 16, [End 16]); ids must lie in 1..limit."""
        spans = []
        for _ in range(self.int(12)):
            is_range = self.bool()
            start = self.int(16)
            end = self.int(16) if is_range else start
            if not 1 <= start <= end <= limit:
                raise _malformed(f"The {self.what} segment has an invalid vendor range "
                                 f"{start}-{end}.")
            spans.append((start, end))
        ids: set[builtins.int] = set()
        for start, end in _merge(spans):
            self.spend(end - start + 1)
            ids.update(range(start, end + 1))
        return tuple(sorted(ids))

    def vendors(self) -> tuple[builtins.int, ...]:
        """A vendor section: MaxVendorId 16, IsRangeEncoding 1, then a bitfield or ranges."""
        max_vendor_id = self.int(16)
        return self.ranges(max_vendor_id) if self.bool() else self.bits_set(max_vendor_id)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or touching inclusive ranges."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _segment_bits(segment: str) -> str:
    if not _SEGMENT.fullmatch(segment):
        raise _malformed("TC string is not base64url." if segment else
                         "TC string has an empty segment.")
    return "".join(_SEXTETS[char] for char in segment.rstrip("="))


def _core(r: _BitReader) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "version": r.int(6), "created": r.deciseconds(), "last_updated": r.deciseconds(),
        "cmp_id": r.int(12), "cmp_version": r.int(12), "consent_screen": r.int(6),
        "consent_language": r.letters(2), "vendor_list_version": r.int(12),
        "policy_version": r.int(6), "is_service_specific": r.bool(),
        "use_non_standard_texts": r.bool(), "special_feature_opt_ins": r.bits_set(12),
        "purposes_consent": r.bits_set(24), "purposes_li_transparency": r.bits_set(24),
        "purpose_one_treatment": r.bool(), "publisher_cc": r.letters(2),
        "vendor_consents": r.vendors(), "vendor_legitimate_interests": r.vendors(),
    }
    restrictions = []
    for _ in range(r.int(12)):
        purpose_id, restriction_type = r.int(6), r.int(2)
        restrictions.append((purpose_id, restriction_type, r.ranges(0xFFFF)))
    fields["publisher_restrictions"] = tuple(restrictions)
    return fields


def _publisher_tc(r: _BitReader) -> PublisherTC:
    consent, li, count = r.bits_set(24), r.bits_set(24), r.int(6)
    return PublisherTC(consent, li, count, r.bits_set(count), r.bits_set(count))


def decode(tc_string: str) -> TCString:
    """Decode a TC string without applying policy rules; raises only :class:`TCFError`.

    Trailing ``=`` padding on a segment is tolerated; anything else outside the base64url
    alphabet (whitespace included) is ``malformed``. Legacy strings decode fine here.
    """
    if not isinstance(tc_string, str):
        raise _malformed("TC string is not a string.")
    if not tc_string:
        raise _malformed("TC string is empty.")
    segments = [_segment_bits(segment) for segment in tc_string.split(".")]
    if int(segments[0][:6], 2) != 2:
        raise TCFError("not_version_2", "TC string is not a TCF version 2 string.")
    fields = _core(_BitReader(segments[0], "core"))
    optional: dict[int, object] = {}
    for bits in segments[1:]:
        r = _BitReader(bits, "optional")
        kind = r.int(3)
        if kind in optional:
            raise _malformed(f"TC string has more than one segment of type {kind}.")
        if kind in (_DISCLOSED, _ALLOWED):
            r.what = "Disclosed Vendors" if kind == _DISCLOSED else "Allowed Vendors"
            optional[kind] = r.vendors()
        elif kind == _PUBLISHER_TC:
            r.what = "Publisher TC"
            optional[kind] = _publisher_tc(r)
        elif kind == 0:
            raise _malformed("TC string has a second core segment.")
        else:
            raise _malformed(f"TC string has a segment of unknown type {kind}.")
    disclosed, allowed, publisher = (optional.get(k) for k in (_DISCLOSED, _ALLOWED, _PUBLISHER_TC))
    return TCString(**fields, disclosed_vendors=cast("tuple[int, ...] | None", disclosed),
                    allowed_vendors=cast("tuple[int, ...] | None", allowed),
                    publisher_tc=cast("PublisherTC | None", publisher))


def validate(tc: TCString) -> None:
    """Apply the TCF v2.2 / v2.3 rules, raising :class:`TCFError` for the first one broken."""
    if tc.policy_version < 4:
        raise TCFError("policy_version_below_4",
                       f"TCF policy version {tc.policy_version} is below 4 (TCF v2.2).")
    if not tc.is_service_specific:
        raise TCFError("not_service_specific", "TC string is not service-specific.")
    if set(tc.purposes_li_transparency) & {3, 4, 5, 6}:
        raise TCFError("legitimate_interest_for_purposes_3_to_6",
                       "Purposes 3 to 6 may not rest on legitimate interest.")
    if tc.disclosed_vendors is None:
        raise TCFError("disclosed_vendors_missing",
                       "TC string has no Disclosed Vendors segment (required since TCF v2.3).")


def parse_for_consent(tc_string: str) -> TCString:
    """Decode and validate a TC string submitted with a consent record."""
    tc = decode(tc_string)
    validate(tc)
    return tc
