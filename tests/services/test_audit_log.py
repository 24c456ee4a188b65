"""The audit log on both databases: sealing, tampering, signed exports, filters, keys, Art. 30 report.

Events come from real actions (consents posted by a banner, properties and
clients created through the services). Tampering is done with raw SQL on the
rows or with byte edits on exported files, and every check must name the first
bad place: the `seq` in the database, the line in a file.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from markupsafe import escape

from gateway.core import audit_chain as chain
from gateway.services import audit, properties
from gateway.services.auth import clients, tokens
from gateway.services.context import utcnow
from gateway.store.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_audit_export.py"
RAW_SUBJECTS = ("raw-subject-3f9a71", "raw-subject-c0ffee")
T0 = datetime(2024, 3, 1, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------


def post_consent(client, banner, subject, **purposes):
    r = client.post("/v1/consents", headers=banner,
                    json={"subject_id": subject, "purposes": purposes or {"ads": "granted"}})
    assert r.status_code == 201, r.json
    return r.json


def activity(gw, client, banner) -> None:
    """Some audited actions of each kind: consents, a property, a client."""
    post_consent(client, banner, RAW_SUBJECTS[0], personalization="granted", ads="denied")
    post_consent(client, banner, RAW_SUBJECTS[1], ads="granted")
    properties.create_property(gw, "Second shop", ["https://other.example"])
    post_consent(client, banner, RAW_SUBJECTS[0], ads="granted")
    clients.create_client(gw, "Reporting", ["consent:read"], ["analytics"])


def sealed_rows(gw) -> list:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT id, seq, at, type, actor, subject, data, prev_hash, hash FROM audit_events "
            "ORDER BY seq")).all()


def unsealed_count(gw) -> int:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")).scalar_one()


def execute(gw, sql: str, **params) -> int:
    with gw.db.engine.begin() as conn:
        return conn.execute(sa.text(sql), params).rowcount


def json_param(gw) -> str:
    """How a bound JSON text is written into a JSON column on this engine."""
    return "CAST(:data AS JSON)" if gw.db.dialect == "postgresql" else ":data"


def raw_row(gw, seq: int) -> dict:
    with gw.db.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT type, actor, subject, at, CAST(data AS TEXT) AS data FROM audit_events "
            "WHERE seq = :seq"), {"seq": seq}).one()
    return dict(row._mapping)


def write_row(gw, seq: int, values: dict) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values if k != "data")
    execute(gw, f"UPDATE audit_events SET {sets}, data = {json_param(gw)} WHERE seq = :seq",
            seq=seq, **values)


def seal_all(gw) -> list:
    audit.seal(gw, wait=True)
    rows = sealed_rows(gw)
    assert all(r.seq is not None for r in rows)
    return rows


def cli(runner, *args):
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def export_file(runner, path: Path, *extra: str) -> list[bytes]:
    code, output = cli(runner, "audit", "export", "--output", str(path), *extra)
    assert code == 0, output
    return path.read_bytes().splitlines(keepends=True)


def verify_file(runner, path: Path, *extra: str) -> tuple[int, str]:
    return cli(runner, "audit", "verify", str(path), *extra)


def pem_of(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def bearer(gw):
    """bearer(*scopes, purposes=()) -> Authorization headers of a fresh client's token."""

    def make(*scopes, purposes=()):
        made = clients.create_client(gw, "dpo", list(scopes), list(purposes))
        token = tokens.issue_token(
            gw, grant_type="client_credentials", client_id=made["client_id"],
            client_secret=made["client_secret"], scope=None,
            remote_addr="127.0.0.1")["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def dpo(bearer):
    return bearer("audit:read")


def http_export(client, headers, query: str = "") -> tuple[list[dict], dict, bytes]:
    r = client.get(f"/v1/audit/events{query}", headers=headers)
    assert r.status_code == 200, r.data
    assert r.mimetype == "application/x-ndjson"
    lines = r.data.splitlines()
    *events, last = [json.loads(line) for line in lines]
    return events, last["manifest"], r.data


# --- sealing -------------------------------------------------------------------------------


def test_real_actions_are_sealed_into_one_contiguous_chain(gw, client, banner):
    activity(gw, client, banner)
    audit.seal(gw, wait=True)
    rows = sealed_rows(gw)
    types = {r.type for r in rows}
    assert {"property.created", "consent.recorded", "client.created"} <= types
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == "0" * 64 == chain.GENESIS
    with gw.db.read() as s:
        events = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    prev = chain.GENESIS
    for event in events:
        assert event.prev_hash == prev
        body = chain.event_body(event.seq, event.at, event.type, event.actor, event.subject,
                                event.data, event.prev_hash)
        assert event.hash == chain.event_hash(body) and len(event.hash) == 64
        prev = event.hash

    # sealing again changes nothing
    assert audit.seal(gw, wait=True) == 0
    assert sealed_rows(gw) == rows

    # events committed after a seal take the next seqs, linked to the head
    clients.create_client(gw, "Later", ["consent:read"])
    properties.create_property(gw, "Later shop", ["https://later.example"])
    assert unsealed_count(gw) == 2
    assert audit.seal(gw, wait=True) == 2
    after = sealed_rows(gw)
    assert after[: len(rows)] == rows
    assert [r.seq for r in after[len(rows):]] == [len(rows) + 1, len(rows) + 2]
    assert after[len(rows)].prev_hash == rows[-1].hash
    assert after[-1].prev_hash == after[-2].hash

    # an export seals what is pending first, and includes it
    properties.create_property(gw, "Pending shop", ["https://pending.example"])
    assert unsealed_count(gw) == 1
    lines = list(audit.export(gw, "test", audit.make_filter(gw)))
    assert unsealed_count(gw) == 0
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events[-2:]] == ["property.created", "audit.exported"]
    assert audit.verify_lines(gw, lines).ok
    assert audit.verify_database(gw).ok


