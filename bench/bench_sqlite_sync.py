"""The cost of `PRAGMA synchronous=FULL` on SQLite consent writes, against NORMAL.

    .venv/bin/python bench/bench_sqlite_sync.py [--writes 300] [--threads 1]

For each setting: a scratch SQLite database in a temporary directory beside the
checkout (a real disk, not tmpfs: the point is the fsync), migrated; the policy
stored and a property created; then `--writes` consent records
(`services.consent.record_consent`, the same path as `POST /v1/consents`, each
its own transaction with its audit event) one after another from `--threads`
threads. Prints writes per second and the p50/p99 latency per setting, and the
ratio. Not a test: it asserts nothing about time. `make bench` runs it too
(bench/run.py), with a small bounded run.

Under WAL, NORMAL syncs the log only at checkpoints: a committed transaction
survives a crash of the process but not necessarily of the OS or the power.
FULL syncs the WAL on every commit: what was answered 201 is on disk.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("NORMAL", "FULL")


def _run(mode: str, writes: int, threads: int, workdir: Path) -> dict:
    from gateway import create_app
    from gateway.core.actor import Actor
    from gateway.services import consent, properties
    from gateway.store import db as store_db
    from gateway.store import migrate

    pragmas = store_db.SQLITE_PRAGMAS
    store_db.SQLITE_PRAGMAS = tuple(
        p for p in pragmas if not p.startswith("PRAGMA synchronous")
    ) + (f"PRAGMA synchronous={mode}",)
    try:
        path = workdir / f"sync-{mode.lower()}.db"
        engine = store_db.make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        app = create_app({
            "DATABASE_URL": f"sqlite:///{path}",
            "GATEWAY_INSTANCE_DIR": str(workdir / "instance"),
            "GATEWAY_PSEUDONYM_KEY": base64.b64encode(b"p" * 32).decode(),
            "GATEWAY_MASTER_KEY": base64.b64encode(b"m" * 32).decode(),
            "GATEWAY_LOG_LEVEL": "WARNING",
        })
        gw = app.extensions["gateway"]
        with gw.db.engine.connect() as conn:
            actual = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        assert actual == {"NORMAL": 1, "FULL": 2}[mode], f"synchronous is {actual}, not {mode}"
        prop = properties.create_property(gw, "bench", ["https://shop.example"])
        actor = Actor(kind="property", id=prop["property_id"])
        latencies: list[float] = []
        lock = threading.Lock()
        per_thread = max(1, writes // threads)

        def work(t: int) -> None:
            for i in range(per_thread):
                started = time.perf_counter()
                consent.record_consent(gw, actor, subject_id=f"bench-{t}-{i}",
                                       purposes={"personalization": "granted", "ads": "denied"},
                                       locale="en")
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)

        # a few writes to warm up (policy stored, statements compiled)
        for i in range(5):
            consent.record_consent(gw, actor, subject_id=f"warm-{i}",
                                   purposes={"personalization": "granted"}, locale="en")
        started = time.perf_counter()
        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - started
        gw.db.dispose()
    finally:
        store_db.SQLITE_PRAGMAS = pragmas
    latencies.sort()
    return {
        "synchronous": mode,
        "writes": len(latencies),
        "threads": threads,
        "writes_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


def measure(writes: int = 300, threads: int = 1) -> list[dict]:
    """NORMAL and FULL, each on its own scratch database (on the checkout's disk)."""
    with tempfile.TemporaryDirectory(prefix="cg-bench-sync-", dir=ROOT / "bench") as tmp:
        return [_run(mode, writes, threads, Path(tmp)) for mode in MODES]


def table(rows: list[dict]) -> str:
    out = ["synchronous  writes  threads  writes/s   p50 ms   p99 ms"]
    for r in rows:
        out.append(f"{r['synchronous']:<11}  {r['writes']:>6}  {r['threads']:>7}  {r['writes_per_s']:>8}"
                   f"  {r['p50_ms']:>7}  {r['p99_ms']:>7}")
    normal, full = rows
    out.append(f"FULL / NORMAL: {full['writes_per_s'] / normal['writes_per_s']:.2f} x the writes per second, "
               f"p50 {full['p50_ms'] - normal['p50_ms']:+.2f} ms")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=300, help="consent writes per setting (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="writing threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON as well")
    args = parser.parse_args()
    rows = measure(args.writes, args.threads)
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
