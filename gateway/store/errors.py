"""The store's own errors: what services and `api/errors.py` see instead of SQLAlchemy's.

SQLAlchemy's exceptions are translated here, inside `store/`, so that nothing above it
needs to know which library talks to the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError


class StoreError(Exception):
    """Something the database refused or could not do."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or the connection went away (a restart, a failover,
    an idle timeout). After a lost connection the pool is refilled with fresh ones, so the
    same request works again.

    `cause` is the class name of the driver's error, never its message (which may hold SQL
    parameters).
    """

    def __init__(self, cause: str):
        super().__init__(f"the database is unavailable ({cause})")
        self.cause = cause


class DuplicateKey(StoreError):
    """A write lost a race on a unique key: another transaction inserted the same key first."""


@contextmanager
def translated() -> Iterator[None]:
    """Around a unit of work: a lost connection becomes `StoreUnavailable`; every other
    error passes unchanged."""
    try:
        yield
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(type(exc.orig).__name__) from exc
        raise


@contextmanager
def reachable() -> Iterator[None]:
    """Around a reachability check: any database error becomes `StoreUnavailable`."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


@contextmanager
def unique() -> Iterator[None]:
    """Around an insert that may lose a race on its key: `IntegrityError` becomes
    `DuplicateKey`."""
    try:
        yield
    except IntegrityError as exc:
        raise DuplicateKey(type(exc.orig).__name__) from exc
