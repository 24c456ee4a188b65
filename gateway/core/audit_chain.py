"""The audit log's hash chain and export format, as pure functions.

See the README ("The audit log") and openapi.yaml (`GET /v1/audit/events`).

An event's `hash` is the hex SHA-256 of the canonical JSON of the event without
its `hash` field (so it covers `prev_hash`); the first event's `prev_hash` is
64 zeros. An export is one canonical JSON object per line, then a manifest
line whose `sha256` covers every preceding byte and whose `signature` is over
the canonical JSON of the manifest without `signature`. With these
definitions an auditor needs nothing but the public key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# json.dumps builds a new encoder on every call when given options; one shared encoder
# writes exactly the same bytes without that cost (it keeps no state between calls).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(obj: Any) -> bytes:
    return _CANONICAL(obj).encode("utf-8")


def timestamp(value: datetime) -> str:
    """RFC 3339 UTC with microseconds: one spelling per instant, so hashes are stable.

    The spelling is `value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)`; a naive
    value is taken as local time, as `astimezone` does. It is written out field by
    field because strftime was a large share of the time an export takes.
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    year = value.year
    if year < 1000:
        # How strftime writes %Y below 1000 (padded or not) differs between Python
        # versions and C libraries; hashes already made here used this interpreter's.
        return value.strftime(TIMESTAMP_FORMAT)
    return (f"{year}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond:06d}Z")


def event_body(
    seq: int, at: datetime, type: str, actor: str, subject: str | None, data: Mapping[str, Any],
    prev_hash: str,
) -> dict[str, Any]:
    """The exported event without `hash`; fields of `data` sit at the top level."""
    return {**data, "seq": seq, "at": timestamp(at), "type": type, "actor": actor,
            "subject": subject, "prev_hash": prev_hash}


def event(
    seq: int, at: datetime, type: str, actor: str, subject: str | None, data: Mapping[str, Any],
    prev_hash: str, hash: str,
) -> dict[str, Any]:
    """The exported event with its stored `hash`, built as one dict.

    Equal to `{**event_body(...), "hash": hash}`, key order included.
    """
    return {**data, "seq": seq, "at": timestamp(at), "type": type, "actor": actor,
            "subject": subject, "prev_hash": prev_hash, "hash": hash}


