"""The store's own errors: SQLAlchemy's are translated inside store/, never seen above it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.store.db import Database
from gateway.store.errors import DuplicateKey, StoreUnavailable, reachable, translated, unique


def _lost() -> DBAPIError:
    return DBAPIError("SELECT 1", {}, ConnectionError("server closed the connection"),
                      connection_invalidated=True)


def _other() -> DBAPIError:
    return DBAPIError("SELECT 1", {}, ValueError("something else"), connection_invalidated=False)


def test_a_lost_connection_becomes_store_unavailable_naming_only_the_driver_error():
    with pytest.raises(StoreUnavailable) as caught, translated():
        raise _lost()
    assert caught.value.cause == "ConnectionError"
    assert isinstance(caught.value.__cause__, DBAPIError)
    assert "SELECT" not in str(caught.value)


@pytest.mark.parametrize("error", [_other(), RuntimeError("not the database")])
def test_every_other_error_passes_unchanged(error):
    with pytest.raises(type(error)) as caught, translated():
        raise error
    assert caught.value is error


def test_an_integrity_error_around_a_racing_insert_becomes_duplicate_key():
    with pytest.raises(DuplicateKey), unique():
        raise IntegrityError("INSERT", {}, ValueError("duplicate key"))


def test_reachability_turns_any_database_error_into_store_unavailable():
    with pytest.raises(StoreUnavailable) as caught, reachable():
        raise _other()
    assert caught.value.cause == "DBAPIError"


@pytest.mark.parametrize("unit", ["write", "read", "query"])
def test_every_unit_of_work_translates_a_lost_connection(gw, unit):
    with pytest.raises(StoreUnavailable), getattr(gw.db, unit)():
        raise _lost()


def test_ping_of_an_unreachable_database_is_store_unavailable(tmp_path):
    db = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            db.ping()
        assert caught.value.cause == "OperationalError"
    finally:
        db.dispose()
