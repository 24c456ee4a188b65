"""Audit exports built and tampered with in tests: the same cases for every verifier.

An export is a list of lines (bytes, each ending in a newline), the manifest line last, made
with the definitions in gateway.core.audit_chain. `TAMPERING` lists each way an export can be
broken with what a verifier must name: the line, and the seq or the signature. The e2e test of
the console and the test of scripts/verify_audit_export.py both run it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core import audit_chain as chain
from gateway.security import signing

GENESIS = "0" * 64

# Values whose canonical JSON a verifier must write exactly as Python does: non-ASCII and
# astral characters, escapes, keys whose code point order differs from UTF-16 order
# ("\uffff" sorts before the emoji), floats Python and JavaScript spell differently, an integer
# above 2**53, and a nested member called "hash".
TRICKY = {
    "reason": "Zustimmung “erteilt” – é ñ 😀 \u2028 tab\t newline\n quote\" backslash\\ nul\u0000 del\x7f",
    "scores": [1.0, 0.1, 1e-07, 1e16, 1.5e300, -0.0, 123456789.125, 2.5e-05],
    "big": 2**60 + 1,
    "nested": {"z": 1, "é": 2, "😀": 3, "\uffff": 4, "A": 5, "hash": "f" * 64, "": None},
    "flags": [True, False, None, [], {}],
}


def _sealed(body: dict) -> dict:
    """The event with its `hash`, as the gateway stores it."""
    return {**body, "hash": chain.event_hash(body)}


def sign_manifest(manifest: dict, key: Ed25519PrivateKey) -> dict:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return {**unsigned, "signature": signing.AuditSigner(key).sign(chain.canonical(unsigned))}


def build(datas: list[dict], key: Ed25519PrivateKey, *, seqs: list[int] | None = None,
          filters: dict | None = None) -> list[bytes]:
    """Events seq 1..n (or `seqs`) carrying `datas`, chained, with a signed manifest."""
    seqs = seqs or list(range(1, len(datas) + 1))
    lines, prev = [], GENESIS
    for n, (seq, data) in enumerate(zip(seqs, datas, strict=True)):
        body = {**data, "seq": seq, "at": f"2026-11-30T10:00:{n % 60:02d}.000000Z",
                "type": "consent.recorded", "actor": "prop_test",
                "subject": "ps_" + hashlib.sha256(str(seq).encode()).hexdigest()[:20], "prev_hash": prev}
        event = _sealed(body)
        lines.append(chain.export_line(event))
        prev = event["hash"]
    return lines + [manifest_line(lines, key, filters=filters)]


def events_of(lines: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in lines[:-1]]


def manifest_of(lines: list[bytes]) -> dict:
    return json.loads(lines[-1])["manifest"]


def manifest_line(events: list[bytes], key: Ed25519PrivateKey, *, filters: dict | None = None,
                  **overrides) -> bytes:
    """A manifest that matches `events`, signed with `key`, with `overrides` signed in too."""
    parsed = [json.loads(line) for line in events]
    manifest = chain.manifest_payload(
        count=len(parsed), first_seq=parsed[0]["seq"] if parsed else None,
        last_seq=parsed[-1]["seq"] if parsed else None, sha256=hashlib.sha256(b"".join(events)).hexdigest(),
        chain_head=parsed[-1]["hash"] if parsed else None,
        key_id=signing.AuditSigner(key).key_id, exported_at="2026-11-30T10:01:00.000000Z",
        filters=filters or {})
    return chain.canonical({"manifest": sign_manifest({**manifest, **overrides}, key)}) + b"\n"


def with_manifest(lines: list[bytes], **fields) -> list[bytes]:
    """The manifest changed after signing (its signature kept)."""
    return lines[:-1] + [chain.canonical({"manifest": {**manifest_of(lines), **fields}}) + b"\n"]


def changed(line: bytes, rehash: bool = False, **fields) -> bytes:
    event = {**json.loads(line), **fields}
    return chain.export_line(_sealed({k: v for k, v in event.items() if k != "hash"}) if rehash else event)


# -- the tampering cases -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    edit: Callable[[list[bytes], Ed25519PrivateKey], list[bytes]]
    line: Callable[[list[bytes]], int]  # the line a verifier must name, from the edited lines
    says: Callable[[list[bytes]], str]  # and a part of its message (shared by every verifier)


def _deleted(lines, key):
    return lines[:2] + lines[3:]


def _deleted_first(lines, key):
    return lines[1:]


def _deleted_last_manifest_rewritten(lines, key):
    """The last event removed and the manifest made to match it, but not signed again."""
    events = lines[:-2]
    parsed = [json.loads(line) for line in events]
    return with_manifest(lines[:-2] + lines[-1:], count=len(events), last_seq=parsed[-1]["seq"],
                         chain_head=parsed[-1]["hash"], sha256=hashlib.sha256(b"".join(events)).hexdigest())


def _forged_count(lines, key):
    return with_manifest(lines, count=manifest_of(lines)["count"] + 1)


def _forged_head(lines, key):
    return with_manifest(lines, chain_head="0" * 64)


def _altered_signature(lines, key):
    signature = manifest_of(lines)["signature"]
    return with_manifest(lines, signature=("B" if signature[0] != "B" else "C") + signature[1:])


def _no_signature(lines, key):
    manifest = {k: v for k, v in manifest_of(lines).items() if k != "signature"}
    return lines[:-1] + [chain.canonical({"manifest": manifest}) + b"\n"]


def _signed_by_another_key(lines, key):
    other = Ed25519PrivateKey.from_private_bytes(b"o" * 32)
    unsigned = {k: v for k, v in manifest_of(lines).items() if k != "signature"}
    resigned = {**unsigned, "signature": sign_manifest(unsigned, other)["signature"]}
    return lines[:-1] + [chain.canonical({"manifest": resigned}) + b"\n"]


def _signed_wrong_first_seq(lines, key):
    """A manifest signed with the right key that does not describe the lines."""
    return lines[:-1] + [manifest_line(lines[:-1], key, first_seq=2)]


def _signed_wrong_count(lines, key):
    return lines[:-1] + [manifest_line(lines[:-1], key, count=len(lines))]


def _changed_field(lines, key):
    return lines[:2] + [changed(lines[2], actor="someone-else")] + lines[3:]


def _changed_and_rehashed(lines, key):
    return lines[:2] + [changed(lines[2], rehash=True, actor="someone-else")] + lines[3:]


def _reordered(lines, key):
    return lines[:2] + [lines[3], lines[2]] + lines[4:]


def _truncated(lines, key):
    return lines[:-1]


def _manifest_line_number(lines):
    return len(lines)


TAMPERING = [
    Case("deleted line", _deleted, lambda lines: 3,
         lambda lines: "line 3: seq 4 follows seq 2: seq 3 is missing"),
    Case("deleted first line", _deleted_first, lambda lines: 1,
         lambda lines: "line 1: the export starts at seq 2, not 1: seq 1 is missing"),
    Case("deleted last line, manifest rewritten", _deleted_last_manifest_rewritten, _manifest_line_number,
         lambda lines: "signature"),
    Case("forged manifest count", _forged_count, _manifest_line_number, lambda lines: "signature"),
    Case("forged manifest chain head", _forged_head, _manifest_line_number, lambda lines: "signature"),
    Case("altered signature", _altered_signature, _manifest_line_number, lambda lines: "signature"),
    Case("no signature", _no_signature, _manifest_line_number, lambda lines: "signature"),
    Case("signed by another key", _signed_by_another_key, _manifest_line_number, lambda lines: "signature"),
    Case("signed manifest with a wrong first_seq", _signed_wrong_first_seq, _manifest_line_number,
         lambda lines: "manifest first_seq"),
    Case("signed manifest with a wrong count", _signed_wrong_count, _manifest_line_number,
         lambda lines: "manifest count"),
    Case("changed field", _changed_field, lambda lines: 3,
         lambda lines: "line 3: event seq 3 does not match its hash"),
    Case("changed field, hash recomputed", _changed_and_rehashed, lambda lines: 4,
         lambda lines: "line 4: event seq 4 does not link to seq 3"),
    Case("reordered lines", _reordered, lambda lines: 3,
         lambda lines: "line 3: seq 4 follows seq 2: seq 3 is missing"),
    Case("truncated", _truncated, lambda lines: len(lines) + 1,
         lambda lines: "no manifest line: the export is truncated"),
]
