"""Engines and sessions. Built from settings in create_app or the CLI, never at import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .errors import reachable, translated

# What a service holds inside `write()` and hands back to repositories (opaque above store/).
Transaction = Session

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    # FULL, not NORMAL: under WAL, NORMAL can lose a committed (answered) transaction on power
    # loss or an OS crash. A consent ledger answers 201 only for what is on disk (README).
    "PRAGMA synchronous=FULL",
    # Deleted rows are overwritten with zeros, whatever the SQLite build's default: erasure
    # leaves no ciphertext or wrapped data key behind in free space (tests/store/test_no_plaintext.py).
    "PRAGMA secure_delete=ON",
)


def normalize_url(url: str) -> str:
    """Accept plain postgres:// URLs and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def upsert_insert(dialect: str) -> Callable[..., postgresql.Insert | sqlite.Insert]:
    """`insert` of the dialect, with ON CONFLICT DO NOTHING / DO UPDATE (both engines have it)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def dialect_name(bind: Session | Connection) -> str:
    """'postgresql' or 'sqlite': the dialect a session's engine or a connection speaks."""
    return bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name


def rowcount(result: Result[Any]) -> int:
    """The rows a DELETE, UPDATE or INSERT matched. A session's `execute` returns the
    CursorResult of such a statement typed as a plain Result."""
    return cast(CursorResult[Any], result).rowcount


def make_engine(url: str, **kwargs) -> Engine:
    url = normalize_url(url)
    kwargs.setdefault("hide_parameters", True)  # no SQL parameters in exception messages or logs
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _sqlite_setup(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout (10-20 % of a hot request's CPU).
    # A connection that went away fails its request once (503, see api/errors.py) and
    # SQLAlchemy then replaces every pooled connection; pool_recycle retires old ones first.
    kwargs.setdefault("pool_recycle", 1800)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _sqlite_setup(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for write transactions.

    pysqlite's own transaction handling is switched off so that a write
    transaction takes the write lock when it begins; a deferred one that
    upgrades later can fail with SQLITE_BUSY under concurrency.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The engine and two kinds of unit of work: `write()` and `read()`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        writer = engine.execution_options(sqlite_immediate=True)
        self._write = sessionmaker(bind=writer, expire_on_commit=False)
        # PostgreSQL reads run in autocommit: at READ COMMITTED every statement sees its own
        # snapshot anyway, so a BEGIN and a COMMIT would only add two round trips. (Streaming
        # reads with server-side cursors use a connection of their own, not `read()`.)
        self._reader = engine
        if self.dialect == "postgresql":
            self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = sessionmaker(bind=self._reader, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with translated(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Reads only. On PostgreSQL each statement is its own snapshot (autocommit)."""
        with translated(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def query(self) -> Iterator[Connection]:
        """A connection for plain Core reads on the hot paths (authentication, consent state):
        no ORM session to set up and tear down. Autocommit on PostgreSQL, like `read()`."""
        with translated(), self._reader.connect() as conn:
            yield conn

    def ping(self) -> None:
        """Raises `StoreUnavailable` when the database cannot be reached."""
        with reachable(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
