"""Envelope encryption of profile values, with crypto-shredding and key rotation.

Each subject has a data key (DEK, 32 random bytes, AES-256-GCM) that encrypts
their attribute values. The DEK is stored only wrapped (AES-256-GCM) by a
key-encryption key (KEK) from the master key ring, under the KEK's id; erasing
a subject destroys the wrapped DEK, after which their values cannot be read
(crypto-shredding). Rotation rewraps DEKs to the current KEK without touching
the values.

Blob layouts (both AES-256-GCM, 96-bit random nonce, 128-bit tag):

- wrapped DEK: ``nonce || ciphertext+tag`` (60 bytes), associated data
  ``b"consent-gateway/dek/v1:" + subject`` (subject = the pseudonym), so a
  wrapped key cannot be moved to another subject;
- value: ``nonce || ciphertext+tag``, associated data chosen by the caller,
  ``f"{pseudonym}:{attribute}".encode()``, so values cannot be swapped between
  attributes or subjects.

KEK ids are ``kek-`` plus the first 8 hex digits of SHA-256 of the key.
Master keys come from ``GATEWAY_MASTER_KEY`` (comma-separated standard base64,
current first), or in development from ``instance/gateway_master_key.b64``
(current) and ``instance/gateway_master_key.old.b64`` (older keys, one per
line, newest first). Nothing is created at import.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .secrets import SecretMissing, decode_key, load_key, write_secret_file

log = structlog.get_logger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
ENV_NAME = "GATEWAY_MASTER_KEY"
DEV_KEY_FILE = "gateway_master_key.b64"  # what secrets.load_key names the file for ENV_NAME
DEV_OLD_KEYS_FILE = "gateway_master_key.old.b64"
DEK_AAD_PREFIX = b"consent-gateway/dek/v1:"


class EnvelopeError(Exception):
    """Base class of envelope-encryption failures."""


class KeyUnavailable(EnvelopeError):
    """The key-encryption key a data key was wrapped with is not in the ring."""


class DecryptionFailed(EnvelopeError):
    """A blob does not verify: wrong key, wrong subject or attribute, or tampered."""


def key_id(key: bytes) -> str:
    """The id of a key-encryption key: ``kek-`` + first 8 hex digits of its SHA-256."""
    return "kek-" + hashlib.sha256(key).hexdigest()[:8]


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes")


@dataclass(frozen=True, repr=False)
class KeyRing:
    """Key-encryption keys by id; `current` wraps new data keys, the others only unwrap."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", dict(self.keys))  # a private copy: the ring never changes
        if self.current not in self.keys:
            raise ValueError(f"the current key id {self.current!r} is not in the ring")
        for kid, key in self.keys.items():
            _check_key(key, f"key-encryption key {kid!r}")

    @classmethod
    def from_master_keys(cls, keys: Iterable[bytes]) -> KeyRing:
        """A ring from master keys, the first being current; repeated keys count once."""
        ring: dict[str, bytes] = {}
        for key in keys:
            _check_key(key, "a master key")
            kid = key_id(key)
            if ring.get(kid, key) != key:
                raise ValueError(f"two different master keys share the id {kid}; replace one")
            ring[kid] = key
        if not ring:
            raise ValueError("a key ring needs at least one master key")
        return cls(keys=ring, current=next(iter(ring)))

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, the current first."""
        return (self.current, *(k for k in self.keys if k != self.current))

    def key(self, kek_id: str) -> bytes:
        """The key with id `kek_id`; raises KeyUnavailable if the ring does not hold it."""
        try:
            return self.keys[kek_id]
        except KeyError:
            raise KeyUnavailable(
                f"key-encryption key {kek_id!r} is not in the key ring: add the old key to "
                f"{ENV_NAME} (after the current one) to read data wrapped with it"
            ) from None

    def __repr__(self) -> str:  # never show the keys
        return f"KeyRing(current={self.current!r}, ids={list(self.ids)!r})"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under the key-encryption key `kek_id`."""

    kek_id: str
    blob: bytes


def new_data_key() -> bytes:
    """A fresh random AES-256 data key."""
    return secrets.token_bytes(KEY_BYTES)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if not isinstance(blob, bytes) or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionFailed(f"{what} is too short to be an encrypted blob")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise DecryptionFailed(
            f"{what} does not verify (wrong key, subject or attribute, or tampered)"
        ) from None


