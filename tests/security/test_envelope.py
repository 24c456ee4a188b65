"""Envelope encryption: data keys wrapped per subject, values bound to subject and attribute,
KEK rotation and crypto-shredding. No app, no database."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.security import envelope as env
from gateway.security.envelope import (
    DecryptionFailed,
    KeyRing,
    KeyUnavailable,
    WrappedKey,
    decrypt_value,
    encrypt_value,
    key_id,
    load_master_keys,
    new_data_key,
    rewrap,
    rotate_dev_master_key,
    unwrap,
    wrap,
)
from gateway.security.secrets import SecretMissing

K1, K2, K3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
ALICE, BOB = "a" * 64, "b" * 64  # pseudonyms


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def aad(subject: str, attribute: str) -> bytes:
    return f"{subject}:{attribute}".encode()


def test_key_ids_and_ring():
    assert key_id(K1) == "kek-" + hashlib.sha256(K1).hexdigest()[:8]
    ring = KeyRing.from_master_keys([K1, K2, K1])
    assert ring.current == key_id(K1)
    assert ring.ids == (key_id(K1), key_id(K2))
    assert "\\x01" not in repr(ring) and b64(K1) not in repr(ring)


@pytest.mark.parametrize("keys", [[], [b"short"], [K1, b"x" * 31]])
def test_ring_refuses_bad_keys(keys):
    with pytest.raises(ValueError):
        KeyRing.from_master_keys(keys)


def test_ring_current_must_be_in_the_ring():
    with pytest.raises(ValueError):
        KeyRing({"kek-a": K1}, "kek-b")


def test_data_keys_are_random_aes256_keys():
    assert len(new_data_key()) == 32 and new_data_key() != new_data_key()


def test_wrap_round_trip_and_fresh_nonce():
    ring = KeyRing.from_master_keys([K1])
    dek = new_data_key()
    w1, w2 = wrap(ring, dek, subject=ALICE), wrap(ring, dek, subject=ALICE)
    assert w1.kek_id == ring.current and len(w1.blob) == 12 + 32 + 16
    assert w1.blob != w2.blob
    assert unwrap(ring, w1, subject=ALICE) == dek == unwrap(ring, w2, subject=ALICE)
    assert dek not in w1.blob


def test_wrapped_key_cannot_move_to_another_subject():
    ring = KeyRing.from_master_keys([K1])
    wrapped = wrap(ring, new_data_key(), subject=ALICE)
    with pytest.raises(DecryptionFailed):
        unwrap(ring, wrapped, subject=BOB)


def test_unwrap_with_a_kek_missing_from_the_ring():
    wrapped = wrap(KeyRing.from_master_keys([K1]), new_data_key(), subject=ALICE)
    with pytest.raises(KeyUnavailable, match=key_id(K1)):
        unwrap(KeyRing.from_master_keys([K2]), wrapped, subject=ALICE)


def test_wrong_kek_under_the_right_id_does_not_verify():
    wrapped = wrap(KeyRing.from_master_keys([K1]), new_data_key(), subject=ALICE)
    impostor = KeyRing({wrapped.kek_id: K2}, wrapped.kek_id)
    with pytest.raises(DecryptionFailed):
        unwrap(impostor, wrapped, subject=ALICE)


def flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1:]


@pytest.mark.parametrize("index", [0, 11, 12, 40, -1])
def test_tampered_wrapped_key_fails(index):
    ring = KeyRing.from_master_keys([K1])
    wrapped = wrap(ring, new_data_key(), subject=ALICE)
    with pytest.raises(DecryptionFailed):
        unwrap(ring, WrappedKey(wrapped.kek_id, flip(wrapped.blob, index)), subject=ALICE)


def test_value_round_trip():
    dek = new_data_key()
    blob = encrypt_value(dek, b'["outdoor"]', aad=aad(ALICE, "browsing_categories"))
    assert b"outdoor" not in blob
    assert decrypt_value(dek, blob, aad=aad(ALICE, "browsing_categories")) == b'["outdoor"]'
    assert encrypt_value(dek, b"", aad=b"x") != encrypt_value(dek, b"", aad=b"x")


@pytest.mark.parametrize(
    "other_aad", [aad(BOB, "age"), aad(ALICE, "email"), b"", aad(ALICE, "age") + b" "]
)
def test_value_cannot_be_swapped_between_attributes_or_subjects(other_aad):
    dek = new_data_key()
    blob = encrypt_value(dek, b"34", aad=aad(ALICE, "age"))
    with pytest.raises(DecryptionFailed):
        decrypt_value(dek, blob, aad=other_aad)


@pytest.mark.parametrize("mangle", [
    lambda b: flip(b, 0), lambda b: flip(b, 12), lambda b: flip(b, -1), lambda b: b[:-1],
    lambda b: b[:27], lambda b: b"", lambda b: b + b"\0",
])
def test_tampered_or_truncated_value_fails(mangle):
    dek = new_data_key()
    blob = encrypt_value(dek, b"34", aad=b"s:age")
    with pytest.raises(DecryptionFailed):
        decrypt_value(dek, mangle(blob), aad=b"s:age")


def test_value_under_another_data_key_fails():
    blob = encrypt_value(new_data_key(), b"34", aad=b"s:age")
    with pytest.raises(DecryptionFailed):
        decrypt_value(new_data_key(), blob, aad=b"s:age")


@pytest.mark.parametrize("dek", [b"", b"k" * 16, b"k" * 24])
def test_only_256_bit_data_keys(dek):
    with pytest.raises(ValueError):
        encrypt_value(dek, b"x", aad=b"")
    with pytest.raises(ValueError):
        wrap(KeyRing.from_master_keys([K1]), dek, subject=ALICE)


def test_rewrap_moves_to_the_current_kek_without_touching_values():
    old_ring = KeyRing.from_master_keys([K1])
    dek = new_data_key()
    wrapped = wrap(old_ring, dek, subject=ALICE)
    value = encrypt_value(dek, b'"a@example.org"', aad=aad(ALICE, "email"))

    rotated = KeyRing.from_master_keys([K2, K1])
    moved = rewrap(rotated, wrapped, subject=ALICE)
    assert moved.kek_id == key_id(K2) != wrapped.kek_id
    assert rewrap(rotated, moved, subject=ALICE) is moved  # already current: unchanged
    new_only = KeyRing.from_master_keys([K2])  # the old KEK can now be retired
    assert unwrap(new_only, moved, subject=ALICE) == dek
    assert decrypt_value(unwrap(new_only, moved, subject=ALICE), value, aad=aad(ALICE, "email")) == (
        b'"a@example.org"'
    )
    with pytest.raises(KeyUnavailable):
        rewrap(new_only, wrapped, subject=ALICE)
    with pytest.raises(DecryptionFailed):
        rewrap(rotated, wrapped, subject=BOB)


def test_crypto_shredding_destroying_the_wrapped_key_loses_the_values():
    """Without the subject's data key, no other key in the system reads the value."""
    ring = KeyRing.from_master_keys([K1, K2])
    dek = new_data_key()
    value = encrypt_value(dek, b"34", aad=aad(ALICE, "age"))
    del dek  # the erased subject's wrapped key row is gone
    for key in (K1, K2, new_data_key()):
        with pytest.raises(DecryptionFailed):
            decrypt_value(key, value, aad=aad(ALICE, "age"))
    assert ring.current == key_id(K1)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=300), subject=st.text(min_size=1, max_size=70),
       attribute=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
