"""Service authentication rows: OAuth clients, token-signing keys, and the token endpoint's
failure throttles.

The store keeps what it is given: a hash of each client secret, each signing key's private
half as encrypted PEM and its public half as a JWK. Hashing, key generation, signing and
verification happen in `services/auth/` with `security/`.

A lookup by a value that cannot be a stored id (empty, too long for its column, or holding
a control character such as NUL, which PostgreSQL refuses in text) finds nothing without
asking the database: ids and kids come from requests and tokens.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .auth_models import Client, SigningKey
from .db import upsert_insert
from .errors import unique
from .limit_models import TokenThrottle

CLIENT_ID_LENGTH = 40  # PublicId
KID_LENGTH = 64

# what `upsert_insert` builds: either dialect's INSERT with ON CONFLICT
_Upsert = postgresql.Insert | sqlite.Insert


def _plausible(value: object, max_length: int) -> str | None:
    """`value` if it can be a stored identifier worth a lookup, else None."""
    if isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable():
        return value
    return None


@dataclass(frozen=True, slots=True)
class ClientBinding:
    """What every bearer request reads of its client: the scopes and purposes it is bound
    to, and whether it is revoked."""

    id: str
    scopes: list[str]
    purposes: list[str]
    revoked_at: datetime | None


@functools.cache
def _client_binding() -> Select[Any]:
    """Built once, on first use: every bearer request runs it."""
    return (select(Client.id, Client.scopes, Client.purposes, Client.revoked_at)
            .where(Client.id == bindparam("id")))


class AuthRepository:
    def __init__(self, session: Session | Connection):
        """A session for writes and for whole rows; a plain connection is enough for
        `binding`, `locked_until` and `throttled` (the hot paths)."""
        self.s = session

    def _session(self) -> Session:
        if not isinstance(self.s, Session):
            raise TypeError("this method needs a session (gw.db.read() or gw.db.write())")
        return self.s

    def _dialect(self) -> str:
        if isinstance(self.s, Session):
            return self.s.get_bind().dialect.name
        return self.s.dialect.name

    # --- clients ----------------------------------------------------------------------------

    def add_client(self, *, client_id: str, name: str, secret_hash: str, scopes: list[str],
                   purposes: list[str], now: datetime) -> Client:
        client = Client(id=client_id, name=name, secret_hash=secret_hash, scopes=scopes,
                        purposes=purposes, created_at=now, secret_rotated_at=None, revoked_at=None)
        self._session().add(client)
        return client

    def clients(self) -> list[Client]:
        """Every client, oldest first (revoked ones included)."""
        return list(self._session().scalars(select(Client).order_by(Client.created_at)))

    def client(self, client_id: str) -> Client | None:
        lookup = _plausible(client_id, CLIENT_ID_LENGTH)
        return self._session().get(Client, lookup) if lookup else None

    def set_secret(self, client: Client, secret_hash: str, now: datetime) -> None:
        client.secret_hash = secret_hash
        client.secret_rotated_at = now

    def revoke(self, client: Client, now: datetime) -> None:
        client.revoked_at = now

    def binding(self, client_id: str) -> ClientBinding | None:
        """The client's scopes, purposes and revocation (one prepared SELECT, no ORM)."""
        lookup = _plausible(client_id, CLIENT_ID_LENGTH)
        if lookup is None:
            return None
        row = self.s.execute(_client_binding(), {"id": lookup}).first()
        if row is None:
            return None
        return ClientBinding(row.id, list(row.scopes), list(row.purposes), row.revoked_at)

    # --- signing keys -----------------------------------------------------------------------

    def latest_key(self) -> SigningKey | None:
        """The key of the highest generation (the active one), None before the first."""
        return self._session().scalars(
            select(SigningKey).order_by(SigningKey.generation.desc()).limit(1)).first()

    def keys(self) -> list[SigningKey]:
        """Every key, newest generation first (retired ones included)."""
        return list(self._session().scalars(select(SigningKey).order_by(SigningKey.generation.desc())))

    def key(self, kid: str) -> SigningKey | None:
        lookup = _plausible(kid, KID_LENGTH)
        return self._session().get(SigningKey, lookup) if lookup else None

    def add_key(self, *, kid: str, generation: int, algorithm: str, private_key_pem: str,
                public_jwk: dict[str, Any], now: datetime) -> SigningKey:
        """Raises `DuplicateKey` when another transaction took the same generation first
        (two workers creating the first key, or two rotations at once)."""
        row = SigningKey(kid=kid, generation=generation, algorithm=algorithm,
                         private_key_pem=private_key_pem, public_jwk=public_jwk, created_at=now,
                         retired_at=None)
        session = self._session()
        with unique():
            session.add(row)
            session.flush()
        return row

    def retire_key(self, key: SigningKey, now: datetime) -> None:
        """The key signs nothing more: its private half is erased (the public half stays)."""
        key.retired_at = now
        key.private_key_pem = ""

    # --- token endpoint throttles -----------------------------------------------------------

    def locked_until(self, pair: str) -> datetime | None:
        """Until when the pair is locked (None: not locked, or no failures on record)."""
        return self.s.execute(select(TokenThrottle.locked_until)
                              .where(TokenThrottle.pair == pair)).scalar_one_or_none()

    def throttled(self, pair: str) -> bool:
        """Whether the pair has failures on record."""
        return self.s.execute(select(TokenThrottle.pair)
                              .where(TokenThrottle.pair == pair)).first() is not None

    def count_failure(self, pair: str, now: datetime, *, forget_before: datetime) -> int:
        """One more failure in a row for the pair (one upsert, safe across workers); returns
        how many in a row. A pair whose last failure is older than `forget_before` starts over
        at 1, and other such pairs are deleted."""
        stale = TokenThrottle.last_failure_at < forget_before
        insert = upsert_insert(self._dialect())(TokenThrottle)
        stmt = insert.values(pair=pair, failures=1, last_failure_at=now, locked_until=None)
        upsert = stmt.on_conflict_do_update(index_elements=["pair"], set_={
            "failures": case((stale, 1), else_=TokenThrottle.failures + 1),
            "last_failure_at": now,
        }).returning(TokenThrottle.failures)
        self.s.execute(delete(TokenThrottle).where(stale, TokenThrottle.pair != pair))
        return int(self.s.execute(upsert).scalar_one())

    def lock(self, pair: str, until: datetime) -> None:
        self.s.execute(update(TokenThrottle).where(TokenThrottle.pair == pair)
                       .values(locked_until=until))

    def clear_throttle(self, pair: str) -> None:
        self.s.execute(delete(TokenThrottle).where(TokenThrottle.pair == pair))
