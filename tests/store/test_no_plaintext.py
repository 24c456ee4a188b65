"""No plaintext of a subject anywhere in the database, after writing and after erasure (both engines).

SQLite: the raw bytes of the database file and its WAL (before and after a checkpoint), searched
for each marker as text and, for the numeric markers, also as SQLite stores numbers (big-endian
integers of 1 to 8 bytes, big-endian IEEE doubles).
PostgreSQL: every text, character, JSON and bytea column of every table, and every numeric
column (as text). Control values meant to be stored in the clear (a consent's `source`, and two
numbers in a scratch table) prove that each scan can see text and numbers.

After erasure the scans look again for the markers, and for what was there before it: the
subject's ciphertexts and wrapped data key, which the scan found before the erasure (so it
would find them after, were they left). SQLite is read after a checkpoint for that (until a
checkpoint the main file still holds the pages the WAL has replaced); PostgreSQL is read
through SQL (dead tuples wait for VACUUM, beyond what a query sees).
"""

from __future__ import annotations

import contextlib
import random
import struct
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.logging import configure_logging

ORIGIN = "https://shop.example"
SCOPES = ["profile:write", "profile:read", "subject:export", "subject:erase"]
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")
NUMBER_TYPES = ("smallint", "integer", "bigint", "numeric", "real", "double precision")


def sqlite_bytes(gw, *, checkpointed_only: bool = False) -> list[tuple[str, bytes]]:
    """The database file and its companions, read raw: before and after a WAL checkpoint."""
    path = Path(gw.db.engine.url.database)
    companions = ("", "-wal", "-journal")

    def read() -> list[tuple[str, bytes]]:
        files = [Path(f"{path}{suffix}") for suffix in companions]
        return [(f.name, f.read_bytes()) for f in files if f.exists()]

    before = read()
    raw = gw.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    assert busy == 0, "the checkpoint could not complete"
    return read() if checkpointed_only else before + read()


