"""Bulk seeding for the load benchmark: subjects with consents and encrypted profiles.

Nothing goes through HTTP. The rows are computed exactly as the services
would write them and inserted in bulk: COPY on PostgreSQL (psycopg
`cursor.copy`), executemany on SQLite with SQLAlchemy's own bind processors,
so that dates, JSON and booleans are stored byte for byte as the ORM stores
them.

Per subject `bench-<n:07d>` (what one banner post of `personalization:
granted` and one profile patch would leave behind):

- `subjects`: the HMAC-SHA256 pseudonym (the gateway's Pseudonymizer);
- `receipts`, `consent_events`, `consent_state`: `personalization` granted by
  the property's banner, purpose version and expiry from the policy, the
  receipt body as `services.consent._record` builds it;
- `subject_keys`: a fresh data key wrapped with `envelope.wrap` under the
  master key ring (AAD bound to the pseudonym);
- `profile_values`: eight attributes, each `envelope.encrypt_value` of
  `core.attributes.encode_value` with AAD `f"{pseudonym}:{attribute}"`.

The seeded actions' own audit events (`consent.recorded`, `profile.updated`)
are not written: they would only make the gateway's sealer chain a few hundred
thousand rows in the middle of the measurement. The events of the load itself
are written and sealed by the gateway as usual.

Row generation (HMAC, key wrap, eight AES-GCM encryptions, JSON) costs some
60 µs per subject; it runs in a small process pool, the parent only inserts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.core import attributes as catalogue
from gateway.core import consent as rules
from gateway.core.policy import Policy
from gateway.security import envelope
from gateway.security.envelope import KeyRing
from gateway.security.pseudonym import Pseudonymizer
from gateway.security.tokens import new_id
from gateway.store.models import ConsentEvent, ConsentState, Receipt, Subject
from gateway.store.profile_models import ProfileValue, SubjectKey

SUBJECT_FORMAT = "bench-{:07d}"  # the wrk scripts build the same ids (bench/wrk/common.lua)
PURPOSE = "personalization"
CHUNK = 5000  # subjects per generated batch
# consent_events ids: seeded events get small explicit ids; on PostgreSQL the sequence is
# moved above them after each seeding, so that seeding more subjects after a load never
# collides with the events the load wrote (SQLite is seeded once, before any load)
EVENT_IDS_FROM = 100_000_000
TABLES = (Subject, Receipt, ConsentEvent, ConsentState, SubjectKey, ProfileValue)
COLUMNS = {m.__table__.name: [c.name for c in m.__table__.columns] for m in TABLES}

TIERS = ("bronze", "silver", "gold", "platinum")
CATEGORIES = ("outdoor", "running", "kitchen", "home", "books", "garden", "toys", "fashion")
AGE_RANGES = ("18-24", "25-34", "35-49", "50-64", "65+")


def subject_id(n: int) -> str:
    return SUBJECT_FORMAT.format(n)


def profile_of(n: int, today: datetime) -> dict[str, Any]:
    """Eight attributes of varied content: some rules of `homepage_hero` match, some do not."""
    browsing = [CATEGORIES[(n + k) % len(CATEGORIES)] for k in range(1 + n % 3)]
    return {
        "email": f"customer{n}@example.test",
        "age_range": AGE_RANGES[n % len(AGE_RANGES)],
        "browsing_categories": browsing,
        "purchase_categories": [CATEGORIES[(n * 3) % len(CATEGORIES)]],
        "orders_count": n % 7,
        "last_purchase_date": (today - timedelta(days=n % 200)).date().isoformat(),
        "total_spend_eur": round((n % 1000) * 1.37, 2),
        "loyalty_tier": TIERS[n % len(TIERS)],
    }


@dataclass(frozen=True)
class SeedSpec:
    """Everything a worker needs to compute the rows (picklable)."""

    pseudonym_key: bytes
    master_keys: tuple[bytes, ...]
    policy_dir: str  # the policy is loaded in each worker (compiled CEL programs do not pickle)
    policy_version: str
    actor: str  # the property that "posted" the consents
    now: datetime
    event_id_base: int  # consent_events.id of subject n is event_id_base + n (below EVENT_IDS_FROM)
    dialect: str = "postgresql"  # sqlite: rows come out already bound (SQLAlchemy's processors)


_POLICIES: dict[str, Policy] = {}


def _policy(spec: SeedSpec) -> Policy:
    found = _POLICIES.get(spec.policy_dir)
    if found is None:
        from pathlib import Path

        from gateway.services.policy import load_policy

        found = _POLICIES[spec.policy_dir] = load_policy(Path(spec.policy_dir))[0]
        if found.version != spec.policy_version:
            raise RuntimeError(f"the policy in {spec.policy_dir} changed during the run")
    return found


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _consent_mode(policy: Policy, at: datetime) -> dict[str, str]:
    """The receipt's Consent Mode after a grant of `personalization` (the same for every subject)."""
    purpose = policy.purpose(PURPOSE)
    choice = rules.Choice(PURPOSE, rules.GRANTED, rules.METHOD_BANNER)
    record = rules.next_record(purpose, None, choice, at=at, receipt_id="-")
    return rules.consent_mode(policy, rules.states(policy, {PURPOSE: record}, at))


