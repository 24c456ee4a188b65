"""The audit chain and export format, as pure functions (no app, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import audit_chain as chain

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def make_export(n: int, start_seq: int = 1) -> list[bytes]:
    import base64
    import hashlib

    prev = chain.GENESIS
    lines = []
    for i in range(n):
        body = chain.event_body(start_seq + i, T0 + timedelta(seconds=i), "consent.recorded",
                                "prop_1", "ab" * 32, {"purpose": "ads", "receipt_id": f"r{i}"},
                                prev)
        event = chain.seal(body)
        prev = event["hash"]
        lines.append(chain.export_line(event))
    digest = hashlib.sha256(b"".join(lines)).hexdigest()
    manifest = chain.manifest_payload(
        count=n, first_seq=start_seq if n else None, last_seq=start_seq + n - 1 if n else None,
        sha256=digest, chain_head=prev if n else None, key_id="k1",
        exported_at="2026-11-02T00:00:00.000000Z", filters={})
    manifest["signature"] = base64.b64encode(KEY.sign(chain.canonical(manifest))).decode()
    return lines + [chain.canonical({"manifest": manifest}) + b"\n"]


def check(key_id, message, signature):
    import base64

    try:
        KEY.public_key().verify(base64.b64decode(signature), message)
        return key_id == "k1"
    except (InvalidSignature, ValueError):
        return False


def test_canonical_json_is_the_contract():
    assert chain.canonical({"b": 1, "a": "ø"}) == '{"a":"ø","b":1}'.encode()


def test_hash_covers_prev_hash_and_excludes_itself():
    body = chain.event_body(1, T0, "t", "a", None, {}, chain.GENESIS)
    sealed = chain.seal(body)
    assert sealed["hash"] == chain.event_hash(sealed) == chain.event_hash(body)
    assert chain.event_hash({**body, "prev_hash": "1" * 64}) != sealed["hash"]


def test_timestamps_have_one_spelling():
    assert chain.timestamp(T0) == "2026-11-01T00:00:00.000000Z"


def test_valid_export_verifies():
    result = chain.verify_export(make_export(5), check)
    assert result.ok and result.count == 5, result


def test_empty_export_verifies():
    assert chain.verify_export(make_export(0), check).ok


def tamper_change(lines):
    obj = json.loads(lines[2])
    obj["purpose"] = "personalization"
    lines[2] = chain.canonical(obj) + b"\n"


def tamper_change_and_rehash(lines):
    obj = json.loads(lines[2])
    obj["purpose"] = "personalization"
    lines[2] = chain.export_line(chain.seal({k: v for k, v in obj.items() if k != "hash"}))


def tamper_remove(lines):
    del lines[2]


def tamper_swap(lines):
    lines[1], lines[2] = lines[2], lines[1]


def tamper_insert(lines):
    lines.insert(2, lines[1])


@pytest.mark.parametrize(
    "tamper, line, words",
    [
        (tamper_change, 3, "does not match its hash"),
        (tamper_change_and_rehash, 4, "does not link"),
        (tamper_remove, 3, "are missing"),
        (tamper_swap, 2, "are missing"),
        (tamper_insert, 3, "reordered or inserted"),
        (lambda lines: lines.pop(0), 1, "starts at seq 2"),
    ],
)
def test_tampering_is_found_at_the_first_bad_line(tamper, line, words):
    lines = make_export(5)
    tamper(lines)
    result = chain.verify_export(lines, check)
    assert not result.ok
    assert words in result.message
    assert result.line == line


def test_removed_line_in_the_middle_breaks_the_chain():
    lines = make_export(5)
    del lines[1]
    result = chain.verify_export(lines, check)
    assert not result.ok and result.line == 2 and "are missing" in result.message


def test_truncated_export_has_no_manifest():
    result = chain.verify_export(make_export(3)[:-1], check)
    assert not result.ok and "truncated" in result.message


def test_forged_signature_fails():
    lines = make_export(3)
    manifest = json.loads(lines[-1])["manifest"]
    manifest["count"] = 3
    manifest["signature"] = manifest["signature"][:-4] + "AAA="
    lines[-1] = chain.canonical({"manifest": manifest}) + b"\n"
    assert "signature" in chain.verify_export(lines, check).message


@given(st.integers(0, 30), st.data())
def test_any_single_byte_change_is_detected(n, data):
    lines = make_export(n)
    blob = bytearray(b"".join(lines))
    index = data.draw(st.integers(0, len(blob) - 2))
    new = data.draw(st.integers(32, 126))
    if blob[index] == new or blob[index] == ord("\n"):
        return
    blob[index] = new
    result = chain.verify_export(bytes(blob).splitlines(keepends=True), check)
    assert not result.ok
