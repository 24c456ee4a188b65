"""gateway.security.jwt on its own: keys, encoding, and every way decoding must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.security import jwt

PASS = b"p" * 32
NOW = 1_790_000_000
ISS, AUD = "https://gw.example", "consent-gateway"


def claims(**overrides):
    base = {"iss": ISS, "sub": "cli_a", "aud": AUD, "iat": NOW, "exp": NOW + 900, "jti": "j1",
            "client_id": "cli_a", "scope": "consent:read"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module", params=["EdDSA", "ES256"])
def key(request):
    new = jwt.generate_key(request.param, PASS)
    return new, jwt.load_private_key(new.private_key_pem, PASS)


def encode(key, **overrides):
    new, private = key
    return jwt.encode(claims(**overrides), private_key=private, kid=new.kid, algorithm=new.algorithm)


def decode(key, token, *, now=NOW, **kwargs):
    new, _ = key
    return jwt.decode(token, find_key={new.kid: new.public_jwk}.get, issuer=ISS, audience=AUD, now=now,
                      **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return f"{head}.{b64(signature)}"


def test_generated_key_is_published_with_its_thumbprint(key):
    new, _ = key
    jwk = new.public_jwk
    assert jwk["kid"] == new.kid and jwk["alg"] == new.algorithm and jwk["use"] == "sig"
    assert "d" not in jwk
    assert jwt.JsonWebKey.import_key(jwk).thumbprint() == new.kid  # RFC 7638
    assert jwt.jwks([jwk]) == {"keys": [jwk]}


def test_private_key_is_stored_encrypted(key):
    new, _ = key
    assert new.private_key_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ValueError):
        jwt.load_private_key(new.private_key_pem, b"q" * 32)
    with pytest.raises(TypeError):
        jwt.load_private_key(new.private_key_pem, None)


def test_round_trip(key):
    new, _ = key
    token = encode(key)
    header, _ = jwt.unverified(token)
    assert header == {"alg": new.algorithm, "kid": new.kid, "typ": "at+jwt"}
    assert decode(key, token) == claims()


def test_expiry_is_strict_and_iat_allows_small_skew(key):
    token = encode(key)
    assert decode(key, token, now=NOW + 899)
    with pytest.raises(jwt.TokenExpired):
        decode(key, token, now=NOW + 900)
    assert decode(key, encode(key, iat=NOW + jwt.LEEWAY_SECONDS))
    with pytest.raises(jwt.TokenInvalid):
        decode(key, encode(key, iat=NOW + jwt.LEEWAY_SECONDS + 1))
    with pytest.raises(jwt.TokenInvalid):
        decode(key, encode(key, nbf=NOW + 3600))


@pytest.mark.parametrize("overrides", [
    {"iss": "https://evil.example"}, {"aud": "someone-else"}, {"aud": ["a", "b"]}, {"exp": "tomorrow"},
    {"iat": True}, {"client_id": 7}, {"scope": ["consent:read"]}, {"iss": None}, {"aud": None},
    {"exp": None}, {"iat": None}, {"jti": None}, {"client_id": None}, {"scope": None},
])
def test_claims_are_checked(key, overrides):
    with pytest.raises(jwt.TokenInvalid):
        decode(key, encode(key, **overrides))


def test_audience_may_be_a_list_that_names_us(key):
    assert decode(key, encode(key, aud=["other", AUD]))["aud"] == ["other", AUD]


def test_unknown_kid_and_wrong_key_are_refused(key):
    new, _ = key
    other = jwt.generate_key(new.algorithm, PASS)
    other_private = jwt.load_private_key(other.private_key_pem, PASS)
    stranger = jwt.encode(claims(), private_key=other_private, kid=other.kid, algorithm=new.algorithm)
    with pytest.raises(jwt.TokenInvalid, match="not signed by a key"):
        decode(key, stranger)
    impostor = jwt.encode(claims(), private_key=other_private, kid=new.kid, algorithm=new.algorithm)
    with pytest.raises(jwt.TokenInvalid):
        decode(key, impostor)


def test_a_key_is_used_only_with_its_algorithm():
    ed = jwt.generate_key("EdDSA", PASS)
    ec = jwt.generate_key("ES256", PASS)
    ec_private = jwt.load_private_key(ec.private_key_pem, PASS)
    token = jwt.encode(claims(), private_key=ec_private, kid=ed.kid, algorithm="ES256")
    with pytest.raises(jwt.TokenInvalid):
        jwt.decode(token, find_key={ed.kid: ed.public_jwk}.get, issuer=ISS, audience=AUD, now=NOW)


def test_alg_none_and_hs256_with_the_public_key_are_refused():
    new = jwt.generate_key("EdDSA", PASS)
    public = jwt.JsonWebKey.import_key(new.public_jwk).get_public_key()
    find = {new.kid: new.public_jwk}.get
    for alg in ("none", "None", ""):
        token = hand_made({"alg": alg, "kid": new.kid, "typ": "at+jwt"}, claims())
        with pytest.raises(jwt.TokenInvalid):
            jwt.decode(token, find_key=find, issuer=ISS, audience=AUD, now=NOW)
    for secret in (public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
                   public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)):
        head = {"alg": "HS256", "kid": new.kid, "typ": "at+jwt"}
        unsigned = hand_made(head, claims()).rsplit(".", 1)[0]
        signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        with pytest.raises(jwt.TokenInvalid):
            jwt.decode(f"{unsigned}.{b64(signature)}", find_key=find, issuer=ISS, audience=AUD, now=NOW)


def test_header_must_name_a_kid_and_the_access_token_type(key):
    new, private = key
    for header in ({"alg": new.algorithm, "typ": "at+jwt"},
                   {"alg": new.algorithm, "kid": ["x"], "typ": "at+jwt"},
                   {"alg": new.algorithm, "kid": new.kid, "typ": "JWT"},
                   {"alg": new.algorithm, "kid": new.kid}):
        token = jwt.JsonWebToken([new.algorithm]).encode(header, claims(), private).decode()
        with pytest.raises(jwt.TokenInvalid):
            decode(key, token)
    typ_jwt = jwt.JsonWebToken([new.algorithm]).encode(
        {"alg": new.algorithm, "kid": new.kid, "typ": "JWT"}, claims(), private).decode()
    assert decode(key, typ_jwt, token_types=None)  # what an IdP's tokens may look like


def test_idp_algorithms_accept_rs256_but_local_ones_do_not():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.JsonWebKey.import_key(private.public_key(), {"kty": "RSA"}).as_dict(), "kid": "r1"}
    token = jwt.JsonWebToken(["RS256"]).encode({"alg": "RS256", "kid": "r1"},
                                               claims(jti=None, client_id=None, scope=None),
                                               private).decode()
    with pytest.raises(jwt.TokenInvalid):
        jwt.decode(token, find_key={"r1": jwk}.get, issuer=ISS, audience=AUD, now=NOW, token_types=None)
    got = jwt.decode(token, find_key={"r1": jwk}.get, issuer=ISS, audience=AUD, now=NOW,
                     algorithms=jwt.IDP_ALGORITHMS, required=("iss", "aud", "exp"), token_types=None)
    assert got["sub"] == "cli_a"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "a.b.c.d.e", "..", "x" * 9000,
                                   "eyJhbGciOiJFZERTQSJ9.e30", "e30.e30.", "bnVsbA.bnVsbA.AA"])
def test_garbage_is_refused(key, token):
    with pytest.raises(jwt.TokenInvalid):
        decode(key, token)


def test_unverified_never_raises():
    assert jwt.unverified("a.b.c") is None
    assert jwt.unverified("bnVsbA.e30.") is None  # header is JSON null
    assert jwt.unverified(hand_made({"alg": "x"}, {"iss": "y"})) == ({"alg": "x"}, {"iss": "y"})


@cache
def ed_key() -> jwt.NewKey:
    return jwt.generate_key("EdDSA", PASS)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300)
       | st.from_regex(r"[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,40}\.[A-Za-z0-9_\-]{0,40}"))
def test_any_text_is_refused_with_token_invalid(text):
    new = ed_key()
    with pytest.raises(jwt.TokenInvalid):
        jwt.decode(text, find_key={new.kid: new.public_jwk}.get, issuer=ISS, audience=AUD, now=NOW)


def test_generate_key_rejects_other_algorithms():
    with pytest.raises(ValueError):
        jwt.generate_key("HS256", PASS)
    with pytest.raises(ValueError):
        jwt.encode(claims(), private_key=ed25519.Ed25519PrivateKey.generate(), kid="k", algorithm="none")
