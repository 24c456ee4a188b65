"""The audit log's costs on SQLite and PostgreSQL: audited writes per second, sealing, a 100,000-event export.

    .venv/bin/python bench/bench_audit.py [--events 100000] [--writes 2000]
        [--engines sqlite,postgresql] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

(a) Audited writes per second. Every write is one transaction that inserts one
audit event with `services.audit.record`, as the hot path does, in three ways:

- `no chain`: the event is only inserted; the chain is built afterwards by one
  `seal` of everything, timed on its own (`final seal`).
- `inline chain`: every write is followed by `seal(gw, wait=True)`, which is
  what chaining each request before it answers would cost.
- `batched`: every write is followed by `seal_soon`, as the HTTP layer does
  after each response: at most one seal per `GATEWAY_AUDIT_SEAL_INTERVAL`
  (1 s), never waiting for another sealer (PostgreSQL).

With 1 thread and with 4 threads writing at once (the total is `--writes`).

(b) An export of `--events` events: bulk-insert unsealed rows, one `seal`
(timed), then `export()` read to the end in a child process (events/s and its
peak RSS, so the figure is the export's and not the insert's: VmHWM, the
child's own peak, besides ru_maxrss, which Linux carries over from the parent
across fork and exec), once more under
tracemalloc for the peak of Python allocations during the export only, then
`verify_lines` over the exported bytes and `verify_database`. `events_sha256` is
the SHA-256 of the exported lines of the bulk-inserted events (without the
export's own `audit.exported` events and the manifest, which carry the time):
the same number of events gives the same digest on every run and engine as long
as the export format is unchanged, so two versions of the code can be compared
byte for byte. `--no-writes` skips (a).

Scratch databases only: a temporary SQLite file, and on the PostgreSQL server
a database created for the run and dropped at the end. Not a test: it prints a
table and writes bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import create_app  # noqa: E402
from gateway.services import audit  # noqa: E402
from gateway.store import migrate  # noqa: E402
from gateway.store.db import make_engine  # noqa: E402
from gateway.store.models import AuditEvent  # noqa: E402

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULTS = ROOT / "bench" / "results" / "audit.json"
PSEUDONYM_KEY = base64.b64encode(b"b" * 32).decode()
MODES = ("no chain", "inline chain", "batched")
INSERT_CHUNK = 5000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# --- scratch databases ---------------------------------------------------------------------


class Scratch:
    """A migrated, empty database on one engine; `close()` removes it."""

    def __init__(self, engine_name: str, pg_url: str, workdir: Path):
        self.engine_name = engine_name
        self.workdir = workdir
        self._admin = None
        if engine_name == "sqlite":
            self.url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            admin_url = sa.engine.make_url(pg_url)
            self.name = f"cg_bench_{uuid.uuid4().hex[:10]}"
            self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
            self.url = admin_url.set(database=self.name).render_as_string(hide_password=False)
        engine = make_engine(self.url)
        migrate.upgrade(engine)
        engine.dispose()

    def close(self) -> None:
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin.dispose()


def make_app(url: str, instance_dir: Path):
    return create_app({
        "DATABASE_URL": url,
        "GATEWAY_INSTANCE_DIR": str(instance_dir),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "GATEWAY_LOG_LEVEL": "ERROR",
    })


def empty_log(gw) -> None:
    with gw.db.engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent))


def check_chain(gw) -> int:
    result = audit.verify_database(gw)
    if not result.ok:
        raise SystemExit(f"the chain does not verify: {result}")
    return result.count


# --- (a) audited writes --------------------------------------------------------------------


def one_write(gw, i: int) -> None:
    with gw.db.write() as s:
        audit.record(s, "consent.recorded", actor="prop_bench", at=gw.now(),
                     subject=f"{i:064x}", purpose="ads", status="granted", method="banner",
                     receipt_id=f"rcpt_bench{i:08d}", policy_version="2026-11-01")


def run_writes(gw, mode: str, writes: int, threads: int) -> dict:
    empty_log(gw)
    gw.caches.audit_sealed_at = 0.0
    errors: list[BaseException] = []

    def worker(start: int, count: int) -> None:
        try:
            for i in range(start, start + count):
                one_write(gw, i)
                if mode == "inline chain":
                    audit.seal(gw, wait=True)
                elif mode == "batched":
                    audit.seal_soon(gw)
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    per = writes // threads
    workers = [threading.Thread(target=worker, args=(t * per, per)) for t in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    pending = unsealed(gw)
    seal_started = time.perf_counter()
    sealed = audit.seal(gw, wait=True)
    final_seal = time.perf_counter() - seal_started
    assert sealed == pending
    total = per * threads
    assert check_chain(gw) == total
    return {
        "mode": mode,
        "threads": threads,
        "writes": total,
        "seconds": round(elapsed, 3),
        "writes_per_s": round(total / elapsed, 1),
        "pending_at_end": pending,
        "final_seal_s": round(final_seal, 3),
        "writes_per_s_incl_final_seal": round(total / (elapsed + final_seal), 1),
    }


def unsealed(gw) -> int:
    with gw.db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(AuditEvent)
                            .where(AuditEvent.seq.is_(None))).scalar_one()


# --- (b) a large export --------------------------------------------------------------------


def bulk_insert(gw, events: int) -> float:
    empty_log(gw)
    started = time.perf_counter()
    table = AuditEvent.__table__
    for base in range(0, events, INSERT_CHUNK):
        rows = [
            {"at": T0 + timedelta(milliseconds=i), "type": "consent.recorded", "actor": "prop_bench",
             "subject": f"{i % 5000:064x}",
             "data": {"purpose": ("ads", "personalization", "analytics")[i % 3], "status": "granted",
                      "method": "banner", "receipt_id": f"rcpt_bench{i:08d}",
                      "policy_version": "2026-11-01"},
             "seq": None, "prev_hash": None, "hash": None}
            for i in range(base, min(base + INSERT_CHUNK, events))
        ]
        with gw.db.write() as s:
            s.execute(table.insert(), rows)
    return time.perf_counter() - started


def vm_hwm_kb() -> int | None:
    """This process's own peak RSS (Linux VmHWM), which, unlike ru_maxrss, starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def export_child(url: str, instance_dir: str, trace: bool) -> None:
    """Runs in a fresh process: one export read to the end; prints a JSON line of figures.

    ru_maxrss survives fork and exec, so in this child it is at least the
    parent's RSS when it started the child; VmHWM is the child's own.
    """
    app = make_app(url, Path(instance_dir))
    gw = app.extensions["gateway"]
    baseline_kb, baseline_hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, vm_hwm_kb()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    count = size = 0
    out = Path(instance_dir) / "export.ndjson"
    with out.open("wb") as fh:
        for line in audit.export(gw, "bench", audit.make_filter(gw)):
            fh.write(line)
            count += 1
            size += len(line)
    elapsed = time.perf_counter() - started
    figures = {"events": count - 1, "bytes": size, "seconds": round(elapsed, 3),
               "baseline_maxrss_mb": mb(baseline_kb),
               "peak_maxrss_mb": mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
               "baseline_hwm_mb": mb(baseline_hwm), "peak_hwm_mb": mb(vm_hwm_kb())}
    if trace:
        figures["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
    gw.db.dispose()
    print(json.dumps(figures))


def run_child(url: str, instance_dir: Path, trace: bool) -> dict:
    done = subprocess.run(  # noqa: S603 - this script and its own arguments
        [sys.executable, __file__, "--export-child", url, str(instance_dir)]
        + (["--trace"] if trace else []),
        capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the export child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_export(gw, url: str, instance_dir: Path, events: int) -> dict:
    insert_s = bulk_insert(gw, events)
    started = time.perf_counter()
    sealed = audit.seal(gw, wait=True)
    seal_s = time.perf_counter() - started
    assert sealed == events, sealed
    plain = run_child(url, instance_dir, trace=False)
    traced = run_child(url, instance_dir, trace=True)
    data = (instance_dir / "export.ndjson").read_bytes()
    digest = hashlib.sha256()
    for line in data.splitlines(keepends=True)[:-1]:
        if b'"type":"audit.exported"' not in line:
            digest.update(line)
    started = time.perf_counter()
    result = audit.verify_lines(gw, data.splitlines(keepends=True))
    verify_file_s = time.perf_counter() - started
    assert result.ok, result
    started = time.perf_counter()
    in_db = check_chain(gw)
    verify_db_s = time.perf_counter() - started
    return {
        "events": events,
        "insert_s": round(insert_s, 2),
        "seal_s": round(seal_s, 2),
        "seal_events_per_s": round(events / seal_s),
        "export_events": plain["events"],
        "export_mb": round(plain["bytes"] / 2**20, 1),
        "export_s": plain["seconds"],
        "export_events_per_s": round(plain["events"] / plain["seconds"]),
        "rss_after_start_mb": plain["baseline_hwm_mb"],
        "peak_rss_mb": plain["peak_hwm_mb"],
        "ru_maxrss_after_start_mb": plain["baseline_maxrss_mb"],
        "ru_maxrss_peak_mb": plain["peak_maxrss_mb"],
        "parent_ru_maxrss_mb": mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
        "tracemalloc_peak_mb": traced["tracemalloc_peak_mb"],
        "export_s_under_tracemalloc": traced["seconds"],
        "verify_file_events_per_s": round(result.count / verify_file_s),
        "verify_database_events_per_s": round(in_db / verify_db_s),
        "events_sha256": digest.hexdigest(),
    }


# --- the run -------------------------------------------------------------------------------


def bench_engine(engine_name: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        workdir = Path(tmp)
        scratch = Scratch(engine_name, args.pg_url, workdir)
        app = None
        try:
            app = make_app(scratch.url, workdir / "instance")
            gw = app.extensions["gateway"]
            writes = []
            for threads in () if args.no_writes else (1, 4):
                for mode in MODES:
                    row = run_writes(gw, mode, args.writes, threads)
                    writes.append(row)
                    print(f"  {engine_name:10} {threads} thread(s) {mode:12} "
                          f"{row['writes_per_s']:>8,.0f} writes/s", flush=True)
            export = run_export(gw, scratch.url, workdir / "instance", args.events)
            print(f"  {engine_name:10} export of {args.events:,}: "
                  f"{export['export_events_per_s']:,} events/s, seal {export['seal_events_per_s']:,} "
                  f"events/s, events sha256 {export['events_sha256']}", flush=True)
            return {"engine": engine_name, "writes": writes, "export": export}
        finally:
            if app is not None:
                app.extensions["gateway"].db.dispose()
            scratch.close()


def print_tables(results: list[dict], args) -> None:
    print()
    print(f"(a) audited writes per second, {args.writes:,} one-event transactions per run")
    print()
    print("| engine | threads | mode | writes/s | pending at end | final seal (s) | "
          "writes/s incl. final seal |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in results:
        for w in r["writes"]:
            print(f"| {r['engine']} | {w['threads']} | {w['mode']} | {w['writes_per_s']:,.0f} | "
                  f"{w['pending_at_end']:,} | {w['final_seal_s']:.3f} | "
                  f"{w['writes_per_s_incl_final_seal']:,.0f} |")
    print()
    print(f"(b) export of {args.events:,} events")
    print()
    print("| engine | bulk insert (s) | seal (s) | seal events/s | export (s) | export events/s | "
          "export MB | RSS after start (MB) | peak RSS (MB) | ru_maxrss (MB) | tracemalloc peak (MB) | "
          "verify file events/s | verify DB events/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        e = r["export"]
        print(f"| {r['engine']} | {e['insert_s']} | {e['seal_s']} | {e['seal_events_per_s']:,} | "
              f"{e['export_s']} | {e['export_events_per_s']:,} | {e['export_mb']} | "
              f"{e['rss_after_start_mb']} | {e['peak_rss_mb']} | {e['ru_maxrss_peak_mb']} | "
              f"{e['tracemalloc_peak_mb']} | "
              f"{e['verify_file_events_per_s']:,} | {e['verify_database_events_per_s']:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--no-writes", action="store_true", help="skip (a), the audited writes")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"where to write the JSON results (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--export-child", nargs=2, metavar=("URL", "INSTANCE_DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(*args.export_child, trace=args.trace)
        return
    results = []
    for engine_name in args.engines.split(","):
        results.append(bench_engine(engine_name.strip(), args))
    print_tables(results, args)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({
        "generated_at": datetime.now(UTC).isoformat(), "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "writes": args.writes, "events": args.events,
        "seal_interval_s": 1.0, "results": results}, indent=2) + "\n")
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