def test_round_trip_property(plaintext, subject, attribute):
    """Property: wrap/unwrap then encrypt/decrypt returns the plaintext for any subject and attribute."""
    ring = KeyRing.from_master_keys([K3])
    dek = unwrap(ring, wrap(ring, new_data_key(), subject=subject), subject=subject)
    blob = encrypt_value(dek, plaintext, aad=aad(subject, attribute))
    assert decrypt_value(dek, blob, aad=aad(subject, attribute)) == plaintext


# ---------------------------------------------------------------- master keys


def test_env_keys_first_is_current(tmp_path):
    ring = load_master_keys(f"{b64(K1)}, {b64(K2)},{b64(K3)}\n", tmp_path, production=True)
    assert ring.ids == (key_id(K1), key_id(K2), key_id(K3))
    assert list(tmp_path.iterdir()) == []  # nothing written when the variable is set


@pytest.mark.parametrize(
    "value, message",
    [
        ("not base64!", "not standard base64"),
        (base64.b64encode(b"x" * 16).decode(), "32 bytes"),
        (f"{b64(K1)},,{b64(K2)}", "empty entry"),
        (f"{b64(K1)},oops", "key 2 of 2"),
    ],
)
def test_bad_env_keys(tmp_path, value, message):
    with pytest.raises(SecretMissing, match=message):
        load_master_keys(value, tmp_path, production=False)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_production_requires_the_variable(tmp_path, value):
    with pytest.raises(SecretMissing, match="GATEWAY_MASTER_KEY"):
        load_master_keys(value, tmp_path, production=True)
    assert not (tmp_path / env.DEV_KEY_FILE).exists()


