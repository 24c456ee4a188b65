#!/usr/bin/env python3
"""Verify a Consent Gateway audit export with nothing but the public key.

usage: verify_audit_export.py EXPORT.ndjson PUBLIC_KEY.pem

Needs only Python 3 and the `cryptography` package: it does not import the
gateway. It checks every event's hash, the hash chain between consecutive
events, that no seq is missing (in an unfiltered export), the manifest
(count, first/last seq, chain head, SHA-256 of every line before it) and
the Ed25519 signature over the manifest. Exit 0 when everything holds;
otherwise exit 1 naming the first bad line.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def missing(first, last):
    return f"seq {first} is missing" if first == last else f"seq {first} to {last} are missing"


def main(export_path, key_path):
    with open(key_path, "rb") as fh:
        public_key = load_pem_public_key(fh.read())
    digest = hashlib.sha256()
    prev = None
    first_seq = None
    count = 0
    manifest = None
    manifest_line = None
    number = 0
    problems = []  # (line, message, is_gap): a gap is only wrong in an unfiltered export
    with open(export_path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line)
            except ValueError:
                return f"line {number}: not a JSON line"
            if isinstance(obj, dict) and set(obj) == {"manifest"}:
                manifest, manifest_line = obj["manifest"], number
                continue
            if manifest is not None:
                return f"line {number}: data after the manifest"
            digest.update(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int):
                return f"line {number}: not an audit event"
            body = {k: v for k, v in obj.items() if k != "hash"}
            if hashlib.sha256(canonical(body)).hexdigest() != obj.get("hash"):
                problems.append((number, f"event seq {obj['seq']} does not match its hash", False))
            if prev is None:
                first_seq = obj["seq"]
                if obj["seq"] == 1 and obj.get("prev_hash") != "0" * 64:
                    problems.append((number, "the first event does not start from the genesis hash", False))
                elif obj["seq"] != 1:
                    problems.append((number, f"the export starts at seq {obj['seq']}, not 1: "
                                             f"{missing(1, obj['seq'] - 1)}", True))
            elif obj["seq"] <= prev["seq"]:
                problems.append((number, f"seq {obj['seq']} comes after seq {prev['seq']}", False))
            elif obj["seq"] == prev["seq"] + 1:
                if obj.get("prev_hash") != prev.get("hash"):
                    problems.append((number, f"event seq {obj['seq']} does not link to seq {prev['seq']}",
                                     False))
            else:
                problems.append((number, f"seq {obj['seq']} follows seq {prev['seq']}: "
                                         f"{missing(prev['seq'] + 1, obj['seq'] - 1)}", True))
            prev = obj
            count += 1
    if manifest is None:
        return f"line {number + 1}: no manifest line: the export is truncated"
    if not isinstance(manifest, dict):
        return f"line {manifest_line}: the manifest is not an object"
    filters = manifest.get("filters")
    filtered = isinstance(filters, dict) and any(v not in (None, [], {}) for v in filters.values())
    real = [(n, m) for n, m, gap in problems if not (gap and filtered)]
    if real:
        number, message = min(real)
        return f"line {number}: {message}"
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        public_key.verify(base64.b64decode(manifest["signature"]), canonical(unsigned))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return f"line {manifest_line}: the manifest signature does not verify"
    expected = {
        "count": count,
        "first_seq": first_seq,
        "sha256": digest.hexdigest(),
        "last_seq": prev["seq"] if prev else None,
        "chain_head": prev["hash"] if prev else None,
    }
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"line {manifest_line}: manifest {key} does not match the lines"
    print(f"OK: {count} events, chain head {expected['chain_head']}, signed by {manifest['key_id']}")
    return None


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    problem = main(sys.argv[1], sys.argv[2])
    if problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        sys.exit(1)
