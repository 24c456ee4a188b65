"""GATEWAY_ENV=production requires every secret: the start fails, naming the one that is missing.

The four: GATEWAY_PSEUDONYM_KEY, GATEWAY_MASTER_KEY, GATEWAY_AUDIT_SIGNING_KEY and
GATEWAY_SIGNING_KEY_PASSPHRASE. Missing (unset or empty) or malformed, each one stops
`create_app`, and no development key is generated into the instance directory instead.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.security.secrets import SecretMissing

SECRETS = ("GATEWAY_PSEUDONYM_KEY", "GATEWAY_MASTER_KEY", "GATEWAY_AUDIT_SIGNING_KEY",
           "GATEWAY_SIGNING_KEY_PASSPHRASE")


def _b64(byte: bytes) -> str:
    return base64.b64encode(byte * 32).decode()


@pytest.fixture
def production(app_config, tmp_path) -> dict:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {**app_config, "GATEWAY_ENV": "production",
            "GATEWAY_INSTANCE_DIR": str(tmp_path / "prod-instance"),
            "GATEWAY_ISSUER": "https://consent.example",
            "GATEWAY_PSEUDONYM_KEY": _b64(b"p"), "GATEWAY_MASTER_KEY": _b64(b"m"),
            "GATEWAY_AUDIT_SIGNING_KEY": pem, "GATEWAY_SIGNING_KEY_PASSPHRASE": _b64(b"s")}


def _no_generated_keys(config: dict) -> None:
    instance = Path(config["GATEWAY_INSTANCE_DIR"])
    generated = sorted(p.name for p in instance.glob("*")) if instance.exists() else []
    assert not [n for n in generated if n.endswith((".b64", ".pem"))], generated


def test_production_starts_with_every_secret(production, monkeypatch):
    from gateway import create_app

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    app = create_app(production)
    try:
        gw = app.extensions["gateway"]
        assert gw.settings.production
        client = app.test_client()
        assert client.get("/v1/audit/public-key").status_code == 200
    finally:
        app.extensions["gateway"].db.dispose()
    _no_generated_keys(production)


@pytest.mark.parametrize("missing", SECRETS)
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_production_refuses_to_start_without_each_secret(production, monkeypatch, missing, value):
    from gateway import create_app

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)  # nothing from the outer environment fills the gap
    config = dict(production)
    if value is None:
        del config[missing]
    else:
        config[missing] = value
    with pytest.raises(SecretMissing) as caught:
        create_app(config)
    assert missing in str(caught.value)
    assert "GATEWAY_ENV=production" in str(caught.value)
    _no_generated_keys(config)


@pytest.mark.parametrize("malformed", SECRETS)
def test_production_refuses_a_malformed_secret(production, monkeypatch, malformed):
    from gateway import create_app

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SecretMissing) as caught:
        create_app({**production, malformed: "bm90IGEga2V5"})  # base64 of "not a key"
    assert malformed in str(caught.value)


@pytest.mark.parametrize("missing", SECRETS)
def test_development_generates_what_is_missing(production, monkeypatch, missing):
    """The contrast: outside production the same gap is filled with a generated key."""
    from gateway import create_app

    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    config = {k: v for k, v in production.items() if k != missing}
    config["GATEWAY_ENV"] = "development"
    app = create_app(config)
    try:
        assert app.test_client().get("/v1/audit/public-key").status_code == 200
    finally:
        app.extensions["gateway"].db.dispose()