# Hashes and lines computed with the code before the export and the sealer were made
# faster (the same events as in tests/core/test_audit_chain.py): what was sealed and
# exported then must come out of the database byte for byte the same.
GOLDEN_DATA = {"note": "Grüße ✓ \"quoted\" \\ back \U0001d11e",
               "nested": {"z": [1, 2.5, None, True], "a": {}}, "big": 2**70, "ratio": 0.1,
               "hash": "from-data", "seq": 999}
GOLDEN_HASHES = ["a0910d6e4800a864f35ad030d7b7ab0d6f3a2cf4537b640242024921822ac45f",
                 "1a700fdd69813dd32b503e2ed7732c0c4cdb7328a10cb7b1e0c692daa54c8a2b"]
GOLDEN_SECOND_LINE = (
    '{"actor":"cli_x","at":"2026-03-28T20:00:05.123456Z","big":1180591620717411303424,'
    '"hash":"1a700fdd69813dd32b503e2ed7732c0c4cdb7328a10cb7b1e0c692daa54c8a2b",'
    '"nested":{"a":{},"z":[1,2.5,null,true]},"note":"Grüße ✓ \\"quoted\\" \\\\ back \U0001d11e",'
    '"prev_hash":"a0910d6e4800a864f35ad030d7b7ab0d6f3a2cf4537b640242024921822ac45f",'
    '"ratio":0.1,"seq":2,"subject":null,"type":"profile.updated"}\n').encode()