def event_hash(body: Mapping[str, Any]) -> str:
    if "hash" in body:
        body = {k: v for k, v in body.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def export_line(event: Mapping[str, Any]) -> bytes:
    return canonical(event) + b"\n"


def manifest_payload(
    *, count: int, first_seq: int | None, last_seq: int | None, sha256: str,
    chain_head: str | None, key_id: str, exported_at: str, filters: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "count": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "sha256": sha256,
        "chain_head": chain_head,
        "key_id": key_id,
        "exported_at": exported_at,
        "filters": dict(filters),
    }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    message: str
    line: int | None = None  # 1-based line number of the first bad line of a file
    seq: int | None = None  # the first bad seq of the database

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else (f"seq {self.seq}: " if self.seq else "")
        return f"{'OK' if self.ok else 'FAILED'}: {where}{self.message}"


class ChainChecker:
    """Feeds on exported events one at a time; `finish` checks the manifest.

    Checks each event's hash, the chain between consecutive seqs, that seqs
    increase, and, in an unfiltered export, that none is missing; then the
    manifest's count, first/last seq, chain head, SHA-256 of the data before
    it, and its signature. Reports the first bad line.
    """

    def __init__(self) -> None:
        self.count = 0
        self.prev: dict[str, Any] | None = None
        self.first_seq: int | None = None
        self.fatal: list[tuple[int, str]] = []
        self.gaps: list[tuple[int, str]] = []

    def feed(self, lineno: int, obj: Any) -> bool:
        """Check one event; False when reading should stop (not an event at all)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int):
            self.fatal.append((lineno, "not an audit event"))
            return False
        seq, prev = obj["seq"], self.prev
        if obj.get("hash") != event_hash(obj):
            self.fatal.append((lineno, f"event seq {seq} does not match its hash (changed)"))
        if prev is None:
            self.first_seq = seq
            if seq == 1 and obj.get("prev_hash") != GENESIS:
                self.fatal.append((lineno, "the first event does not start from the genesis hash"))
        elif seq <= prev["seq"]:
            self.fatal.append((lineno, f"seq {seq} comes after seq {prev['seq']} (reordered or inserted)"))
        elif seq == prev["seq"] + 1:
            if obj.get("prev_hash") != prev.get("hash"):
                self.fatal.append((lineno, f"event seq {seq} does not link to seq {prev['seq']} "
                                           "(removed, inserted or reordered)"))
        else:
            self.gaps.append((lineno, f"seq {seq} follows seq {prev['seq']}: events between them "
                                      "are missing (removed or reordered)"))
        self.prev = obj
        self.count += 1
        return True

    def finish(
        self, manifest: Any, digest: str, verify_signature: Callable[[str, bytes, str], bool],
        manifest_line: int,
    ) -> VerifyResult:
        count, prev, first_seq = self.count, self.prev, self.first_seq
        if manifest is None and not self.fatal:
            return VerifyResult(False, count, "no manifest at the end (truncated)", manifest_line)
        filtered = isinstance(manifest, dict) and any(
            v not in (None, [], {}) for v in (manifest.get("filters") or {}).values()
        )
        problems = sorted(self.fatal + ([] if filtered else self.gaps))
        if problems:
            line, message = problems[0]
            return VerifyResult(False, count, message, line)
        if not isinstance(manifest, dict):
            return VerifyResult(False, count, "the manifest is not an object", manifest_line)
        if not filtered and first_seq not in (None, 1):
            return VerifyResult(False, count, f"an unfiltered export starts at seq {first_seq}, not 1 "
                                              "(events removed)", 1)
        checks = [
            (manifest.get("count") == count, f"manifest count {manifest.get('count')} but {count} events"),
            (manifest.get("first_seq") == first_seq, "manifest first_seq does not match"),
            (manifest.get("last_seq") == (prev["seq"] if prev else None),
             "manifest last_seq does not match"),
            (manifest.get("chain_head") == (prev["hash"] if prev else None),
             "manifest chain_head does not match"),
            (manifest.get("sha256") == digest, "the data does not match the manifest sha256"),
        ]
        for ok, message in checks:
            if not ok:
                return VerifyResult(False, count, message, manifest_line)
        signature = manifest.get("signature")
        unsigned = {k: v for k, v in manifest.items() if k != "signature"}
        if not isinstance(signature, str) or not verify_signature(
            str(manifest.get("key_id")), canonical(unsigned), signature
        ):
            return VerifyResult(False, count, "the manifest signature does not verify", manifest_line)
        last = prev["seq"] if prev else None
        return VerifyResult(True, count, f"{count} events, seq {first_seq}..{last}, chain and signature "
                                         f"hold (key {manifest.get('key_id')})")


def verify_export(
    lines: Iterable[bytes],
    verify_signature: Callable[[str, bytes, str], bool],
) -> VerifyResult:
    """Check an NDJSON export (events, then the manifest line) and name the first bad line."""
    digest = hashlib.sha256()
    checker = ChainChecker()
    manifest = None
    manifest_line = 0
    lineno = 0
    for lineno, raw in enumerate(lines, start=1):
        if manifest is not None:
            checker.fatal.append((lineno, "data after the manifest line"))
            break
        try:
            obj = json.loads(raw)
        except ValueError:
            checker.fatal.append((lineno, "not a JSON line"))
            break
        if isinstance(obj, dict) and set(obj) == {"manifest"}:
            manifest, manifest_line = obj["manifest"], lineno
            continue
        digest.update(raw if raw.endswith(b"\n") else raw + b"\n")
        if not checker.feed(lineno, obj):
            break
    return checker.finish(manifest, digest.hexdigest(), verify_signature, manifest_line or lineno + 1)


CSV_COLUMNS = ("seq", "at", "type", "actor", "subject", "prev_hash", "hash", "data")
CORE_FIELDS = ("seq", "at", "type", "actor", "subject", "prev_hash", "hash")


def csv_row(event: Mapping[str, Any]) -> list[str]:
    """One CSV row: the core fields as columns, the rest as canonical JSON in `data`."""
    extra = {k: v for k, v in event.items() if k not in CORE_FIELDS}
    return [str(event["seq"]), event["at"], event["type"], event["actor"], event["subject"] or "",
            event["prev_hash"], event["hash"], canonical(extra).decode("utf-8")]


def csv_event(row: Mapping[str, str]) -> dict[str, Any]:
    """The exported event back from a CSV row (raises ValueError if it cannot be read)."""
    event = json.loads(row["data"] or "{}")
    if not isinstance(event, dict):
        raise ValueError("the data column is not a JSON object")
    event.update(seq=int(row["seq"]), at=row["at"], type=row["type"], actor=row["actor"],
                 subject=row["subject"] or None, prev_hash=row["prev_hash"], hash=row["hash"])
    return event
