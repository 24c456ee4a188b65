"""The audit log: one function writes every audited action; the sealer chains them;
exports stream them with a signed manifest; verification finds the first bad place.

`record` is called inside the transaction of the change it records. Subjects
appear only as pseudonyms, attributes only by name, never values.

The chain is built after commit, in batches (`seal`): an event gets its `seq`,
`prev_hash` and `hash` in the order the sealer sees committed events, under a
lock that only sealers take. Requests therefore never wait for the chain head;
exports and `verify` seal first, so what they see is complete and exact.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from ..core import audit_chain as chain
from ..core.actor import Actor
from ..security import signing
from ..store import audit as audit_store
from ..store.audit import AuditRepository
from ..store.db import Transaction
from .context import Gateway

SEAL_BATCH = 5000
EXPORT_FETCH = 2000


def record(
    session: Transaction,
    type: str,
    *,
    actor: Actor | str,
    at: datetime,
    subject: str | None = None,
    **data: Any,
) -> None:
    """Add an event to the log in the caller's transaction (committed, or not, with it)."""
    # A plain INSERT, sent at once: every audited request writes one, and going through the
    # ORM's unit of work cost more CPU than the statement itself.
    AuditRepository(session).add(_event_row(type, actor, at, subject, data))


def record_each(session: Transaction, type: str, *, actor: Actor | str, at: datetime,
                subject: str | None = None, each: list[dict[str, Any]]) -> None:
    """One event of `type` per item of `each` (its data), in one batch (a consent write's
    purposes)."""
    if each:
        AuditRepository(session).add_many([_event_row(type, actor, at, subject, data)
                                           for data in each])


def _event_row(type: str, actor: Actor | str, at: datetime, subject: str | None,
               data: Mapping[str, Any]) -> dict[str, Any]:
    return {"at": at, "type": type, "actor": actor if isinstance(actor, str) else actor.id,
            "subject": subject, "data": {k: v for k, v in data.items() if v is not None}}


# --- the chain ---------------------------------------------------------------------------


def seal(gw: Gateway, *, wait: bool = True) -> int:
    """Chain every committed, unsealed event; returns how many were sealed."""
    total = 0
    while True:
        with gw.db.write() as s:
            repo = AuditRepository(s)
            if not repo.lock_sealer(wait):
                return total
            seq, prev = repo.chain_head() or (0, chain.GENESIS)
            batch = repo.unsealed(SEAL_BATCH)
            if not batch:
                return total
            ids, seqs, prevs, hashes = [], [], [], []
            for id_, at, type_, actor, subject, data in batch:
                seq += 1
                ids.append(id_)
                seqs.append(seq)
                prevs.append(prev)
                prev = chain.event_hash(chain.event_body(seq, at, type_, actor, subject,
                                                         json.loads(data), prev))
                hashes.append(prev)
            repo.write_chain(ids, seqs, prevs, hashes)
            total += len(batch)
        if len(batch) < SEAL_BATCH:
            return total


def seal_soon(gw: Gateway) -> None:
    """After a response is sent: seal at most once per interval per process, never waiting."""
    interval = gw.settings.audit_seal_interval
    last = gw.caches.audit_sealed_at
    if time.monotonic() - last < interval:
        return
    gw.caches.audit_sealed_at = time.monotonic()
    seal(gw, wait=False)


def _row_event(row) -> dict[str, Any]:
    """The exported event of a sealed row of the store (its `data` is JSON text)."""
    seq, at, type_, actor, subject, data, prev_hash, hash_ = row
    return chain.event(seq, at, type_, actor, subject, json.loads(data), prev_hash, hash_)


# --- keys ----------------------------------------------------------------------------------


def signer(gw: Gateway) -> signing.AuditSigner:
    found = gw.caches.audit_signer
    if found is None:
        found = signing.load_signer(gw.settings.audit_signing_key, gw.settings.instance_dir,
                                    production=gw.settings.production)
        gw.caches.audit_signer = found
    return found