def test_sealed_and_exported_bytes_are_unchanged(gw, runner, tmp_path):
    execute(gw, "DELETE FROM audit_events")
    with gw.db.write() as s:
        audit.record(s, "consent.recorded", actor="prop_1", at=datetime(2026, 11, 1, tzinfo=UTC),
                     subject="ab" * 32, purpose="ads", status="granted", receipt_id="rcpt_1")
    with gw.db.write() as s:
        at = datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        audit.record(s, "profile.updated", actor="cli_x", at=at, **GOLDEN_DATA)
    assert audit.seal(gw, wait=True) == 2
    rows = sealed_rows(gw)
    assert [r.hash for r in rows] == GOLDEN_HASHES
    assert [r.prev_hash for r in rows] == [chain.GENESIS, GOLDEN_HASHES[0]]
    assert audit.verify_database(gw).ok

    lines = list(audit.export(gw, "test", audit.make_filter(
        gw, types=["consent.recorded", "profile.updated"])))
    assert len(lines) == 3
    assert lines[1] == GOLDEN_SECOND_LINE
    assert [json.loads(line)["hash"] for line in lines[:2]] == GOLDEN_HASHES
    assert audit.verify_lines(gw, lines).ok

    lines = export_file(runner, tmp_path / "golden.csv", "--format", "csv",
                        "--type", "profile.updated")
    assert lines[1].decode().rstrip("\n").endswith(
        ',1a700fdd69813dd32b503e2ed7732c0c4cdb7328a10cb7b1e0c692daa54c8a2b,'
        '"{""big"":1180591620717411303424,""nested"":{""a"":{},""z"":[1,2.5,null,true]},'
        '""note"":""Grüße ✓ \\""quoted\\"" \\\\ back \U0001d11e"",""ratio"":0.1}"')

    # a changed payload is still found in the row where it was made
    execute(gw, f"UPDATE audit_events SET data = {json_param(gw)} WHERE seq = 2",
            data=json.dumps({**GOLDEN_DATA, "ratio": 0.2}))
    result = audit.verify_database(gw)
    assert (result.ok, result.seq) == (False, 2), result


def test_sealing_in_batches_links_across_batches(gw, monkeypatch):
    """Several batches in one `seal`; every row is what the pure functions compute."""
    monkeypatch.setattr(audit, "SEAL_BATCH", 4)
    for i in range(10):
        with gw.db.write() as s:
            audit.record(s, "consent.recorded", actor="prop_1", at=T0 + timedelta(microseconds=i),
                         subject=f"{i:064x}", purpose="ads", n=i, hash="data-field")
    pending = unsealed_count(gw)
    assert pending >= 10
    assert audit.seal(gw, wait=True) == pending
    assert unsealed_count(gw) == 0
    with gw.db.read() as s:
        events = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert [e.id for e in events] == sorted(e.id for e in events)
        prev = chain.GENESIS
        for event in events:
            body = chain.event_body(event.seq, event.at, event.type, event.actor, event.subject,
                                    event.data, prev)
            assert (event.prev_hash, event.hash) == (prev, chain.event_hash(body))
            prev = event.hash
    result = audit.verify_database(gw)
    assert result.ok and result.count == len(events), result


# --- tampering in the database -------------------------------------------------------------


@pytest.fixture
def chained(gw, client, banner):
    """A sealed log of a dozen or so events; returns the rows."""
    activity(gw, client, banner)
    rows = seal_all(gw)
    assert len(rows) >= 8
    result = audit.verify_database(gw)
    assert result.ok and result.count == len(rows), result
    return rows


def test_database_payload_change_names_that_seq(gw, chained):
    assert execute(gw, f"UPDATE audit_events SET data = {json_param(gw)} WHERE seq = 4",
                   data=json.dumps({"purpose": "ads", "forged": True})) == 1
    result = audit.verify_database(gw)
    assert not result.ok and result.seq == 4 and "changed" in result.message, result
    assert "seq 4" in str(result)


