"""IdpKeys: the IdP's JWKS cached per Gateway, refetched rate-limited, with its own lock."""

from __future__ import annotations

import threading
import time

import pytest

from gateway.core.errors import Unauthenticated
from gateway.services.auth import idp
from gateway.services.auth.idp import IdpKeys

URL = "https://login.example.org/jwks"


class FakeIdp:
    """A fetch function that serves `documents` in turn (or raises `error`) and counts calls."""

    def __init__(self, *documents):
        self.documents = list(documents)
        self.calls: list[str] = []
        self.error: Exception | None = None

    def __call__(self, url):
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        return self.documents[min(len(self.calls), len(self.documents)) - 1]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def jwks(*kids, **extra):
    return {"keys": [{"kty": "OKP", "kid": k, **extra} for k in kids]}


def test_keys_are_cached_for_five_minutes():
    fetch, clock = FakeIdp(jwks("a"), jwks("b")), Clock()
    keys = IdpKeys(fetch, clock)
    assert set(keys.get(URL)) == {"a"}
    clock.now += idp.IDP_JWKS_TTL_SECONDS
    assert set(keys.get(URL)) == {"a"} and len(fetch.calls) == 1
    clock.now += 1
    assert set(keys.get(URL)) == {"b"} and len(fetch.calls) == 2


def test_a_refresh_refetches_at_most_every_thirty_seconds():
    fetch, clock = FakeIdp(jwks("a"), jwks("a", "b")), Clock()
    keys = IdpKeys(fetch, clock)
    keys.get(URL)
    clock.now += idp.IDP_JWKS_MIN_REFRESH_SECONDS
    assert set(keys.get(URL, refresh=True)) == {"a"} and len(fetch.calls) == 1
    clock.now += 1
    assert set(keys.get(URL, refresh=True)) == {"a", "b"} and len(fetch.calls) == 2


def test_only_signing_keys_with_a_kid_are_kept():
    document = {"keys": [{"kid": "sig"}, {"kid": "enc", "use": "enc"}, {"use": "sig"}, {"kid": 7},
                         "not a key", {"kid": "explicit", "use": "sig"}]}
    assert set(IdpKeys(FakeIdp(document), Clock()).get(URL)) == {"sig", "explicit"}


def test_an_unreachable_idp_keeps_the_last_keys_or_is_401():
    fetch, clock = FakeIdp(jwks("a")), Clock()
    keys = IdpKeys(fetch, clock)
    fetch.error = OSError("down")
    with pytest.raises(Unauthenticated, match="cannot be fetched"):
        keys.get(URL)
    fetch.error = None
    keys.get(URL)
    fetch.error = ValueError("not a JWKS document")
    clock.now += idp.IDP_JWKS_TTL_SECONDS + 1
    assert set(keys.get(URL)) == {"a"}


def test_keys_of_another_url_are_not_served_from_the_cache():
    fetch = FakeIdp(jwks("a"), jwks("b"))
    keys = IdpKeys(fetch, Clock())
    keys.get(URL)
    assert set(keys.get("https://other.example/jwks")) == {"b"}
    assert fetch.calls == [URL, "https://other.example/jwks"]


def test_threads_that_miss_together_fetch_once():
    calls: list[str] = []

    def slow(url):
        calls.append(url)
        time.sleep(0.2)  # the others arrive while this fetch runs
        return jwks("a")

    keys = IdpKeys(slow)
    results: list[set] = []
    threads = [threading.Thread(target=lambda: results.append(set(keys.get(URL)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"a"}] * 4
    assert calls == [URL]


def test_two_gateways_do_not_share_keys(app_config):
    from gateway import create_app

    apps = [create_app(app_config) for _ in range(2)]
    try:
        one, two = (a.extensions["gateway"].caches.idp_keys for a in apps)
        assert isinstance(one, IdpKeys) and one is not two
    finally:
        for a in apps:
            a.extensions["gateway"].db.dispose()


def test_fetch_jwks_refuses_other_schemes():
    with pytest.raises(ValueError, match="http or https"):
        idp.fetch_jwks("file:///etc/passwd")