def generate(spec: SeedSpec, start: int, stop: int) -> dict[str, list[tuple]]:
    """The rows of subjects [start, stop), by table, in `COLUMNS` order.

    JSON columns come as text, `json.dumps(value)`: what SQLAlchemy's JSON type
    stores on both engines.
    """
    pseudonymize = Pseudonymizer(spec.pseudonym_key)
    ring = KeyRing.from_master_keys(spec.master_keys)
    policy = _policy(spec)
    purpose = policy.purpose(PURPOSE)
    attrs = {a.id: a for a in policy.attributes}
    source = json.dumps({"url": "https://shop.example/", "banner": "main"})
    consent_mode = _consent_mode(policy, spec.now)
    plaintexts: dict[tuple[str, str], bytes] = {}  # most values repeat: encode each once
    out: dict[str, list[tuple]] = {name: [] for name in COLUMNS}
    subjects, receipts, events = out["subjects"], out["receipts"], out["consent_events"]
    states, keys, values = out["consent_state"], out["subject_keys"], out["profile_values"]
    granted, banner = rules.GRANTED, rules.METHOD_BANNER
    for n in range(start, stop):
        p = pseudonymize(subject_id(n))
        at = spec.now - timedelta(days=n % 30, seconds=n % 86400)
        written = spec.now - timedelta(days=n % 60, seconds=(n * 7) % 86400)
        receipt_id = new_id("rcpt")
        expires = at + timedelta(days=purpose.lifetime_days) if purpose.lifetime_days else None
        event_id = spec.event_id_base + n
        body = {  # services.consent._record, one banner grant of `personalization`
            "receipt_id": receipt_id,
            "recorded_at": _iso(at),
            "policy_version": spec.policy_version,
            "notice_id": None,
            "locale": "de",
            "purposes": [{"purpose": PURPOSE, "status": granted, "choice": granted,
                          "purpose_version": purpose.version, "method": banner,
                          "expires_at": _iso(expires)}],
            "gpc_applied": [],
            "consent_mode": consent_mode,
            "tcf": None,
        }
        subjects.append((p, at))
        receipts.append((receipt_id, p, at, spec.policy_version, spec.actor, None, "de", False, None,
                         source, json.dumps(body)))
        events.append((event_id, receipt_id, p, PURPOSE, granted, granted, purpose.version, banner,
                       at, expires))
        states.append((p, PURPOSE, granted, purpose.version, at, expires, receipt_id, banner,
                       event_id))
        dek = envelope.new_data_key()
        wrapped = envelope.wrap(ring, dek, subject=p)
        keys.append((p, wrapped.kek_id, wrapped.blob, written, None))
        # envelope.encrypt_value's blob (nonce || ciphertext+tag, AAD "pseudonym:attribute"),
        # with one AESGCM object per subject instead of one per value (checked in `verify`)
        aead = AESGCM(dek)
        for name, value in profile_of(n, spec.now).items():
            cache_key = (name, repr(value))
            plaintext = plaintexts.get(cache_key)
            if plaintext is None:
                plaintext = catalogue.encode_value(attrs[name], value)
                if name != "email":  # unique per subject: not worth keeping
                    plaintexts[cache_key] = plaintext
            nonce = os.urandom(envelope.NONCE_BYTES)
            values.append((p, name, nonce + aead.encrypt(nonce, plaintext, f"{p}:{name}".encode()),
                           written))
    if spec.dialect == "sqlite":
        out = _bind_sqlite(out)
    return out


_SQLITE_PROCESSORS: dict[str, list] = {}


