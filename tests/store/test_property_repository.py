"""PropertyRepository on both engines: what a key hash finds (revoked properties too), which
origins count for preflight, and the listing without key hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.store.models import Property
from gateway.store.properties import KeyedProperty, PropertyRepository, StoredProperty

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _add(db, property_id: str, origins: list[str], at: datetime) -> None:
    with db.write() as s:
        PropertyRepository(s).add(property_id=property_id, name=f"name of {property_id}",
                                  key_hash=f"hash-{property_id}", origins=origins, created_at=at)


def _revoke(db, property_id: str, at: datetime) -> None:
    with db.write() as s:
        s.execute(sa.update(Property).where(Property.id == property_id).values(revoked_at=at))


def test_a_key_hash_finds_its_property_on_a_plain_connection_and_in_a_session(db):
    _add(db, "prop_a", ["https://a.example"], T0)
    with db.query() as conn:
        found = PropertyRepository(conn).by_key_hash("hash-prop_a")
        missing = PropertyRepository(conn).by_key_hash("hash-nobody")
    with db.read() as s:
        in_session = PropertyRepository(s).by_key_hash("hash-prop_a")
    assert found == in_session == KeyedProperty("prop_a", ["https://a.example"], None)
    assert missing is None


def test_a_revoked_property_is_still_found_by_its_key_but_its_origins_no_longer_count(db):
    _add(db, "prop_a", ["https://a.example"], T0)
    _add(db, "prop_b", ["https://b.example", "https://shared.example"], T0 + timedelta(seconds=1))
    _revoke(db, "prop_a", T0 + timedelta(hours=1))
    with db.query() as conn:
        revoked = PropertyRepository(conn).by_key_hash("hash-prop_a")
    with db.read() as s:
        origins = PropertyRepository(s).active_origins()
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
    assert origins == [["https://b.example", "https://shared.example"]]


def test_every_property_is_listed_oldest_first_without_its_key_hash(db):
    _add(db, "prop_new", ["https://new.example"], T0 + timedelta(days=1))
    _add(db, "prop_old", ["https://old.example"], T0)
    _revoke(db, "prop_new", T0 + timedelta(days=2))
    with db.read() as s:
        listed = PropertyRepository(s).all()
    assert listed == [
        StoredProperty("prop_old", "name of prop_old", ["https://old.example"], T0, None),
        StoredProperty("prop_new", "name of prop_new", ["https://new.example"],
                       T0 + timedelta(days=1), T0 + timedelta(days=2)),
    ]
    assert not any(hasattr(p, "key_hash") for p in listed)


def test_no_property_no_origins(db):
    with db.read() as s:
        assert PropertyRepository(s).active_origins() == []
        assert PropertyRepository(s).all() == []
