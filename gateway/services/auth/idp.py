"""The signing keys of the organisation's own identity provider (optional), fetched from its
JWKS URL and cached.

One `IdpKeys` lives on each Gateway (`gw.caches.idp_keys`, built with it, never at
import); it holds its own cache and its own lock. `bearer.py` verifies the IdP's tokens
with it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

from ...core.errors import Unauthenticated

log = structlog.get_logger(__name__)

IDP_JWKS_TTL_SECONDS = 300
IDP_JWKS_MIN_REFRESH_SECONDS = 30
IDP_JWKS_MAX_BYTES = 1024 * 1024

Jwk = dict[str, Any]


def fetch_jwks(url: str) -> dict[str, Any]:
    """GET a JWKS document (http or https only)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("the JWKS URL must be http or https")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (scheme checked)
        body = response.read(IDP_JWKS_MAX_BYTES + 1)
    if len(body) > IDP_JWKS_MAX_BYTES:
        raise ValueError("the JWKS document is too large")
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    return document


def _signing_keys(document: dict[str, Any]) -> dict[str, Jwk]:
    return {
        k["kid"]: k for k in document["keys"]
        if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("use", "sig") == "sig"
    }


class IdpKeys:
    """An IdP's signing keys by kid: cached for IDP_JWKS_TTL_SECONDS, refetched early (at most
    every IDP_JWKS_MIN_REFRESH_SECONDS) when a token names a kid the cache lacks. While the
    IdP cannot be reached the last keys fetched stay in use."""

    def __init__(self, fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
                 clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[str, float, dict[str, Jwk]] | None = None  # (url, fetched at, keys)

    def _fresh(self, url: str, refresh: bool) -> dict[str, Jwk] | None:
        cached = self._cached
        if cached is None or cached[0] != url:
            return None
        age = self._clock() - cached[1]
        if age > IDP_JWKS_TTL_SECONDS or (refresh and age > IDP_JWKS_MIN_REFRESH_SECONDS):
            return None
        return cached[2]

    def get(self, url: str, *, refresh: bool = False) -> dict[str, Jwk]:
        """The keys published at `url`; `refresh` asks for a refetch (rate-limited)."""
        keys = self._fresh(url, refresh)
        if keys is not None:
            return keys
        with self._lock:
            keys = self._fresh(url, refresh)  # fetched by another thread while this one waited
            if keys is not None:
                return keys
            cached = self._cached
            try:
                document = self._fetch(url)
            except (OSError, ValueError) as exc:
                log.warning("idp.jwks_unavailable", error=type(exc).__name__)
                if cached is not None and cached[0] == url:
                    return cached[2]
                raise Unauthenticated("the identity provider's keys cannot be fetched now") from exc
            keys = _signing_keys(document)
            self._cached = (url, self._clock(), keys)
            return keys