def postgres_values(gw) -> list[tuple[str, bytes]]:
    """Every value of every text-like and bytea column, as bytes (JSON as its text)."""
    found = []
    with gw.db.engine.connect() as conn:
        columns = conn.execute(sa.text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")).all()
        for table, column, data_type in columns:
            if data_type == "bytea":
                values = conn.execute(sa.text(f'SELECT "{column}" FROM "{table}"')).scalars()
                found += [(f"{table}.{column}", bytes(v)) for v in values if v is not None]
            elif data_type in TEXT_TYPES or data_type in NUMBER_TYPES:
                values = conn.execute(sa.text(f'SELECT "{column}"::text FROM "{table}"')).scalars()
                found += [(f"{table}.{column}", v.encode()) for v in values if v is not None]
    return found


def raw_database(gw, *, checkpointed_only: bool = False) -> list[tuple[str, bytes]]:
    if gw.db.dialect == "sqlite":
        return sqlite_bytes(gw, checkpointed_only=checkpointed_only)
    return postgres_values(gw)


def encodings(needle, dialect: str) -> list[bytes]:
    """How `needle` may appear: as text, and on SQLite a number also in its record encoding."""
    if isinstance(needle, bytes):
        return [needle]
    out = [str(needle).encode("utf-8")]
    if dialect == "sqlite" and isinstance(needle, bool) is False and isinstance(needle, int):
        # a record stores an integer big-endian in the fewest of 1, 2, 3, 4, 6 or 8 bytes
        out += [needle.to_bytes(n, "big", signed=True) for n in (6, 8)
                if -(1 << (8 * n - 1)) <= needle < 1 << (8 * n - 1)]
        out.append(struct.pack(">d", float(needle)))
    elif dialect == "sqlite" and isinstance(needle, float):
        out.append(struct.pack(">d", needle))
    return out


def where(needle, blobs: list[tuple[str, bytes]], dialect: str = "postgresql") -> list[str]:
    forms = encodings(needle, dialect)
    return sorted({name for name, blob in blobs for data in forms if data in blob})


@pytest.fixture
def numeric_control(gw):
    """Two numbers stored in the clear in a scratch table: the scans must find them."""
    number = random.randrange(1 << 40, 1 << 47)
    real = random.randrange(10**6, 10**7) + 0.123456789
    with gw.db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE scan_control (n BIGINT, x DOUBLE PRECISION)"))
        conn.execute(sa.text("INSERT INTO scan_control VALUES (:n, :x)"), {"n": number, "x": real})
    yield number, real
    with gw.db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE scan_control"))


@pytest.fixture
def service(gw) -> dict:
    """Bearer headers of a service client with the profile and subject scopes."""
    from gateway.services.auth import clients, tokens

    created = clients.create_client(gw, "backend", SCOPES, ["personalization", "ads", "service"])
    token = tokens.issue_token(gw, grant_type="client_credentials", client_id=created["client_id"],
                                client_secret=created["client_secret"], scope=None,
                                remote_addr="127.0.0.1")
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def logs(app, capsys):
    """capsys; afterwards, logging goes back to a stream that stays open."""
    yield capsys
    with contextlib.redirect_stderr(sys.__stderr__):  # not the capture stream that closes now
        configure_logging("WARNING", json_lines=True)


def test_no_plaintext_value_or_subject_id_in_the_database(client, gw, banner, service, logs,
                                                          numeric_control, receiver):
    configure_logging("DEBUG", json_lines=True)  # as talkative as the gateway gets, into capsys
    from gateway.services import webhooks
    from gateway.services.webhooks_worker import Worker

    # a subscription: every change below also waits in the outbox, with the raw subject id
    webhooks.create(gw, "cli", {"url": receiver.url, "events": ["consent.changed", "subject.erased"]})
    mark = uuid.uuid4().hex[:12]
    subject = f"marker-subject-{mark}"
    control = f"control-in-the-clear-{mark}"
    profile = {
        "loyalty_tier": f"marker-value-{mark}",
        "browsing_categories": [f"marker-category-{mark}", "outdoor"],
        "email": f"marker-{mark}@example.test",
        "city": f"Markerstadt-{mark}",
        "age_range": f"marker-age-{mark}",
        "orders_count": random.randrange(1 << 40, 1 << 47),  # six bytes in a SQLite record
        "total_spend_eur": random.randrange(10**5, 10**6) + 0.0987654321,
        "last_purchase_date": "1987-06-05",
    }
    markers = [subject, *(v for k, v in profile.items() if k != "browsing_categories"),
               profile["browsing_categories"][0]]
    assert isinstance(profile["orders_count"], int) and isinstance(profile["total_spend_eur"], float)
    dialect = gw.db.dialect

    notice = client.post("/v1/notices/served", headers=banner, json={
        "subject_id": subject, "purposes": ["personalization", "ads"], "locale": "de",
        "source": {"banner": control}})
    assert notice.status_code == 201
    r = client.post("/v1/consents", headers={**banner, "Idempotency-Key": f"idem-{mark}"}, json={
        "subject_id": subject, "purposes": {"personalization": "granted", "ads": "granted",
                                            "analytics": "denied"},
        "notice_id": notice.json["notice_id"], "source": {"banner": control}})
    assert r.status_code == 201
    assert client.get(f"/v1/subjects/{subject}/consents?history=true", headers=banner).status_code == 200
    r = client.patch(f"/v1/subjects/{subject}/profile", headers=service, json={"attributes": profile})
    assert r.status_code == 200, r.json
    bad = client.patch(f"/v1/subjects/{subject}/profile", headers=service, json={
        "attributes": {"loyalty_tier": [f"marker-refused-{mark}"], "orders_count": f"marker-n-{mark}"}})
    assert bad.status_code == 422
    assert "marker-refused" not in bad.get_data(as_text=True)
    assert "marker-n-" not in bad.get_data(as_text=True)
    views = {p: client.get(f"/v1/subjects/{subject}/profile?purpose={p}", headers=service).json
             for p in ("personalization", "ads", "service")}
    assert views["personalization"]["attributes"]["loyalty_tier"] == profile["loyalty_tier"]
    assert views["service"]["attributes"]["email"] == profile["email"]
    export = client.get(f"/v1/subjects/{subject}/export", headers=service)
    assert export.status_code == 200
    assert {a["attribute"]: a["value"] for a in export.json["profile"]} == profile

    written = raw_database(gw)
    assert where(control, written), "the scan does not see what is stored in the clear"
    for number in numeric_control:
        assert where(number, written, dialect), f"the scan does not see the number {number!r}"
    assert where(gw.pseudonymize(subject), written)  # and the subject's rows are there
    for marker in [*markers, f"marker-refused-{mark}", f"marker-n-{mark}"]:
        assert where(marker, written, dialect) == [], f"{marker!r} is stored in the clear"

    # the outbox holds the raw subject id only encrypted, and forgets it once delivered
    with gw.db.engine.connect() as conn:
        waiting = [bytes(v) for v in conn.execute(sa.text(
            "SELECT payload FROM webhook_deliveries WHERE payload IS NOT NULL")).scalars()]
    assert waiting, "the consent write left nothing in the outbox"
    assert all(where(blob, raw_database(gw, checkpointed_only=True)) for blob in waiting)
    worker = Worker(gw)
    try:
        worker.drain()
    finally:
        worker.close()
    assert receiver.received and all(r.json["data"]["subject_id"] == subject for r in receiver.received)
    delivered = raw_database(gw, checkpointed_only=True)
    for blob in waiting:
        assert where(blob, delivered) == [], "a delivered body remains in the outbox"
    assert where(subject, delivered, dialect) == []

    # what erasure must remove: the subject's ciphertexts and wrapped data key, seen by the scan now
    with gw.db.engine.connect() as conn:
        pseudonym = gw.pseudonymize(subject)
        sealed = [bytes(v) for v in conn.execute(sa.text(
            "SELECT ciphertext FROM profile_values WHERE subject = :s"), {"s": pseudonym}).scalars()]
        sealed += [bytes(v) for v in conn.execute(sa.text(
            "SELECT wrapped FROM subject_keys WHERE subject = :s"), {"s": pseudonym}).scalars()]
    assert len(sealed) == len(profile) + 1
    before_erasure = raw_database(gw, checkpointed_only=True)
    for blob in sealed:
        assert where(blob, before_erasure), "the scan does not see the sealed values"

    r = client.delete(f"/v1/subjects/{subject}", headers=service)
    assert r.status_code == 200
    assert client.get(f"/v1/subjects/{subject}/export", headers=service).json["profile"] == []
    erased = raw_database(gw)
    assert where(control, erased)  # consent proof stays
    for number in numeric_control:
        assert where(number, erased, dialect)
    for marker in markers:
        assert where(marker, erased, dialect) == [], f"{marker!r} remains after erasure"
    shredded = raw_database(gw, checkpointed_only=True)
    for blob in sealed:
        assert where(blob, shredded) == [], "a ciphertext or the wrapped key remains after erasure"

    captured = logs.readouterr()
    for marker in [*map(str, markers), f"marker-refused-{mark}", f"marker-n-{mark}"]:
        assert marker not in captured.err and marker not in captured.out, f"{marker!r} was logged"
    assert '"event": "request"' in captured.err  # the requests were logged (without the markers)
