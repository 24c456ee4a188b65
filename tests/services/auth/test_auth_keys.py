"""The signing-key API any token kind uses: sign, signer, verification_key, verify (both engines)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from gateway.core.errors import Unauthenticated
from gateway.security import jwt
from gateway.services.auth import bearer, clients, keys

AUDIENCE = "consent-gateway"
SUBJECT_TYP = "subject+jwt"
SUBJECT_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "sub")


def subject_claims(gw, **overrides) -> dict:
    now = int(gw.now().timestamp())
    claims = {"iss": keys.issuer(gw), "sub": "visitor-1", "aud": AUDIENCE, "iat": now,
              "exp": now + 120, "jti": jwt.new_jti()}
    return {**claims, **overrides}


def test_sign_writes_the_typ_and_the_active_kid(gw):
    token = keys.sign(gw, subject_claims(gw), typ=SUBJECT_TYP)
    header, claims = jwt.unverified(token)
    assert header == {"alg": "EdDSA", "kid": keys.active_key(gw).kid, "typ": SUBJECT_TYP}
    assert claims["sub"] == "visitor-1"
    assert [k["kid"] for k in keys.jwks(gw)["keys"]] == [header["kid"]]


def test_verify_round_trips_a_token_of_its_kind(gw):
    claims = subject_claims(gw)
    token = keys.sign(gw, claims, typ=SUBJECT_TYP)
    assert keys.verify(gw, token, typ=SUBJECT_TYP, audience=AUDIENCE, required=SUBJECT_CLAIMS) == claims
    assert keys.verify(gw, token, typ=("application/subject+jwt", "Subject+JWT"), audience=AUDIENCE,
                       required=SUBJECT_CLAIMS) == claims  # header values compare case-insensitively


def test_verify_refuses_every_other_kind(gw):
    subject = keys.sign(gw, subject_claims(gw), typ=SUBJECT_TYP)
    access = keys.sign(gw, subject_claims(gw), typ="at+jwt")
    with pytest.raises(jwt.TokenInvalid, match="typ"):
        keys.verify(gw, subject, typ="at+jwt", audience=AUDIENCE, required=SUBJECT_CLAIMS)
    with pytest.raises(jwt.TokenInvalid, match="typ"):
        keys.verify(gw, access, typ=SUBJECT_TYP, audience=AUDIENCE, required=SUBJECT_CLAIMS)
    with pytest.raises(ValueError):
        keys.verify(gw, subject, typ=(), audience=AUDIENCE, required=SUBJECT_CLAIMS)


def test_verify_checks_issuer_audience_required_claims_and_expiry(gw):
    def refused(token, **kwargs):
        with pytest.raises(jwt.TokenInvalid):
            keys.verify(gw, token, **{"typ": SUBJECT_TYP, "audience": AUDIENCE,
                                      "required": SUBJECT_CLAIMS, **kwargs})

    sign = lambda **o: keys.sign(gw, subject_claims(gw, **o), typ=SUBJECT_TYP)  # noqa: E731
    refused(sign(iss="https://elsewhere.example"))
    refused(sign(), audience="another-api")
    refused(sign(), required=(*SUBJECT_CLAIMS, "visitor_id"))
    now = int(gw.now().timestamp())
    with pytest.raises(jwt.TokenExpired):
        keys.verify(gw, sign(exp=now), typ=SUBJECT_TYP, audience=AUDIENCE, required=SUBJECT_CLAIMS)


def test_a_bearer_token_must_be_an_access_token(gw):
    """A subject token is never accepted as a bearer token, even with every access-token claim."""
    made = clients.create_client(gw, "backend", ["consent:read"])
    now = int(gw.now().timestamp())
    claims = {"iss": keys.issuer(gw), "sub": made["client_id"], "aud": AUDIENCE, "iat": now,
              "exp": now + 300, "jti": jwt.new_jti(), "client_id": made["client_id"],
              "scope": "consent:read"}
    actor = bearer.authenticate_bearer(gw, "Bearer " + keys.sign(gw, claims, typ="at+jwt"),
                                       "consent:read")
    assert actor.id == made["client_id"]
    subject = keys.sign(gw, {**claims, "jti": jwt.new_jti()}, typ=SUBJECT_TYP)
    with pytest.raises(Unauthenticated, match="typ"):
        bearer.authenticate_bearer(gw, f"Bearer {subject}", "consent:read")
    assert not [k for k in gw.caches.verified_tokens if k[1] == subject]  # nothing remembered


def test_verification_key_is_the_published_public_jwk(gw):
    kid = keys.active_key(gw).kid
    jwk = keys.verification_key(gw, kid)
    assert jwk == keys.jwks(gw)["keys"][0] and "d" not in jwk
    for unknown in ("no-such-kid", "", "k\x00", "k" * 5000):
        assert keys.verification_key(gw, unknown) is None


def test_a_retired_key_verifies_until_it_is_unpublished(gw):
    with freeze_time("2026-05-04T10:00:00Z") as frozen:
        old = keys.signer(gw)
        token = old.sign(subject_claims(gw, exp=int(gw.now().timestamp()) + 60), typ=SUBJECT_TYP)
        rotated = keys.rotate_signing_key(gw)
        assert keys.signer(gw).kid == rotated["kid"] != old.kid
        assert keys.verify(gw, token, typ=SUBJECT_TYP, audience=AUDIENCE, required=SUBJECT_CLAIMS)
        frozen.tick(keys.published_for(gw) - timedelta(seconds=1))
        assert keys.verification_key(gw, old.kid) is not None
        frozen.tick(timedelta(seconds=1))
        assert keys.verification_key(gw, old.kid) is None


def test_signer_unwraps_the_active_key_once(gw):
    first, again = keys.signer(gw), keys.signer(gw)
    assert first.private_key is again.private_key
    assert list(gw.caches.signing_keys) == [first.kid]
    keys.rotate_signing_key(gw)
    new = keys.signer(gw)
    assert new.kid != first.kid and list(gw.caches.signing_keys) == [new.kid]
