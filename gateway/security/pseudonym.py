"""Keyed pseudonyms: subjects are stored and audited as HMAC-SHA256(secret, subject_id)."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    def __init__(self, secret: bytes):
        self._secret = secret

    def __call__(self, subject_id: str) -> str:
        return hmac.new(self._secret, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the secret
        return "Pseudonymizer(<secret>)"