def test_database_type_or_actor_change_names_that_seq(gw, chained):
    execute(gw, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 6")
    result = audit.verify_database(gw)
    assert (result.ok, result.seq) == (False, 6), result


def test_database_deleted_row_names_the_missing_seq(gw, chained):
    assert execute(gw, "DELETE FROM audit_events WHERE seq = 5") == 1
    result = audit.verify_database(gw)
    assert not result.ok and result.seq == 5 and "missing" in result.message, result


def test_database_deleted_first_row_names_seq_1(gw, chained):
    execute(gw, "DELETE FROM audit_events WHERE seq = 1")
    result = audit.verify_database(gw)
    assert (result.ok, result.seq) == (False, 1), result


def test_database_swapped_rows_name_the_first(gw, chained):
    k = 3
    first, second = raw_row(gw, k), raw_row(gw, k + 1)
    assert first != second
    write_row(gw, k, second)
    write_row(gw, k + 1, first)
    result = audit.verify_database(gw)
    assert (result.ok, result.seq) == (False, k), result


def test_database_relinked_prev_hash_names_that_seq(gw, chained):
    execute(gw, "UPDATE audit_events SET prev_hash = :h WHERE seq = 7", h="f" * 64)
    result = audit.verify_database(gw)
    assert not result.ok and result.seq == 7 and "link" in result.message, result


def test_database_recomputed_hash_still_breaks_the_next_link(gw, chained):
    """A forger who rewrites a row and its hash breaks the link of the row after it."""
    row = raw_row(gw, 5)
    with gw.db.read() as s:
        event = s.scalars(sa.select(AuditEvent).where(AuditEvent.seq == 5)).one()
        body = chain.event_body(5, event.at, event.type, "forger", event.subject, event.data,
                                event.prev_hash)
    execute(gw, "UPDATE audit_events SET actor = 'forger', hash = :h WHERE seq = 5",
            h=chain.event_hash(body))
    assert row["actor"] != "forger"
    result = audit.verify_database(gw)
    assert (result.ok, result.seq) == (False, 6), result


def test_cli_verify_database_exit_codes(gw, runner, chained):
    code, output = cli(runner, "audit", "verify", "--database")
    assert code == 0 and "chain intact" in output, output
    execute(gw, f"UPDATE audit_events SET data = {json_param(gw)} WHERE seq = 2", data="{}")
    code, output = cli(runner, "audit", "verify", "--database")
    assert code == 1 and "seq 2" in output and "Traceback" not in output, output
    code, output = cli(runner, "audit", "verify")
    assert code == 2 and "--database" in output, output


# --- tampering with exported files (CLI) ---------------------------------------------------


@pytest.fixture
def exported(gw, client, banner, runner, tmp_path):
    """(path, lines) of an untouched JSONL export made with the CLI."""
    activity(gw, client, banner)
    path = tmp_path / "audit.ndjson"
    lines = export_file(runner, path)
    assert len(lines) >= 10
    return path, lines


def tamper(path: Path, lines: list[bytes]) -> Path:
    out = path.with_name("tampered.ndjson")
    out.write_bytes(b"".join(lines))
    return out


def changed(line: bytes, **fields) -> bytes:
    return chain.canonical({**json.loads(line), **fields}) + b"\n"


def test_untouched_export_verifies(runner, exported):
    path, lines = exported
    code, output = verify_file(runner, path)
    assert code == 0, output
    assert output.startswith("OK:") and f"{len(lines) - 1} events" in output


MANIFEST_LINE = "the manifest line"
AFTER_MANIFEST = "the line after the manifest"


@pytest.mark.parametrize("edit, bad_line", [
    ("changed", 3),
    ("removed", 3),
    ("inserted", 4),
    ("reordered", 3),
    ("first-removed", 1),
    ("truncated", MANIFEST_LINE),
    ("manifest-count", MANIFEST_LINE),
    ("manifest-signed-field", MANIFEST_LINE),
    ("appended", AFTER_MANIFEST),
])
def test_tampered_export_names_the_first_bad_line(runner, exported, edit, bad_line):
    path, lines = exported
    lines = list(lines)
    manifest_line = len(lines)
    if edit == "changed":
        lines[2] = changed(lines[2], actor="someone-else")
    elif edit == "removed":
        del lines[2]
    elif edit == "inserted":  # a copy of line 3 after it
        lines.insert(3, lines[2])
    elif edit == "reordered":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "first-removed":
        del lines[0]
    elif edit == "truncated":  # the manifest is gone: line N is where it should be
        del lines[-1]
    elif edit.startswith("manifest"):
        manifest = json.loads(lines[-1])["manifest"]
        if edit == "manifest-count":
            manifest["count"] += 1
        else:
            manifest["exported_at"] = "2000-01-01T00:00:00.000000Z"
        lines[-1] = chain.canonical({"manifest": manifest}) + b"\n"
    elif edit == "appended":
        lines.append(lines[1])
    line = {MANIFEST_LINE: manifest_line, AFTER_MANIFEST: manifest_line + 1}.get(bad_line, bad_line)
    code, output = verify_file(runner, tamper(path, lines))
    assert code == 1, output
    assert output.startswith("FAILED:"), output
    assert f"line {line}:" in output, output
    assert "Traceback" not in output
    if edit == "truncated":
        assert "truncated" in output
    if edit == "manifest-signed-field":
        assert "signature" in output


def test_export_with_public_key_option(runner, exported, gw, tmp_path):
    path, _ = exported
    right = tmp_path / "right.pem"
    right.write_text(audit.public_key(gw)["public_key_pem"])
    code, output = verify_file(runner, path, "--public-key", str(right))
    assert code == 0, output
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(pem_of(Ed25519PrivateKey.generate()))
    code, output = verify_file(runner, path, "--public-key", str(wrong))
    assert code == 1 and "signature does not verify" in output, output


def test_csv_export_verifies_and_names_the_first_bad_row(gw, client, banner, runner, tmp_path):
    activity(gw, client, banner)
    path = tmp_path / "audit.csv"
    code, output = cli(runner, "audit", "export", "--format", "csv", "--output", str(path))
    assert code == 0, output
    manifest_path = tmp_path / "audit.csv.manifest.json"
    manifest = json.loads(manifest_path.read_text())["manifest"]
    rows = path.read_bytes().splitlines(keepends=True)
    assert rows[0].decode().strip() == ",".join(chain.CSV_COLUMNS)
    assert manifest["count"] == len(rows) - 1 >= 8
    code, output = verify_file(runner, path)
    assert code == 0 and output.startswith("OK:"), output

    def check(edited: list[bytes], bad_line: int, name: str) -> None:
        target = tmp_path / f"{name}.csv"
        target.write_bytes(b"".join(edited))
        (tmp_path / f"{name}.csv.manifest.json").write_bytes(manifest_path.read_bytes())
        code, output = verify_file(runner, target)
        assert code == 1 and f"line {bad_line}:" in output, (name, output)

    cell = list(rows)
    fields = cell[3].decode().split(",")
    fields[3] = "someone-else"  # the actor of seq 3, on CSV line 4
    cell[3] = ",".join(fields).encode()
    check(cell, 4, "changed-cell")
    removed = list(rows)
    del removed[2]
    check(removed, 3, "removed-row")

    # the CSV is verified only with its manifest
    lonely = tmp_path / "lonely.csv"
    lonely.write_bytes(path.read_bytes())
    code, output = verify_file(runner, lonely)
    assert code == 1 and "manifest" in output, output
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(pem_of(Ed25519PrivateKey.generate()))
    code, output = verify_file(runner, path, "--public-key", str(wrong))
    assert code == 1 and "signature" in output, output


# --- the standalone verifier (python + cryptography only) ----------------------------------


def run_script(export: Path, pem: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(export), str(pem)],
                          capture_output=True, text=True, timeout=60, cwd=export.parent)


