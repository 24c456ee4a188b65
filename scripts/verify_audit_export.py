#!/usr/bin/env python3
"""Verify a Consent Gateway audit export with nothing but the public key.

usage: verify_audit_export.py EXPORT.ndjson PUBLIC_KEY.pem

Needs only Python 3 and the `cryptography` package: it does not import the
gateway. It checks every event's hash, the hash chain between consecutive
events, the manifest (count, first/last seq, chain head, SHA-256 of every
line before it) and the Ed25519 signature over the manifest. Exit 0 when
everything holds; otherwise exit 1 naming the first bad line.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def main(export_path, key_path):
    with open(key_path, "rb") as fh:
        public_key = load_pem_public_key(fh.read())
    digest = hashlib.sha256()
    prev = None
    count = 0
    manifest = None
    with open(export_path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            obj = json.loads(line)
            if set(obj) == {"manifest"}:
                manifest, manifest_line = obj["manifest"], number
                continue
            if manifest is not None:
                return f"line {number}: data after the manifest"
            digest.update(line)
            body = {k: v for k, v in obj.items() if k != "hash"}
            if hashlib.sha256(canonical(body)).hexdigest() != obj["hash"]:
                return f"line {number}: event seq {obj['seq']} does not match its hash"
            if prev is not None:
                if obj["seq"] <= prev["seq"]:
                    return f"line {number}: seq {obj['seq']} is out of order"
                if obj["seq"] == prev["seq"] + 1 and obj["prev_hash"] != prev["hash"]:
                    return f"line {number}: seq {obj['seq']} does not link to seq {prev['seq']}"
            elif obj["seq"] == 1 and obj["prev_hash"] != "0" * 64:
                return f"line {number}: the first event does not start the chain"
            prev = obj
            count += 1
    if manifest is None:
        return "no manifest line: the export is truncated"
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        public_key.verify(base64.b64decode(manifest["signature"]), canonical(unsigned))
    except (InvalidSignature, ValueError):
        return f"line {manifest_line}: the manifest signature does not verify"
    expected = {
        "count": count,
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