def _dek_aad(subject: str) -> bytes:
    return DEK_AAD_PREFIX + subject.encode("utf-8")


def wrap(ring: KeyRing, dek: bytes, *, subject: str) -> WrappedKey:
    """Encrypt `dek` under the ring's current KEK, bound to `subject` (the pseudonym)."""
    _check_key(dek, "a data key")
    return WrappedKey(ring.current, _seal(ring.key(ring.current), dek, _dek_aad(subject)))


def unwrap(ring: KeyRing, wrapped: WrappedKey, *, subject: str) -> bytes:
    """The data key inside `wrapped`; KeyUnavailable or DecryptionFailed if it cannot be read."""
    dek = _open(ring.key(wrapped.kek_id), wrapped.blob, _dek_aad(subject), "the wrapped data key")
    _check_key(dek, "the unwrapped data key")
    return dek


def rewrap(ring: KeyRing, wrapped: WrappedKey, *, subject: str) -> WrappedKey:
    """`wrapped` re-encrypted under the ring's current KEK (unchanged if already there)."""
    if wrapped.kek_id == ring.current:
        return wrapped
    return wrap(ring, unwrap(ring, wrapped, subject=subject), subject=subject)


def encrypt_value(dek: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """``nonce || ciphertext+tag`` of `plaintext` under `dek`, bound to `aad`."""
    _check_key(dek, "a data key")
    return _seal(dek, plaintext, aad)


def decrypt_value(dek: bytes, blob: bytes, *, aad: bytes) -> bytes:
    """The plaintext of `blob`; DecryptionFailed if key, `aad` or blob do not match."""
    _check_key(dek, "a data key")
    return _open(dek, blob, aad, "the encrypted value")


def _decode_env(env_value: str) -> list[bytes]:
    parts = [p.strip() for p in env_value.split(",")]
    if any(not p for p in parts):
        raise SecretMissing(f"{ENV_NAME} has an empty entry: give comma-separated base64 keys")
    if len(parts) == 1:
        return [decode_key(parts[0], ENV_NAME)]
    return [decode_key(p, f"{ENV_NAME} (key {i} of {len(parts)})") for i, p in enumerate(parts, 1)]


def _read_old_dev_keys(instance_dir: Path) -> list[bytes]:
    path = instance_dir / DEV_OLD_KEYS_FILE
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [decode_key(line, f"{ENV_NAME} (old key) in {path}") for line in lines if line]


def load_master_keys(env_value: str | None, instance_dir: Path, *, production: bool) -> KeyRing:
    """The master key ring from `GATEWAY_MASTER_KEY`, or in development from instance/.

    The variable holds one or more comma-separated standard-base64 32-byte
    keys, the current first. Without it, production raises SecretMissing and
    development generates the current key once into instance/ (with a
    warning) and adds the older keys kept by `rotate_dev_master_key`.
    """
    if env_value and env_value.strip():
        return KeyRing.from_master_keys(_decode_env(env_value))
    if production:
        raise SecretMissing(f"{ENV_NAME} must be set when GATEWAY_ENV=production")
    current = load_key(None, ENV_NAME, instance_dir, production=False)
    return KeyRing.from_master_keys([current, *_read_old_dev_keys(instance_dir)])


def rotate_dev_master_key(instance_dir: Path) -> KeyRing:
    """Development rotation: keep the current key as an old one, write a new current key.

    The old keys file is written first, so that a crash in between loses no
    key. Data keys wrapped with older keys stay readable; `rewrap` moves them
    to the new current key.
    """
    before = load_master_keys(None, instance_dir, production=False)
    old_keys = [before.key(kid) for kid in before.ids]  # the current first: newest old key
    write_secret_file(
        instance_dir / DEV_OLD_KEYS_FILE,
        "".join(base64.b64encode(k).decode() + "\n" for k in old_keys),
        replace=True,
    )
    new_key = secrets.token_bytes(KEY_BYTES)
    write_secret_file(instance_dir / DEV_KEY_FILE, base64.b64encode(new_key).decode() + "\n",
                      replace=True)
    ring = KeyRing.from_master_keys([new_key, *old_keys])
    log.warning("master_key.rotated", current=ring.current, previous=before.current,
                hint="development only: in production rotate by prepending a key to " + ENV_NAME)
    return ring
