"""The audit chain and export format, as pure functions (no app, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import audit_chain as chain

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def seal(body: dict) -> dict:
    """The event with its `hash`, as the gateway stores it (README, "The audit log")."""
    return {**body, "hash": chain.event_hash(body)}


def make_export(n: int, start_seq: int = 1) -> list[bytes]:
    import base64
    import hashlib

    prev = chain.GENESIS
    lines = []
    for i in range(n):
        body = chain.event_body(start_seq + i, T0 + timedelta(seconds=i), "consent.recorded",
                                "prop_1", "ab" * 32, {"purpose": "ads", "receipt_id": f"r{i}"},
                                prev)
        event = seal(body)
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
    sealed = seal(body)
    assert sealed["hash"] == chain.event_hash(sealed) == chain.event_hash(body)
    assert chain.event_hash({**body, "prev_hash": "1" * 64}) != sealed["hash"]


def test_timestamps_have_one_spelling():
    assert chain.timestamp(T0) == "2026-11-01T00:00:00.000000Z"


def strftime_spelling(value: datetime):
    """What `timestamp` always returned (the contract), or the exception it raised."""
    try:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError) as exc:
        return type(exc)


def spelling(value: datetime):
    try:
        return chain.timestamp(value)
    except (OverflowError, ValueError) as exc:
        return type(exc)


OFFSETS = st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                            max_value=timedelta(hours=23, minutes=59)))


@given(st.datetimes(timezones=st.one_of(st.just(UTC), OFFSETS, st.timezones())))
def test_timestamp_spells_aware_datetimes_as_strftime_did(value):
    assert spelling(value) == strftime_spelling(value)


@given(st.datetimes())
def test_timestamp_takes_naive_datetimes_as_local_time_as_before(value):
    assert spelling(value) == strftime_spelling(value)


@pytest.mark.parametrize("value", [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(1000, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),  # year 999 in UTC
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, 5, 7, tzinfo=timezone(-timedelta(hours=3, seconds=1, microseconds=1))),
])
def test_timestamp_edges(value):
    assert spelling(value) == strftime_spelling(value)


# Computed with the code before the export was made faster: exports and hashes made
# then must still verify, so these bytes may never change.
GOLDEN_DATA = {"note": "Grüße ✓ \"quoted\" \\ back \U0001d11e",
               "nested": {"z": [1, 2.5, None, True], "a": {}}, "big": 2**70, "ratio": 0.1,
               "hash": "from-data", "seq": 999}
GOLDEN_LINES = (
    (b'{"actor":"prop_1","at":"2026-11-01T00:00:00.000000Z",'
     b'"hash":"a0910d6e4800a864f35ad030d7b7ab0d6f3a2cf4537b640242024921822ac45f",'
     b'"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
     b'"purpose":"ads","receipt_id":"rcpt_1","seq":1,"status":"granted",'
     b'"subject":"abababababababababababababababababababababababababababababababab",'
     b'"type":"consent.recorded"}\n'),
    ('{"actor":"cli_x","at":"2026-03-28T20:00:05.123456Z","big":1180591620717411303424,'
     '"hash":"1a700fdd69813dd32b503e2ed7732c0c4cdb7328a10cb7b1e0c692daa54c8a2b",'
     '"nested":{"a":{},"z":[1,2.5,null,true]},"note":"Grüße ✓ \\"quoted\\" \\\\ back \U0001d11e",'
     '"prev_hash":"a0910d6e4800a864f35ad030d7b7ab0d6f3a2cf4537b640242024921822ac45f",'
     '"ratio":0.1,"seq":2,"subject":null,"type":"profile.updated"}\n').encode(),
)
GOLDEN_HASHES = tuple(json.loads(line)["hash"] for line in GOLDEN_LINES)
GOLDEN_EVENTS = (
    (1, datetime(2026, 11, 1, tzinfo=UTC), "consent.recorded", "prop_1", "ab" * 32,
     {"purpose": "ads", "status": "granted", "receipt_id": "rcpt_1"}),
    (2, datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
     "profile.updated", "cli_x", None, GOLDEN_DATA),
)


def test_export_lines_and_hashes_are_unchanged():
    prev = chain.GENESIS
    for (seq, at, type_, actor, subject, data), digest, line in zip(
            GOLDEN_EVENTS, GOLDEN_HASHES, GOLDEN_LINES, strict=True):
        body = chain.event_body(seq, at, type_, actor, subject, data, prev)
        assert chain.event_hash(body) == digest
        event = chain.event(seq, at, type_, actor, subject, data, prev, digest)
        assert event == seal(body) == {**body, "hash": digest}
        assert list(event) == list({**body, "hash": digest})
        assert chain.export_line(event) == line
        assert chain.event_hash(event) == digest
        prev = digest
    assert GOLDEN_DATA["seq"] == 999 and "hash" in GOLDEN_DATA  # event_body copies, never changes
    assert chain.csv_row(json.loads(GOLDEN_LINES[1]))[-1] == (
        '{"big":1180591620717411303424,"nested":{"a":{},"z":[1,2.5,null,true]},'
        '"note":"Grüße ✓ \\"quoted\\" \\\\ back \U0001d11e","ratio":0.1}')
    checker = chain.ChainChecker()
    for lineno, line in enumerate(GOLDEN_LINES, start=1):
        assert checker.feed(lineno, json.loads(line))
    assert checker.fatal == [] and checker.gaps == []


def test_canonical_matches_json_dumps():
    for obj in (GOLDEN_DATA, "ø\"", [1.5, None, {"b": 1, "a": [True]}], {}, 7, float("inf")):
        assert chain.canonical(obj) == json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
    lines[2] = chain.export_line(seal({k: v for k, v in obj.items() if k != "hash"}))


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