def test_standalone_script_verifies_an_http_export(gw, client, banner, dpo, tmp_path):
    activity(gw, client, banner)
    _, manifest, data = http_export(client, dpo)
    export = tmp_path / "export.ndjson"
    export.write_bytes(data)
    key = client.get("/v1/audit/public-key")
    assert key.status_code == 200
    assert key.json["algorithm"] == "Ed25519" and key.json["key_id"] == manifest["key_id"]
    pem = tmp_path / "audit.pem"
    pem.write_text(key.json["public_key_pem"])

    ok = run_script(export, pem)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK:") and manifest["chain_head"] in ok.stdout

    lines = data.splitlines(keepends=True)
    event = json.loads(lines[1])
    last = event["hash"][-1]
    flipped = event["hash"][:-1] + ("0" if last != "0" else "1")
    lines[1] = lines[1].replace(event["hash"].encode(), flipped.encode())
    assert len(b"".join(lines)) == len(data)
    export.write_bytes(b"".join(lines))
    bad = run_script(export, pem)
    assert bad.returncode == 1 and "line 2" in bad.stderr, bad.stderr
    lines = data.splitlines(keepends=True)
    del lines[1]  # a removed line: the signed manifest no longer matches
    export.write_bytes(b"".join(lines))
    assert run_script(export, pem).returncode == 1

    # the script imports nothing but the standard library and `cryptography`
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


