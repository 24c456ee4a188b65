"""Ed25519 signing of audit exports. Keys come from the environment or, in development, instance/."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .secrets import SecretMissing, write_secret_file

log = structlog.get_logger(__name__)
KEY_FILE = "audit_signing_key.pem"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass(frozen=True)
class AuditSigner:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public_key)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    def __repr__(self) -> str:
        return f"AuditSigner({self.key_id})"


def verify(public_pem_text: str, message: bytes, signature_b64: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem_text.encode())
        if not isinstance(key, Ed25519PublicKey):
            return False
        key.verify(base64.b64decode(signature_b64, validate=True), message)
        return True
    except (InvalidSignature, ValueError, binascii.Error):
        return False


def parse_private_key(text: str, name: str) -> Ed25519PrivateKey:
    """A PEM private key, or standard base64 of the 32 raw bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SecretMissing(f"{name} is not an Ed25519 private key (PEM or base64)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SecretMissing(f"{name} must be an Ed25519 key")
    return key


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_signer(env_value: str | None, instance_dir: Path, *, production: bool) -> AuditSigner:
    name = "GATEWAY_AUDIT_SIGNING_KEY"
    if env_value:
        return AuditSigner(parse_private_key(env_value, name))
    if production:
        raise SecretMissing(f"{name} must be set when GATEWAY_ENV=production")
    path = instance_dir / KEY_FILE
    if not path.exists():
        if write_secret_file(path, _pem(Ed25519PrivateKey.generate()), replace=False):
            log.warning("secret.generated", name=name, path=str(path),
                        hint=f"development only: set {name} in production")
    return AuditSigner(parse_private_key(path.read_text(), f"{name} in {path}"))


def rotate_instance_key(instance_dir: Path) -> AuditSigner:
    """Development rotation: a new key file; the old one is kept beside it by key id."""
    path = instance_dir / KEY_FILE
    if path.exists():
        old = AuditSigner(parse_private_key(path.read_text(), str(path)))
        archive = instance_dir / "audit_keys"
        write_secret_file(archive / f"{old.key_id}.pem", path.read_text(), replace=False)
    new_key = Ed25519PrivateKey.generate()
    write_secret_file(path, _pem(new_key), replace=True)
    return AuditSigner(new_key)