def register_key(gw: Gateway, session: Transaction, key: signing.AuditSigner) -> None:
    AuditRepository(session).register_key(key.key_id, key.public_pem, gw.now())


def public_key(gw: Gateway, key_id: str | None = None) -> dict | None:
    current = signer(gw)
    if key_id is None or key_id == current.key_id:
        return {"key_id": current.key_id, "algorithm": "Ed25519", "public_pem": current.public_pem,
                "public_key_pem": current.public_pem, "current": True}
    with gw.db.read() as s:
        row = AuditRepository(s).key(key_id)
    if row is None:
        return None
    return {"key_id": row.key_id, "algorithm": "Ed25519", "public_pem": row.public_pem,
            "public_key_pem": row.public_pem, "current": False}


def rotate_key(gw: Gateway, actor: Actor | str) -> dict:
    """Development: a new instance key (production: set GATEWAY_AUDIT_SIGNING_KEY)."""
    if gw.settings.audit_signing_key:
        raise RuntimeError("the audit signing key comes from GATEWAY_AUDIT_SIGNING_KEY: "
                           "set a new value there to rotate it")
    old = signer(gw)
    with gw.db.write() as s:
        register_key(gw, s, old)
    new = signing.rotate_instance_key(gw.settings.instance_dir)
    gw.caches.audit_signer = new
    with gw.db.write() as s:
        register_key(gw, s, new)
        record(s, "key.rotated", actor=actor, at=gw.now(), key="audit", previous_key_id=old.key_id,
               key_id=new.key_id)
    return {"previous_key_id": old.key_id, "key_id": new.key_id}


# --- export --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    subject: str | None = None  # the pseudonym

    def describe(self, subject_given: bool) -> dict[str, Any]:
        return {
            "since": chain.timestamp(self.since) if self.since else None,
            "until": chain.timestamp(self.until) if self.until else None,
            "type": list(self.types) or None,
            "subject": self.subject if subject_given else None,
        }


def make_filter(gw: Gateway, *, since=None, until=None, types=(), subject_id=None) -> ExportFilter:
    return ExportFilter(since=since, until=until, types=tuple(types),
                        subject=gw.pseudonymize(subject_id) if subject_id else None)


def _prepare(gw: Gateway, actor: Actor | str, flt: ExportFilter) -> tuple[signing.AuditSigner, dict]:
    """Audit the export itself, register the signing key, seal everything."""
    key = signer(gw)
    filters = flt.describe(subject_given=flt.subject is not None)
    with gw.db.write() as s:
        register_key(gw, s, key)
        record(s, "audit.exported", actor=actor, at=gw.now(),
               filters={k: v for k, v in filters.items() if v is not None})
    seal(gw, wait=True)
    return key, filters


def _events(gw: Gateway, flt: ExportFilter) -> Iterator[dict[str, Any]]:
    """Sealed events matching `flt`, in seq order, from a server-side cursor."""
    with audit_store.sealed_rows(gw.db, fetch=EXPORT_FETCH, since=flt.since, until=flt.until,
                                 types=flt.types, subject=flt.subject) as sealed:
        for row in sealed:
            yield _row_event(row)


def _manifest(gw: Gateway, key: signing.AuditSigner, filters: Mapping[str, Any], *, count: int,
              first: dict | None, last: dict | None, sha256: str) -> dict[str, Any]:
    manifest = chain.manifest_payload(
        count=count,
        first_seq=first["seq"] if first else None,
        last_seq=last["seq"] if last else None,
        sha256=sha256,
        chain_head=last["hash"] if last else None,
        key_id=key.key_id,
        exported_at=chain.timestamp(gw.now()),
        filters=filters,
    )
    manifest["signature"] = key.sign(chain.canonical(manifest))
    return manifest