def test_development_generates_the_key_once(tmp_path):
    instance = tmp_path / "instance"
    first = load_master_keys(None, instance, production=False)
    path = instance / "gateway_master_key.b64"
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.ids == (key_id(base64.b64decode(path.read_text())),)
    again = load_master_keys("", instance, production=False)
    assert again.ids == first.ids and again.key(again.current) == first.key(first.current)
    assert [p.name for p in instance.iterdir()] == ["gateway_master_key.b64"]  # no temp files left


def test_development_rotation_keeps_old_values_readable(tmp_path):
    ring = load_master_keys(None, tmp_path, production=False)
    dek = new_data_key()
    wrapped = wrap(ring, dek, subject=ALICE)
    value = encrypt_value(dek, b"34", aad=aad(ALICE, "age"))

    rotated = rotate_dev_master_key(tmp_path)
    assert rotated.current != ring.current and rotated.ids[1:] == (ring.current,)
    reloaded = load_master_keys(None, tmp_path, production=False)
    assert reloaded.ids == rotated.ids
    old_file = tmp_path / "gateway_master_key.old.b64"
    assert stat.S_IMODE(os.stat(old_file).st_mode) == 0o600

    assert decrypt_value(unwrap(reloaded, wrapped, subject=ALICE), value, aad=aad(ALICE, "age")) == b"34"
    moved = rewrap(reloaded, wrapped, subject=ALICE)
    assert moved.kek_id == reloaded.current

    twice = rotate_dev_master_key(tmp_path)
    assert twice.ids[1:] == rotated.ids  # newest old key first
    assert unwrap(twice, wrapped, subject=ALICE) == dek == unwrap(twice, moved, subject=ALICE)
    assert len(old_file.read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gateway_master_key.b64", "gateway_master_key.old.b64",
    ]


def test_rotation_in_a_fresh_instance_dir_generates_first(tmp_path):
    ring = rotate_dev_master_key(tmp_path / "new")
    assert len(ring.ids) == 2


def test_environment_wins_over_instance_files(tmp_path):
    load_master_keys(None, tmp_path, production=False)
    ring = load_master_keys(b64(K1), tmp_path, production=False)
    assert ring.ids == (key_id(K1),)


def test_corrupt_old_keys_file_is_reported(tmp_path):
    load_master_keys(None, tmp_path, production=False)
    (tmp_path / "gateway_master_key.old.b64").write_text(f"{b64(K1)}\n\nnot-a-key\n")
    with pytest.raises(SecretMissing, match="old key"):
        load_master_keys(None, tmp_path, production=False)