# --- filters over HTTP ---------------------------------------------------------------------


def at_time(gw, when: datetime):
    gw.clock = lambda: when


def test_since_until_filter_and_verification(gw, client, banner, dpo, runner, tmp_path):
    for hours, subject in ((1, RAW_SUBJECTS[0]), (2, RAW_SUBJECTS[1]), (3, RAW_SUBJECTS[0])):
        at_time(gw, T0 + timedelta(hours=hours))
        post_consent(client, banner, subject)
    gw.clock = utcnow
    events, manifest, data = http_export(
        client, dpo, "?since=2024-03-01T01:30:00Z&until=2024-03-01T02:30:00Z")
    assert events and {e["at"] for e in events} == {"2024-03-01T02:00:00.000000Z"}
    assert manifest["filters"]["since"] == "2024-03-01T01:30:00.000000Z"
    assert manifest["filters"]["until"] == "2024-03-01T02:30:00.000000Z"
    assert manifest["count"] == len(events)
    assert audit.verify_lines(gw, data.splitlines(keepends=True)).ok

    # since alone: everything from then on, including later real-time events
    later, _, _ = http_export(client, dpo, "?since=2024-03-01T02:00:00%2B00:00")
    assert min(e["at"] for e in later) == "2024-03-01T02:00:00.000000Z"
    assert any(e["type"] == "audit.exported" for e in later)
    # the same through the CLI, verified from the file
    path = tmp_path / "window.ndjson"
    lines = export_file(runner, path, "--since", "2024-03-01T01:30:00Z",
                        "--until", "2024-03-01T02:30:00Z")
    assert len(lines) == len(events) + 1
    code, output = verify_file(runner, path)
    assert code == 0, output


def test_type_filter_comma_separated_and_repeated(gw, client, banner, dpo):
    activity(gw, client, banner)
    wanted = {"consent.recorded", "property.created"}
    comma, manifest, data = http_export(client, dpo, "?type=consent.recorded,property.created")
    repeated, _, _ = http_export(client, dpo, "?type=consent.recorded&type=property.created")
    assert comma and {e["type"] for e in comma} == wanted
    assert [e["seq"] for e in comma] == [e["seq"] for e in repeated]
    assert sorted(manifest["filters"]["type"]) == sorted(wanted)
    assert audit.verify_lines(gw, data.splitlines(keepends=True)).ok
    # a filtered export with gaps between seqs still verifies, but a removed line is found
    lines = data.splitlines(keepends=True)
    del lines[1]
    result = audit.verify_lines(gw, lines)
    assert not result.ok and result.line == len(lines), result


