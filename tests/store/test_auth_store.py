"""AuthRepository on both engines: clients, signing keys, token-endpoint throttles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.store.auth import AuthRepository
from gateway.store.db import Database
from gateway.store.errors import DuplicateKey

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url):
    database = Database.from_url(database_url)
    yield database
    database.dispose()


def add_client(db, client_id="cli_1", now=T0, **values):
    with db.write() as s:
        AuthRepository(s).add_client(**{
            "client_id": client_id, "name": "Backend", "secret_hash": "sha256$x",
            "scopes": ["consent:read"], "purposes": ["ads"], "now": now, **values})


def add_key(repo, kid, generation, now=T0):
    return repo.add_key(kid=kid, generation=generation, algorithm="EdDSA", private_key_pem="PEM",
                        public_jwk={"kid": kid, "kty": "OKP"}, now=now)


def statements(db):
    seen: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_clients_are_added_listed_rotated_and_revoked(db):
    add_client(db, "cli_b", now=T0 + timedelta(seconds=1))
    add_client(db, "cli_a")
    with db.read() as s:
        repo = AuthRepository(s)
        assert [c.id for c in repo.clients()] == ["cli_a", "cli_b"]  # oldest first
        client = repo.client("cli_a")
    assert (client.name, client.scopes, client.purposes, client.revoked_at) == (
        "Backend", ["consent:read"], ["ads"], None)
    later = T0 + timedelta(minutes=5)
    with db.write() as s:
        repo = AuthRepository(s)
        repo.set_secret(repo.client("cli_a"), "sha256$y", later)
        repo.revoke(repo.client("cli_b"), later)
    with db.read() as s:
        repo = AuthRepository(s)
        a, b = repo.client("cli_a"), repo.client("cli_b")
    assert (a.secret_hash, a.secret_rotated_at, a.revoked_at) == ("sha256$y", later, None)
    assert b.revoked_at == later


def test_the_binding_is_read_on_a_plain_connection(db):
    add_client(db)
    with db.query() as conn:
        binding = AuthRepository(conn).binding("cli_1")
        assert AuthRepository(conn).binding("cli_nobody") is None
    assert (binding.id, binding.scopes, binding.purposes, binding.revoked_at) == (
        "cli_1", ["consent:read"], ["ads"], None)
    with db.query() as conn, pytest.raises(TypeError):
        AuthRepository(conn).client("cli_1")  # whole rows need a session


@pytest.mark.parametrize("bad", ["", "cli\x00", "c" * 65, "\n"])
def test_lookups_by_impossible_ids_find_nothing_without_a_query(db, bad):
    add_client(db)
    seen = statements(db)
    with db.read() as s:
        repo = AuthRepository(s)
        assert repo.client(bad) is None and repo.key(bad) is None
    with db.query() as conn:
        assert AuthRepository(conn).binding(bad) is None
    assert not [q for q in seen if "clients" in q or "signing_keys" in q]


def test_a_client_id_longer_than_its_column_finds_nothing_without_a_query(db):
    add_client(db)
    seen = statements(db)
    with db.read() as s:
        assert AuthRepository(s).client("c" * 41) is None
        assert AuthRepository(s).client("cli_1") is not None
    assert len([q for q in seen if "FROM clients" in q]) == 1


def test_signing_keys_by_generation(db):
    with db.read() as s:
        assert AuthRepository(s).latest_key() is None
    with db.write() as s:
        repo = AuthRepository(s)
        add_key(repo, "k1", 1)
        add_key(repo, "k2", 2, now=T0 + timedelta(hours=1))
    with db.write() as s:
        repo = AuthRepository(s)
        assert repo.latest_key().kid == "k2"
        assert [k.kid for k in repo.keys()] == ["k2", "k1"]  # newest first
        repo.retire_key(repo.key("k1"), T0 + timedelta(hours=2))
    with db.read() as s:
        retired = AuthRepository(s).key("k1")
    assert (retired.retired_at, retired.private_key_pem, retired.public_jwk) == (
        T0 + timedelta(hours=2), "", {"kid": "k1", "kty": "OKP"})


def test_a_generation_taken_first_is_a_duplicate_key_and_changes_nothing(db):
    with db.write() as s:
        add_key(AuthRepository(s), "k1", 1)
    with pytest.raises(DuplicateKey), db.write() as s:
        add_key(AuthRepository(s), "k-late", 1)
    with db.read() as s:
        assert [k.kid for k in AuthRepository(s).keys()] == ["k1"]


def test_failures_count_lock_and_clear(db):
    forget = timedelta(days=1)

    def fail(pair, now):
        with db.write() as s:
            return AuthRepository(s).count_failure(pair, now, forget_before=now - forget)

    with db.query() as conn:
        assert not AuthRepository(conn).throttled("p") and AuthRepository(conn).locked_until("p") is None
    assert [fail("p", T0 + timedelta(seconds=i)) for i in range(3)] == [1, 2, 3]
    with db.write() as s:
        AuthRepository(s).lock("p", T0 + timedelta(seconds=30))
    with db.query() as conn:
        repo = AuthRepository(conn)
        assert repo.throttled("p") and repo.locked_until("p") == T0 + timedelta(seconds=30)
    with db.write() as s:
        AuthRepository(s).clear_throttle("p")
    with db.query() as conn:
        assert not AuthRepository(conn).throttled("p")


def test_a_stale_pair_starts_over_and_other_stale_pairs_are_forgotten(db):
    forget = timedelta(days=1)
    with db.write() as s:
        repo = AuthRepository(s)
        for pair in ("p", "q"):
            repo.count_failure(pair, T0, forget_before=T0 - forget)
            repo.count_failure(pair, T0, forget_before=T0 - forget)
    later = T0 + forget + timedelta(seconds=1)
    with db.write() as s:
        assert AuthRepository(s).count_failure("p", later, forget_before=later - forget) == 1
    with db.query() as conn:
        assert AuthRepository(conn).throttled("p") and not AuthRepository(conn).throttled("q")
