"""Shared fixtures: the app on both databases (SQLite and PostgreSQL), clients, credentials.

Database tests run the real migrations. SQLite: one migrated template file,
copied for every test. PostgreSQL: one database per test run (created on the
server at TEST_POSTGRES_URL, dropped at the end), emptied between tests. When
the server is missing, PostgreSQL tests skip, except under CI=true, where the
run fails.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store import migrate
from gateway.store.db import make_engine

HERE = Path(__file__).resolve().parent
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PSEUDONYM_KEY = base64.b64encode(b"k" * 32).decode()
MASTER_KEY = base64.b64encode(b"m" * 32).decode()

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

pytest_plugins = ["webhook_helpers"]  # receiver, subscribe, worker


def _pg_unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI (CI=true) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test run, migrated to head."""
    admin_url = sa.engine.make_url(PG_ADMIN_URL)
    name = f"cg_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        _pg_unavailable(f"cannot reach {admin_url.render_as_string(hide_password=True)} "
                        f"({exc.orig.__class__.__name__})")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _empty_pg(url: str) -> None:
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = [
            t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"
        ]
        if tables:
            conn.exec_driver_sql(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
            )
    engine.dispose()


@pytest.fixture(params=ENGINES)
def database_url(request, tmp_path) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _empty_pg(url)
    return url


@pytest.fixture
def policy_dir() -> Path:
    return HERE.parent / "policies"


@pytest.fixture
def app_config(database_url, tmp_path, policy_dir) -> dict:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "GATEWAY_INSTANCE_DIR": str(tmp_path / "instance"),
        "GATEWAY_POLICY_DIR": str(policy_dir),
        "GATEWAY_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "GATEWAY_MASTER_KEY": MASTER_KEY,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_ISSUER": "http://localhost",  # the test client's URL
    }


@pytest.fixture
def app(app_config):
    from gateway import create_app

    application = create_app(app_config)
    yield application
    application.extensions["gateway"].db.dispose()


@pytest.fixture
def gw(app):
    return app.extensions["gateway"]


@pytest.fixture
def client(app):
    """A test client that checks every response against openapi.yaml (tests/contract.py)."""
    from contract import ValidatingClient

    app.test_client_class = ValidatingClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


ORIGIN = "https://shop.example"


@pytest.fixture
def banner(gw) -> dict:
    """Headers of a banner on https://shop.example (property key + Origin)."""
    from gateway.services import properties

    prop = properties.create_property(gw, "Demo shop", [ORIGIN])
    return {"X-Property-Key": prop["property_key"], "Origin": ORIGIN}
