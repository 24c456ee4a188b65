"""Webhooks: what an active subscription costs a consent write, and how fast one worker delivers.

    .venv/bin/python bench/bench_webhooks.py [--writes 300] [--rounds 3] [--deliveries 3000]
                                             [--engines sqlite,postgresql]

1. Consent writes per second (and CPU time of the process per write) with no subscription and
   with one active subscription to
   `consent.changed` (each write then also queues its encrypted delivery in the same
   transaction): `services.consent.record_consent`, the path of `POST /v1/consents`, one
   write after another from one thread, `--writes` per run. The two cases alternate for
   `--rounds` rounds on the same database and the medians are compared (target: at most
   10 % slower with the subscription).
2. Deliveries per second of one worker (`services.webhooks_worker.Worker`, default
   concurrency) to a receiver on 127.0.0.1 that answers 204 at once, in a process of its own:
   `--deliveries` deliveries of as many subjects are queued, then the worker drains them
   (target: at least 500 per second on the 2-core development machine).

SQLite in a temporary directory beside the checkout (a real disk); PostgreSQL in a scratch
database `cg_bench_webhooks` at BENCH_POSTGRES_URL (default the test server), dropped at the
end, skipped when unreachable. Not a test: it asserts nothing about time. `make bench` runs it
too (bench/run.py --webhook-writes).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_NAME = "cg_bench_webhooks"
WRITE_TARGET = 0.10
DELIVERY_TARGET = 500

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
print("ready", flush=True)
s.serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database(engine: str, workdir: Path) -> str | None:
    from gateway.store import migrate
    from gateway.store.db import make_engine

    if engine == "sqlite":
        url = f"sqlite:///{workdir / 'webhooks.db'}"
    else:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{PG_NAME}"')
        except sa.exc.OperationalError:
            return None
        finally:
            admin.dispose()
        url = sa.engine.make_url(PG_ADMIN).set(database=PG_NAME).render_as_string(hide_password=False)
    engine_ = make_engine(url)
    migrate.upgrade(engine_)
    engine_.dispose()
    return url


def _drop(engine: str) -> None:
    if engine == "postgresql":
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        admin.dispose()


def _app(url: str, workdir: Path):
    from gateway import create_app

    return create_app({
        "DATABASE_URL": url,
        "GATEWAY_INSTANCE_DIR": str(workdir / "instance"),
        "GATEWAY_PSEUDONYM_KEY": base64.b64encode(b"p" * 32).decode(),
        "GATEWAY_MASTER_KEY": base64.b64encode(b"m" * 32).decode(),
        "GATEWAY_LOG_LEVEL": "WARNING",
    }).extensions["gateway"]


def _writes(gw, actor, prefix: str, n: int) -> tuple[float, float]:
    """(writes per second, CPU milliseconds of this process per write)."""
    from gateway.services import consent

    if n <= 0:
        return 0.0, 0.0
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        consent.record_consent(gw, actor, subject_id=f"{prefix}-{i}",
                               purposes={"personalization": "granted", "ads": "denied"}, locale="en")
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1000


def measure_engine(engine: str, writes: int, rounds: int, deliveries: int, workdir: Path) -> dict | None:
    from gateway.core.actor import Actor
    from gateway.services import properties, webhooks
    from gateway.services.webhooks_worker import Worker

    url = _database(engine, workdir)
    if url is None:
        return None
    port = _free_port()
    receiver = subprocess.Popen(  # noqa: S603 (our own receiver script)
        [sys.executable, "-c", RECEIVER, str(port)], stdout=subprocess.PIPE, text=True)
    gw = _app(url, workdir)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        prop = properties.create_property(gw, "bench", ["https://shop.example"])
        actor = Actor(kind="property", id=prop["property_id"])
        _writes(gw, actor, "warm", 20)
        hook = webhooks.create(gw, "bench", {"url": f"http://127.0.0.1:{port}/hooks",
                                             "events": ["consent.changed"]})
        without, with_one = [], []
        for r in range(rounds):
            webhooks.disable(gw, "bench", hook["webhook_id"])
            without.append(_writes(gw, actor, f"none-{r}", writes))
            webhooks.update(gw, "bench", hook["webhook_id"], {"status": "active"})
            with_one.append(_writes(gw, actor, f"one-{r}", writes))
        queued = rounds * writes
        # the deliveries: as many subjects as deliveries, so that no subject's order holds any back
        _writes(gw, actor, "deliver", max(0, deliveries - queued))
        worker = Worker(gw)
        started = time.perf_counter()
        sent = worker.drain()
        elapsed = time.perf_counter() - started
        worker.close()
        stats = worker.stats
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
        gw.db.dispose()
        _drop(engine)
    none_rate = statistics.median(r for r, _ in without)
    one_rate = statistics.median(r for r, _ in with_one)
    none_cpu = statistics.median(c for _, c in without)
    one_cpu = statistics.median(c for _, c in with_one)
    return {
        "engine": engine,
        "writes_per_run": writes, "rounds": rounds,
        "writes_per_s_no_subscription": round(none_rate, 1),
        "writes_per_s_one_subscription": round(one_rate, 1),
        "slower_by": round(1 - one_rate / none_rate, 3),
        "cpu_ms_per_write_no_subscription": round(none_cpu, 3),
        "cpu_ms_per_write_one_subscription": round(one_cpu, 3),
        "cpu_more_by": round(one_cpu / none_cpu - 1, 3),
        "runs_no_subscription": [round(r, 1) for r, _ in without],
        "runs_one_subscription": [round(r, 1) for r, _ in with_one],
        "deliveries": sent, "delivered": stats.delivered, "delivery_s": round(elapsed, 2),
        "deliveries_per_s": round(stats.delivered / elapsed, 1) if elapsed else None,
        "concurrency": worker.concurrency, "batch": worker.batch,
    }


def measure(writes: int = 200, rounds: int = 5, deliveries: int = 3000,
            engines: tuple[str, ...] = ("sqlite", "postgresql")) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cg-bench-webhooks-", dir=ROOT / "bench") as tmp:
        rows = []
        for engine in engines:
            workdir = Path(tmp) / engine
            workdir.mkdir()
            row = measure_engine(engine, writes, rounds, deliveries, workdir)
            if row is not None:
                rows.append(row)
        return rows


def table(rows: list[dict]) -> str:
    out = ["engine      writes/s none   writes/s one   slower   CPU/write none   one      more"
           "   deliveries/s"]
    for r in rows:
        out.append(f"{r['engine']:<10}  {r['writes_per_s_no_subscription']:>13}  "
                   f"{r['writes_per_s_one_subscription']:>13}  {r['slower_by'] * 100:>6.1f} %  "
                   f"{r['cpu_ms_per_write_no_subscription']:>11.2f} ms  "
                   f"{r['cpu_ms_per_write_one_subscription']:>5.2f} ms  {r['cpu_more_by'] * 100:>5.1f} %  "
                   f"{r['deliveries_per_s']:>12}")
    out.append(f"targets: at most {int(WRITE_TARGET * 100)} % slower with one subscription; at least "
               f"{DELIVERY_TARGET} deliveries/s")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=200, help="consent writes per run (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each case, alternating (default 5)")
    parser.add_argument("--deliveries", type=int, default=3000, help="deliveries drained (default 3000)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON as well")
    args = parser.parse_args()
    rows = measure(args.writes, args.rounds, args.deliveries,
                   tuple(e.strip() for e in args.engines.split(",") if e.strip()))
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