def export(gw: Gateway, actor: Actor | str, flt: ExportFilter) -> Iterator[bytes]:
    """NDJSON lines of the sealed log matching `flt`, then the signed manifest line.

    The export is audited first and everything is sealed, so the export includes
    its own `audit.exported` event when the filter lets it through. Memory stays
    flat whatever the size.
    """
    key, filters = _prepare(gw, actor, flt)

    def lines() -> Iterator[bytes]:
        digest = hashlib.sha256()
        count, first, last = 0, None, None
        for event in _events(gw, flt):
            line = chain.export_line(event)
            digest.update(line)
            count += 1
            first = first or event
            last = event
            yield line
        manifest = _manifest(gw, key, filters, count=count, first=first, last=last,
                             sha256=digest.hexdigest())
        yield chain.canonical({"manifest": manifest}) + b"\n"

    return lines()


def export_csv(gw: Gateway, actor: Actor | str, flt: ExportFilter, out: IO[bytes]) -> dict:
    """Write the export as CSV to `out`; returns the signed manifest (over the CSV bytes)."""
    key, filters = _prepare(gw, actor, flt)
    digest = hashlib.sha256()
    count, first, last = 0, None, None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> None:
        data = buffer.getvalue().encode("utf-8")
        digest.update(data)
        out.write(data)
        buffer.seek(0)
        buffer.truncate()

    writer.writerow(chain.CSV_COLUMNS)
    for event in _events(gw, flt):
        writer.writerow(chain.csv_row(event))
        count += 1
        first = first or event
        last = event
        if count % 1000 == 0:
            flush()
    flush()
    return _manifest(gw, key, filters, count=count, first=first, last=last,
                     sha256=digest.hexdigest())


def verify_lines(gw: Gateway, lines, public_pem: str | None = None) -> chain.VerifyResult:
    """Verify an export; with `public_pem`, nothing but that key is used (offline)."""

    return chain.verify_export(lines, _checker(gw, public_pem))


def _checker(gw: Gateway, public_pem: str | None):
    def check(key_id: str, message: bytes, signature: str) -> bool:
        pem = public_pem
        if pem is None:
            found = public_key(gw, key_id)
            pem = found["public_pem"] if found else None
        if not pem:
            return False
        return signing.verify(pem, message, signature)

    return check


def verify_csv(gw: Gateway, data: IO[bytes], manifest_text: str,
               public_pem: str | None = None) -> chain.VerifyResult:
    """Verify a CSV export against its manifest file. Line numbers are the CSV's."""
    raw = data.read()
    try:
        manifest = json.loads(manifest_text)
    except ValueError:
        return chain.VerifyResult(False, 0, "the manifest file is not JSON", None)
    manifest = manifest.get("manifest", manifest) if isinstance(manifest, dict) else manifest
    checker = chain.ChainChecker()
    try:
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        return chain.VerifyResult(False, 0, f"not a CSV export ({exc})", None)
    for lineno, row in enumerate(rows, start=2):
        try:
            event = chain.csv_event(row)
        except (ValueError, KeyError, TypeError):
            checker.fatal.append((lineno, "not an audit event row"))
            break
        if not checker.feed(lineno, event):
            break
    return checker.finish(manifest, hashlib.sha256(raw).hexdigest(), _checker(gw, public_pem),
                          len(rows) + 2)


def verify_database(gw: Gateway) -> chain.VerifyResult:
    """Recompute the chain from the rows; names the first broken `seq`."""
    seal(gw, wait=True)
    prev_hash, expected_seq, count = chain.GENESIS, 1, 0
    with audit_store.chain_rows(gw.db, fetch=EXPORT_FETCH) as sealed:
        for row in sealed:
            if row.seq != expected_seq:
                return chain.VerifyResult(False, count, f"missing; the next row is seq {row.seq} "
                                                        "(a row was removed)", seq=expected_seq)
            if row.prev_hash != prev_hash:
                return chain.VerifyResult(False, count, "does not link to the event before it "
                                                        "(removed, inserted or reordered)", seq=row.seq)
            if chain.event_hash(_row_event(row)) != row.hash:
                return chain.VerifyResult(False, count, "changed: the row does not match its hash",
                                          seq=row.seq)
            prev_hash, expected_seq, count = row.hash, expected_seq + 1, count + 1
    return chain.VerifyResult(True, count, f"{count} events, chain intact")
