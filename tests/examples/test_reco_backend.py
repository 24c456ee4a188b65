"""The example personalization backend (examples/reco_backend.py), over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import importlib
import json
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))
reco_backend = importlib.import_module("examples.reco_backend")

SECRET = "s3cret"
LOCALES = ("en", "de", "nb")


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def server():
    srv = reco_backend.serve("127.0.0.1", 0, SECRET)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def post(server):
    def send(body: bytes, headers: dict | None = None, path: str = "/decide") -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                           **(headers or {})})
            response = conn.getresponse()
            assert response.getheader("Content-Type") == "application/json"
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    return send


def request(profile: dict | None) -> bytes:
    return json.dumps({"decision_id": "dec_1", "subject_id": "u-1", "placement": "product_recommendations",
                       "purpose": "personalization", "locale": "de", "context": {},
                       "profile": profile}).encode()


def test_a_signed_request_gets_a_recommendation(post):
    body = request({"browsing_categories": ["outdoor"], "loyalty_tier": "silver"})
    status, answer = post(body, {"X-Gateway-Signature": signature(body)})
    assert status == 200
    assert answer["content"] == {"id": "trail-gear", "source": "reco-backend"}
    assert answer["attributes"] == ["browsing_categories"]
    assert set(answer["explanation"]) == set(LOCALES)


@pytest.mark.parametrize("header", [
    None, "", "sha256=", signature(b"another body"), signature(b"x", secret="wrong"),
    "sha1=" + "0" * 40,
])
def test_a_bad_or_missing_signature_is_401(post, header):
    body = request({"browsing_categories": ["outdoor"]})
    status, answer = post(body, {} if header is None else {"X-Gateway-Signature": header})
    assert status == 401 and answer == {"error": "bad signature"}


def test_the_signature_is_over_the_exact_bytes(post):
    body = request({"browsing_categories": ["outdoor"]})
    status, _ = post(body + b" ", {"X-Gateway-Signature": signature(body)})
    assert status == 401
    wrong_secret = signature(body, secret=SECRET + "x")
    assert post(body, {"X-Gateway-Signature": wrong_secret})[0] == 401


def test_a_signed_body_that_is_not_json_is_400(post):
    body = b"profile=outdoor"
    status, answer = post(body, {"X-Gateway-Signature": signature(body)})
    assert status == 400 and answer == {"error": "not JSON"}


def test_a_body_too_large_is_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        conn.putrequest("POST", "/decide")
        conn.putheader("Content-Length", str(reco_backend.MAX_BODY + 1))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_verify():
    body = b'{"profile": {}}'
    assert reco_backend.verify(SECRET, body, signature(body))
    assert not reco_backend.verify(SECRET, body, None)
    assert not reco_backend.verify(SECRET, body, signature(body, "other"))
    assert not reco_backend.verify(SECRET, body + b"\n", signature(body))


@pytest.mark.parametrize(("profile", "content_id", "used"), [
    ({"purchase_categories": ["kitchen"], "browsing_categories": ["outdoor"]}, "cookware",
     ["purchase_categories"]),  # what was bought comes first
    ({"purchase_categories": ["books"], "browsing_categories": ["running"]}, "running-shoes",
     ["browsing_categories"]),  # an unknown category is skipped
    ({"browsing_categories": ["toys", "home"]}, "home-decor", ["browsing_categories"]),
    ({"browsing_categories": ["outdoor"]}, "trail-gear", ["browsing_categories"]),
    ({"loyalty_tier": "gold", "orders_count": 9}, "bestsellers", []),
    ({"browsing_categories": None}, "bestsellers", []),
    ({}, "bestsellers", []),
    (None, "bestsellers", []),
])
def test_recommend_uses_the_profile_only_and_names_what_it_used(profile, content_id, used):
    answer = reco_backend.recommend({"profile": profile, "context": {"device": "mobile"}})
    assert answer["content"]["id"] == content_id and answer["content"]["source"] == "reco-backend"
    assert answer["attributes"] == used
    assert set(used) <= set(profile or {})
    assert set(answer["explanation"]) == set(LOCALES)
    assert all(text.strip() for text in answer["explanation"].values())
    assert len(set(answer["explanation"].values())) == 3


def test_recommend_without_a_profile_key():
    assert reco_backend.recommend({})["content"]["id"] == "bestsellers"


def test_every_pick_is_explained_in_three_languages():
    for category, (_content_id, *names) in reco_backend.CATEGORY_PICKS.items():
        for source in ("purchase_categories", "browsing_categories"):
            answer = reco_backend.recommend({"profile": {source: [category]}})
            for locale, name in zip(LOCALES, names, strict=True):
                assert name in answer["explanation"][locale], (category, source, locale)


def test_the_answer_passes_the_gateways_check(post):
    """What the example answers is what the gateway accepts (gateway.services.backend.parse_answer)."""
    from gateway.services.backend import parse_answer

    body = request({"purchase_categories": ["running"], "browsing_categories": ["home"]})
    status, answer = post(body, {"X-Gateway-Signature": signature(body)})
    assert status == 200
    checked = parse_answer(json.dumps(answer).encode(), {"purchase_categories", "browsing_categories"})
    assert checked.failure is None and checked.content == answer["content"]
    assert checked.attributes == ("purchase_categories",)
    refused = parse_answer(json.dumps(answer).encode(), {"browsing_categories"})
    assert refused.failure == "unreleased_attribute"


@pytest.mark.parametrize("length", ["abc", "-1", "1.5"])
def test_an_unreadable_content_length_is_400(server, length):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=2)
    try:
        conn.putrequest("POST", "/decide")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        conn.send(b"{}")
        response = conn.getresponse()
        assert response.status == 400 and json.loads(response.read()) == {"error": "bad Content-Length"}
    finally:
        conn.close()