def test_subject_filter_uses_the_pseudonym_only(gw, client, banner, dpo, runner, tmp_path):
    activity(gw, client, banner)
    raw = RAW_SUBJECTS[0]
    pseudonym = gw.pseudonymize(raw)
    with gw.db.engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT COUNT(*) FROM audit_events WHERE subject = :p"),
                                {"p": pseudonym}).scalar_one()
    events, manifest, data = http_export(client, dpo, f"?subject_id={raw}")
    assert len(events) == expected == 3  # one consent event per purpose: two, then one
    assert {e["subject"] for e in events} == {pseudonym}
    assert {e["type"] for e in events} == {"consent.recorded"}
    assert manifest["filters"]["subject"] == pseudonym
    assert raw.encode() not in data
    assert audit.verify_lines(gw, data.splitlines(keepends=True)).ok
    path = tmp_path / "subject.ndjson"
    export_file(runner, path, "--subject-id", raw)
    assert raw.encode() not in path.read_bytes()
    code, output = verify_file(runner, path)
    assert code == 0 and "3 events" in output, output


def test_export_errors_are_problems(client, bearer):
    dpo = bearer("audit:read")
    for query in ("?since=yesterday", "?until=2024-03-01T00:00:00", "?since=2024-03-02T00:00:00Z"
                  "&until=2024-03-01T00:00:00Z"):
        r = client.get(f"/v1/audit/events{query}", headers=dpo)
        assert r.status_code == 422 and r.mimetype == "application/problem+json", query
    assert r.json["errors"][0]["field"] == "until"
    r = client.get("/v1/audit/events", headers=bearer("consent:read"))
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    r = client.get("/v1/audit/events")
    assert r.status_code == 401


def test_the_export_is_itself_audited(gw, client, dpo):
    first, _, _ = http_export(client, dpo)
    own = [e for e in first if e["type"] == "audit.exported"]
    assert len(own) == 1 and own[0]["actor"].startswith("cli_")
    second, _, _ = http_export(client, dpo, "?type=audit.exported")
    assert len(second) == 2 and second[0] == own[0]
    assert second[1]["filters"] == {"type": ["audit.exported"]}


# --- key rotation --------------------------------------------------------------------------


def test_rotated_key_keeps_old_exports_verifiable(gw, client, banner, runner, tmp_path):
    activity(gw, client, banner)
    before = tmp_path / "before.ndjson"
    lines = export_file(runner, before)
    old_id = json.loads(lines[-1])["manifest"]["key_id"]
    assert client.get("/v1/audit/public-key").json["key_id"] == old_id

    code, output = cli(runner, "audit", "rotate-key")
    assert code == 0, output
    rotated = json.loads(output)
    assert rotated["previous_key_id"] == old_id and rotated["key_id"] != old_id
    current = client.get("/v1/audit/public-key").json
    assert current["key_id"] == rotated["key_id"]

    old = client.get(f"/v1/audit/public-key?key_id={old_id}")
    assert old.status_code == 200 and old.json["key_id"] == old_id
    assert old.json["public_key_pem"] != current["public_key_pem"]
    pem = tmp_path / "old.pem"
    pem.write_text(old.json["public_key_pem"])
    assert run_script(before, pem).returncode == 0
    assert verify_file(runner, before, "--public-key", str(pem))[0] == 0
    code, output = verify_file(runner, before)  # the old key is looked up by key_id
    assert code == 0 and old_id in output, output
    new_pem = tmp_path / "new.pem"
    new_pem.write_text(current["public_key_pem"])
    assert verify_file(runner, before, "--public-key", str(new_pem))[0] == 1

    after = tmp_path / "after.ndjson"
    lines = export_file(runner, after)
    assert json.loads(lines[-1])["manifest"]["key_id"] == rotated["key_id"]
    rotation = [json.loads(line) for line in lines[:-1] if b'"key.rotated"' in line]
    assert rotation and rotation[-1]["previous_key_id"] == old_id
    assert verify_file(runner, after)[0] == 0

    missing = client.get("/v1/audit/public-key?key_id=ed25519-0000000000000000")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


