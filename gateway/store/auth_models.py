"""Service authentication: OAuth2 clients and token-signing keys (throttles: limit_models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, PublicId


class Client(Base):
    """A backend or DPO tool that gets tokens with client credentials.

    Only a hash of the secret is kept. Scopes and purposes bind what its
    tokens may do; both are read from this row on every request, so that a
    revocation takes effect at once.
    """

    __tablename__ = "clients"
    id: Mapped[str] = mapped_column(PublicId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[Any]] = mapped_column()
    purposes: Mapped[list[Any]] = mapped_column()
    created_at: Mapped[datetime]
    secret_rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SigningKey(Base):
    """A key that signs access tokens; the private half is stored as encrypted PKCS#8 PEM.

    `generation` is unique: the active key is the highest one, and two workers
    creating or rotating at once cannot both win. A retired key stays published
    until every token it signed has expired.
    """

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]