def _bind_sqlite(batch: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Rows as SQLAlchemy binds them for pysqlite (dates as UTC text, booleans as 0/1, ...)."""
    if not _SQLITE_PROCESSORS:
        from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

        dialect = SQLiteDialect_pysqlite()
        for model in TABLES:
            table = model.__table__
            _SQLITE_PROCESSORS[table.name] = [
                None if isinstance(table.c[c].type, sa.JSON) else table.c[c].type.bind_processor(dialect)
                for c in COLUMNS[table.name]]  # JSON columns arrive serialized
    out = {}
    for name, rows in batch.items():
        procs = _SQLITE_PROCESSORS[name]
        out[name] = [tuple(v if f is None or v is None else f(v) for f, v in zip(procs, row, strict=True))
                     for row in rows]
    return out


def verify(spec: SeedSpec, n: int = 0) -> None:
    """The seeded blobs open with the gateway's own envelope functions (key ring, AADs)."""
    batch = generate(spec, n, n + 1)
    ring = KeyRing.from_master_keys(spec.master_keys)
    p, kek_id, blob, _, _ = batch["subject_keys"][0]
    dek = envelope.unwrap(ring, envelope.WrappedKey(kek_id, blob), subject=p)
    attrs = {a.id: a for a in _policy(spec).attributes}
    for subject, name, ciphertext, _ in batch["profile_values"]:
        plaintext = envelope.decrypt_value(dek, ciphertext, aad=f"{subject}:{name}".encode())
        assert catalogue.decode_value(attrs[name], plaintext) == profile_of(n, spec.now)[name]


def _generate_job(args: tuple[SeedSpec, int, int]) -> dict[str, list[tuple]]:
    return generate(*args)


def _batches(spec: SeedSpec, start: int, stop: int, workers: int) -> Iterator[dict[str, list[tuple]]]:
    """Batches in order, generated by `workers` processes a few batches ahead of the inserts."""
    jobs = [(spec, a, min(a + CHUNK, stop)) for a in range(start, stop, CHUNK)]
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            yield _generate_job(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = deque(pool.submit(_generate_job, job) for job in jobs[:2 * workers])
        for job in jobs[2 * workers:]:
            yield pending.popleft().result()
            pending.append(pool.submit(_generate_job, job))
        while pending:
            yield pending.popleft().result()


# --- inserting ---------------------------------------------------------------------------


def _binary_type(column: sa.Column) -> str:
    """The type psycopg dumps a column's values as in a binary COPY."""
    t = column.type
    if isinstance(t, sa.types.TypeDecorator):
        t = t.impl
    if isinstance(t, sa.JSON | sa.String | sa.Text):
        return "text"  # json's binary input is its text; ours arrives serialized
    if isinstance(t, sa.Boolean):
        return "bool"
    if isinstance(t, sa.BigInteger):
        return "int8"
    if isinstance(t, sa.Integer):
        return "int4"
    if isinstance(t, sa.DateTime):
        return "timestamptz"
    if isinstance(t, sa.LargeBinary):
        return "bytea"
    raise TypeError(f"no COPY type for {column}")


COPY_TYPES = {m.__table__.name: [_binary_type(c) for c in m.__table__.columns] for m in TABLES}


def _copy_postgres(raw, batch: dict[str, list[tuple]]) -> None:
    """COPY every table of a batch, in binary (psycopg dumps datetimes and bytes in C)."""
    with raw.cursor() as cur:
        for name in COLUMNS:
            with cur.copy(f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES[name])
                for row in batch[name]:
                    copy.write_row(row)


def _write_sqlite(raw, batch: dict[str, list[tuple]]) -> None:
    for name, rows in batch.items():
        names = COLUMNS[name]
        sql = f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608
        raw.executemany(sql, rows)


def seed(engine: sa.Engine, spec: SeedSpec, start: int, stop: int, *, workers: int | None = None,
         progress: bool = True) -> float:
    """Insert subjects [start, stop); returns the seconds it took (generation and inserts)."""
    if stop <= start:
        return 0.0
    workers = workers or min(2, os.cpu_count() or 1)
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    if spec.dialect != engine.dialect.name:
        spec = dataclasses.replace(spec, dialect=engine.dialect.name)
    done = start
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if postgres:
            with raw.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                # as pg_restore --disable-triggers: no per-row foreign-key checks (the rows are
                # consistent by construction); needs a superuser, else the checks just run
                cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                if cur.fetchone()[0]:
                    cur.execute("SET session_replication_role = replica")
            raw.commit()
        else:
            raw.execute("BEGIN IMMEDIATE")
        for batch in _batches(spec, start, stop, workers):
            if postgres:
                _copy_postgres(raw, batch)
                raw.commit()
            else:
                _write_sqlite(raw, batch)
            done += len(batch["subjects"])
            if progress and (done - start) % 100_000 < CHUNK:
                rate = (done - start) / (time.perf_counter() - started)
                print(f"    seeded {done:,} subjects ({rate:,.0f}/s)", flush=True)
        if postgres:
            with raw.cursor() as cur:
                cur.execute("SELECT setval(pg_get_serial_sequence('consent_events', 'id'), "
                            "greatest((SELECT max(id) FROM consent_events), %s))", (EVENT_IDS_FROM,))
            raw.commit()
        else:
            raw.execute("COMMIT")
    return time.perf_counter() - started


def settle(engine: sa.Engine) -> float:
    """What a database that has been running a while has: statistics and a clean checkpoint."""
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in (*COLUMNS, "audit_events"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {name}")
            conn.exec_driver_sql("CHECKPOINT")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def make_spec(gw, *, actor: str, pseudonym_key: bytes, master_keys: tuple[bytes, ...],
              event_id_base: int = 1) -> SeedSpec:
    return SeedSpec(pseudonym_key=pseudonym_key, master_keys=master_keys,
                    policy_dir=str(gw.settings.policy_dir), policy_version=gw.policy.version, actor=actor,
                    now=datetime.now(UTC).replace(microsecond=0), event_id_base=event_id_base)


# --- the audit log -----------------------------------------------------------------------


AUDIT_COLUMNS = ("at", "type", "actor", "subject", "data")


def _audit_rows(start: int, stop: int, t0: datetime, pseudonyms: list[str]) -> Iterator[tuple]:
    kinds = ("consent.recorded", "profile.released", "decision.made")
    for i in range(start, stop):
        kind = kinds[i % 3]
        if kind == "consent.recorded":
            data = {"purpose": "personalization", "status": "granted", "method": "banner",
                    "receipt_id": f"rcpt_{i:022d}", "policy_version": "2026-11-01+f06c4a038396"}
        elif kind == "profile.released":
            data = {"purpose": "personalization",
                    "attributes": ["browsing_categories", "loyalty_tier", "orders_count"],
                    "withheld": ["age_range", "email"], "policy_version": "2026-11-01+f06c4a038396"}
        else:
            data = {"decision_id": f"dec_{i:022d}", "placement": "homepage_hero",
                    "purpose": "personalization", "engine": "rules", "rule": "outdoor-fans",
                    "personalized": True, "attributes": ["browsing_categories"],
                    "policy_version": "2026-11-01+f06c4a038396"}
        yield (t0 + timedelta(milliseconds=i), kind, "cli_bench0000000000000000",
               pseudonyms[i % len(pseudonyms)], data)


def insert_audit_events(engine: sa.Engine, count: int, pseudonym_key: bytes) -> float:
    """`count` unsealed audit events (seq, prev_hash, hash NULL), as `audit.record` leaves them."""
    from gateway.store.models import AuditEvent

    pseudonymize = Pseudonymizer(pseudonym_key)
    pseudonyms = [pseudonymize(subject_id(n)) for n in range(10_000)]
    t0 = datetime.now(UTC) - timedelta(days=30)
    started = time.perf_counter()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                for base in range(0, count, 100_000):
                    with cur.copy(f"COPY audit_events ({', '.join(AUDIT_COLUMNS)}) FROM STDIN") as copy:
                        for row in _audit_rows(base, min(base + 100_000, count), t0, pseudonyms):
                            copy.write_row((*row[:4], json.dumps(row[4])))
                    raw.commit()
        else:
            table = AuditEvent.__table__
            procs = [table.c[c].type.bind_processor(engine.dialect) for c in AUDIT_COLUMNS]
            sql = (f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "  # noqa: S608
                   f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})")
            raw.execute("BEGIN IMMEDIATE")
            for base in range(0, count, 50_000):
                rows = [tuple(v if f is None or v is None else f(v) for f, v in zip(procs, row, strict=True))
                        for row in _audit_rows(base, min(base + 50_000, count), t0, pseudonyms)]
                raw.executemany(sql, rows)
            raw.execute("COMMIT")
    return time.perf_counter() - started