# --- records of processing -----------------------------------------------------------------


def test_processing_report_json(gw, client, bearer, policy_dir):
    dpo = bearer("audit:read")
    bound = clients.create_client(gw, "Recommender", ["profile:read"], ["personalization"])
    gone = clients.create_client(gw, "Old recommender", ["profile:read"], ["personalization"])
    clients.revoke_client(gw, gone["client_id"])
    r = client.get("/v1/reports/processing", headers=dpo)
    assert r.status_code == 200 and r.mimetype == "application/json"
    report = r.json
    assert report["controller"]["name"] == "Beispiel Shop GmbH"
    purposes = yaml.safe_load((policy_dir / "purposes.yaml").read_text())["purposes"]
    attributes = yaml.safe_load((policy_dir / "attributes.yaml").read_text())["attributes"]
    activities = {a["purpose"]: a for a in report["activities"]}
    assert list(activities) == [p["id"] for p in purposes]
    for p in purposes:
        entry = activities[p["id"]]
        assert entry["legal_basis"] == p["legal_basis"]
        assert entry["data_use"] == p["data_use"]
        assert entry["title"] == p["notice"]["en"]["title"]
        assert entry["data_categories"] == sorted(
            {a["data_category"] for a in attributes if p["id"] in a["purposes"]})
        assert entry["retention"]["consent_lifetime_days"] == p.get("lifetime_days")
        recipient_ids = {r.get("id") for r in entry["recipients"]}
        assert gone["client_id"] not in recipient_ids
        assert (bound["client_id"] in recipient_ids) == (p["id"] == "personalization")
    assert activities["personalization"]["data_categories"]
    assert activities["ads"]["legal_basis_text"].startswith("Consent")


def test_processing_report_html_and_bad_format(gw, client, bearer):
    dpo = bearer("audit:read")
    r = client.get("/v1/reports/processing?format=html", headers=dpo)
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "Beispiel Shop GmbH" in page
    for purpose in gw.policy.purposes:
        _, notice = purpose.notice("en")
        assert str(escape(notice.title)) in page
    r = client.get("/v1/reports/processing?format=pdf", headers=dpo)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert client.get("/v1/reports/processing", headers=bearer("consent:read")).status_code == 403


# --- what never appears in an export -------------------------------------------------------


def test_no_raw_subject_id_and_no_attribute_values_in_any_export(gw, client, banner, dpo, runner,
                                                                  tmp_path):
    from gateway.services import profiles

    activity(gw, client, banner)
    values = {"browsing_categories": ["secret-category-x1"], "loyalty_tier": "secret-tier-y2",
              "email": "secret.person@example.org", "orders_count": 987654}
    profiles.update_profile(gw, "test", RAW_SUBJECTS[0], values)
    profiles.read_view(gw, "test", RAW_SUBJECTS[0], "personalization")
    exports = [
        http_export(client, dpo)[2],
        http_export(client, dpo, f"?subject_id={RAW_SUBJECTS[0]}")[2],
    ]
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"all.{fmt}"
        export_file(runner, path, "--format", fmt)
        exports.append(path.read_bytes())
    exports.append((tmp_path / "all.csv.manifest.json").read_bytes())
    events = {e["type"]: e for e in map(json.loads, exports[0].splitlines()[:-1])}
    assert events["profile.updated"]["attributes"] == sorted(values)
    assert events["profile.released"]["purpose"] == "personalization"
    assert events["profile.updated"]["subject"] == gw.pseudonymize(RAW_SUBJECTS[0])
    forbidden = [*RAW_SUBJECTS, "secret-category-x1", "secret-tier-y2", "secret.person", "987654"]
    for data in exports:
        for text in forbidden:
            assert text.encode() not in data, text
