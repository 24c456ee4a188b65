"""The unit-of-work layer: autocommit reads on PostgreSQL, and a lost connection is a 503, once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

SUBJECT = "visitor-db-1"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reads_run_in_autocommit_on_postgresql_and_writes_in_a_transaction(gw):
    with gw.db.read() as s:
        read_autocommit = s.connection().connection.dbapi_connection.autocommit
    with gw.db.write() as s:
        write_autocommit = s.connection().connection.dbapi_connection.autocommit
        level = s.connection().get_isolation_level()
    assert (read_autocommit, write_autocommit, level) == (True, False, "READ COMMITTED")


def test_a_write_rolls_back_entirely_on_error(gw):
    from gateway.store.models import Subject

    with pytest.raises(RuntimeError), gw.db.write() as s:
        s.add(Subject(pseudonym="p" * 64, created_at=gw.now()))
        s.flush()
        raise RuntimeError("fail after the insert")
    with gw.db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Subject)) == 0


def test_a_lost_connection_is_a_503_problem_with_retry_after(client, banner, monkeypatch):
    from gateway.store.consents import ConsentRepository

    def disconnected(*_args, **_kwargs):
        raise DBAPIError("SELECT 1", {}, ConnectionError("server closed the connection"),
                         connection_invalidated=True)

    # raised inside the store, where the unit of work turns it into the store's own error
    monkeypatch.setattr(ConsentRepository, "records", disconnected)
    r = client.get(f"/v1/subjects/{SUBJECT}/consents", headers=banner)
    assert r.status_code == 503
    assert r.content_type == "application/problem+json"
    assert r.headers["Retry-After"] == "1"
    assert r.json["type"] == "/problems/unavailable" and "send the request again" in r.json["detail"]


def test_any_other_database_error_stays_a_500(client, banner, monkeypatch):
    from gateway.services import consent

    def broken(*_args, **_kwargs):
        raise DBAPIError("SELECT 1", {}, ValueError("something else"), connection_invalidated=False)

    monkeypatch.setattr(consent, "current_state", broken)
    r = client.get(f"/v1/subjects/{SUBJECT}/consents", headers=banner)
    assert r.status_code == 500 and r.content_type == "application/problem+json"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no server
def test_after_postgresql_drops_every_connection_one_request_fails_and_the_next_works(
        gw, client, banner):
    """No pre-ping: the first request on a dead pooled connection is a 503, and the pool is
    refilled so that the request after it succeeds."""
    url = f"/v1/subjects/{SUBJECT}/consents"
    assert client.get(url, headers=banner).status_code == 200  # the pool holds live connections
    admin = sa.create_engine(gw.db.engine.url, poolclass=sa.pool.NullPool,
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1
    statuses = [client.get(url, headers=banner).status_code for _ in range(3)]
    assert statuses[0] == 503
    assert statuses[1:] == [200, 200]
