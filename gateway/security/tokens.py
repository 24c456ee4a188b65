"""Opaque identifiers and credentials, and how they are stored (hashed)."""

from __future__ import annotations

import hashlib
import secrets


def new_id(prefix: str) -> str:
    """A random public identifier such as `rcpt_3kQ...` (URL-safe, 128 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy credential: what the database keeps instead of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
