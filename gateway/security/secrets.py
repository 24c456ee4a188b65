"""Server secrets: from the environment, or (development only) generated once into instance/."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class SecretMissing(RuntimeError):
    pass


def decode_key(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretMissing(f"{name} is not standard base64") from exc
    if len(raw) != 32:
        raise SecretMissing(f"{name} must be 32 bytes (base64 of 32 random bytes), not {len(raw)}")
    return raw


def load_key(env_value: str | None, name: str, instance_dir: Path, *, production: bool) -> bytes:
    """A 32-byte key from `env_value`, or from `instance/<file>` in development.

    In development the file is created once, atomically (several workers may
    start together), with a warning; in production the variable is required.
    """
    if env_value:
        return decode_key(env_value, name)
    if production:
        raise SecretMissing(f"{name} must be set when GATEWAY_ENV=production")
    path = instance_dir / f"{name.lower()}.b64"
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        value = base64.b64encode(secrets.token_bytes(32)).decode() + "\n"
        fd, tmp = tempfile.mkstemp(dir=instance_dir, prefix=".key-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # atomic; fails if another process won the race
                log.warning("secret.generated", name=name, path=str(path),
                            hint=f"development only: set {name} in production")
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return decode_key(path.read_text(), f"{name} in {path}")
