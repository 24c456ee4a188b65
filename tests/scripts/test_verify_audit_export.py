"""scripts/verify_audit_export.py on exports made here: every tampering case names its line.

The same cases (tests/audit_exports.py) run in the browser against the console's check
(tests/e2e/test_console_verify.py): the two verifiers agree.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from audit_exports import TAMPERING, TRICKY, build, events_of, manifest_line
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.security import signing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_audit_export.py"
KEY = Ed25519PrivateKey.from_private_bytes(b"s" * 32)


def datas(n: int) -> list[dict]:
    return [{"purpose": "ads", "status": "granted" if i % 2 else "denied", "receipt_id": f"rcpt_{i}"}
            for i in range(n)]


@pytest.fixture
def run(tmp_path):
    pem = tmp_path / "audit.pem"
    pem.write_text(signing.AuditSigner(KEY).public_pem)

    def run(lines: list[bytes]) -> subprocess.CompletedProcess:
        export = tmp_path / "export.ndjson"
        export.write_bytes(b"".join(lines))
        return subprocess.run([sys.executable, str(SCRIPT), str(export), str(pem)], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)

    return run


def test_a_good_export_verifies(run):
    lines = build(datas(8), KEY)
    done = run(lines)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 8 events") and events_of(lines)[-1]["hash"] in done.stdout


def test_values_json_spells_differently_in_other_languages_verify(run):
    lines = build([TRICKY, {**TRICKY, "purpose": "ads"}, {"purpose": "analytics"}], KEY)
    done = run(lines)
    assert done.returncode == 0, done.stderr


def test_an_empty_export_verifies(run):
    done = run([manifest_line([], KEY)])
    assert done.returncode == 0 and done.stdout.startswith("OK: 0 events"), done.stderr


def test_a_filtered_export_may_have_gaps_an_unfiltered_one_may_not(run):
    filtered = build(datas(3), KEY, seqs=[2, 5, 9], filters={"subject": "ps_x"})
    assert run(filtered).returncode == 0
    unfiltered = build(datas(3), KEY, seqs=[1, 2, 5])
    done = run(unfiltered)
    assert done.returncode == 1 and "line 3: seq 5 follows seq 2: seq 3 to 4 are missing" in done.stderr


@pytest.mark.parametrize("case", TAMPERING, ids=lambda c: c.name)
def test_each_tampering_names_its_line(run, case):
    lines = case.edit(build(datas(8), KEY), KEY)
    done = run(lines)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("FAILED: ") and "Traceback" not in done.stderr
    assert re.search(rf"\bline {case.line(lines)}\b", done.stderr), done.stderr
    assert case.says(lines) in done.stderr, done.stderr


def test_a_manifest_that_is_not_an_object_is_a_failure_not_a_traceback(run):
    lines = build(datas(2), KEY)
    done = run(lines[:-1] + [b'{"manifest":[1,2]}\n'])
    assert done.returncode == 1 and "line 3: the manifest is not an object" in done.stderr, done.stderr
