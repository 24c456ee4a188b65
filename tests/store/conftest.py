"""Repositories on their own: a migrated, empty database of each engine, no app around it."""

from __future__ import annotations

import pytest

from gateway.store.db import Database


@pytest.fixture
def db(database_url):
    database = Database.from_url(database_url)
    yield database
    database.dispose()
