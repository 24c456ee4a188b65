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
        value = base64.b64encode(secrets.token_bytes(32)).decode() + "\n"
        if write_secret_file(path, value, replace=False):
            log.warning("secret.generated", name=name, path=str(path),
                        hint=f"development only: set {name} in production")
    return decode_key(path.read_text(), f"{name} in {path}")


def write_secret_file(path: Path, text: str, *, replace: bool) -> bool:
    """Write a secret to `path`: mode 0600 from the start, flushed to disk, never half-written.

    The text goes to a temporary file in the same folder, is fsynced, and then
    takes the name in one step. With `replace=False` the file is only created
    (os.link fails if it exists, so of several processes starting together one
    wins and the others read its key) and the result says whether this call
    wrote it; with `replace=True` an existing file is replaced (os.replace).
    The folder is created when missing and fsynced after the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mkstemp opens 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            written = True
        else:
            try:
                os.link(tmp, path)
                written = True
            except FileExistsError:
                written = False
        _fsync_dir(path.parent)
        return written
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
