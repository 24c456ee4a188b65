"""`make bench`: the gateway under load, on PostgreSQL and SQLite, against a bare-Flask ceiling.

    .venv/bin/python bench/run.py [--quick] [--only sqlite|postgresql] [--skip-1m] [--profile]

What it does, in one run:

1. The ceiling: a bare Flask app (bench/ceiling_app.py) under the gateway's gunicorn
   settings (gunicorn.conf.py, 2 sync workers), driven like the gateway.
2. For each engine: a scratch database (PostgreSQL `cg_bench`, dropped at the end;
   SQLite in a temporary directory), migrated; the policy stored, a property and two
   OAuth clients created in-process; 100,000 subjects with consents and encrypted
   profiles seeded in bulk (bench/seed.py, no HTTP); the gateway started with
   `gunicorn --config gunicorn.conf.py 'gateway:create_app()'` (GATEWAY_ENV=production,
   every secret given explicitly, WEB_CONCURRENCY=2), tokens fetched from its
   /oauth/token; then wrk (2 threads, 32 connections, --latency) from a second process
   for each scenario: consent-state read, filtered profile read, decision, consent write.
3. PostgreSQL only: the profile-read p50 with 10,000 subjects in the database and
   again with 1,000,000 (on ids across the million, and on the first 10,000 ids), at
   32 connections and at one (the service time without queueing).
4. Audit export of 1,000,000 events: bulk-inserted unsealed, sealed with
   `services.audit.seal` (timed), then `services.audit.export` read to the end in a
   separate process (events/s; peak RSS by getrusage of that process).

It prints a table and writes bench/results/latest.json. Flags: --quick (5 s per
scenario, 10,000 subjects, 100,000 audit events), --only ENGINE, --skip-1m,
--profile (one more pass of the four scenarios with py-spy on the gateway's workers;
a summary per scenario in latest.json, collapsed stacks in /tmp/cg-bench/profiles/),
--app (another WSGI factory, to measure a candidate change), --sqlite-sync-writes N
(consent writes per setting in the SQLite `synchronous` NORMAL-versus-FULL comparison of
bench/bench_sqlite_sync.py, run after the engines; default 300, 0 skips it), --webhook-writes N
(consent writes per run in bench/bench_webhooks.py: writes with one webhook subscription against
none, and one delivery worker's deliveries per second; default 200, 0 skips it). Before each measurement
it waits (30 s at most, 240 s per run) for other processes to leave the cores alone,
and every row records how busy the rest of the machine was.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import seed  # noqa: E402  (bench/seed.py)
import sqlalchemy as sa  # noqa: E402

RESULTS = BENCH / "results"  # git-ignores *.json only: everything else goes to LOGS
LOGS = Path(tempfile.gettempdir()) / "cg-bench"  # gunicorn logs, py-spy's collapsed stacks
WRK_DIR = BENCH / "wrk"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
GATEWAY_PORT = int(os.environ.get("BENCH_GATEWAY_PORT", "8731"))
CEILING_PORT = int(os.environ.get("BENCH_CEILING_PORT", "8732"))
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_DATABASE = "cg_bench"
CONNECTIONS = 32
WRK_THREADS = 2
WORKERS = 2
WARMUP_S = 3
FIRST_WARMUP_S = 10

# targets of the issue: PostgreSQL, ratio to the ceiling of the same run, p99 at 32 connections
RATIO_TARGETS = {"profile_read": 0.5, "consent_read": 0.5, "decision": 0.35, "consent_write": 0.3}
P99_TARGET_MS = 50.0
EXPORT_TARGET_EVENTS_S = 50_000
EXPORT_TARGET_RSS_MB = 150.0
SCALE_TARGET = 1.3

SCENARIOS = {  # name -> (wrk script, what it is)
    "consent_read": ("consent_read.lua", "GET /v1/subjects/{id}/consents (property key)"),
    "profile_read": ("profile_read.lua", "GET /v1/subjects/{id}/profile?purpose=personalization (bearer)"),
    "decision": ("decision.lua", "POST /v1/decisions homepage_hero (bearer)"),
    "consent_write": ("consent_write.lua", "POST /v1/consents (property key)"),
}


def log(message: str) -> None:
    print(message, flush=True)


# --- secrets, environments ------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class Secrets:
    pseudonym_key: bytes = field(default_factory=lambda: os.urandom(32))
    master_key: bytes = field(default_factory=lambda: os.urandom(32))
    passphrase: bytes = field(default_factory=lambda: os.urandom(32))
    audit_key: bytes = field(default_factory=lambda: os.urandom(32))


def gateway_env(url: str, secrets: Secrets, instance: Path) -> dict[str, str]:
    """The environment of the gateway, in-process and under gunicorn alike (README settings)."""
    return {
        "GATEWAY_ENV": "production",
        "DATABASE_URL": url,
        "GATEWAY_PSEUDONYM_KEY": b64(secrets.pseudonym_key),
        "GATEWAY_MASTER_KEY": b64(secrets.master_key),
        "GATEWAY_SIGNING_KEY_PASSPHRASE": b64(secrets.passphrase),
        "GATEWAY_AUDIT_SIGNING_KEY": b64(secrets.audit_key),
        "GATEWAY_INSTANCE_DIR": str(instance),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_TOKEN_TTL": str(24 * 3600),
        # production requires an https issuer; the name only appears in tokens and metadata,
        # the benchmark reaches the gateway on loopback over http
        "GATEWAY_ISSUER": "https://gateway.bench.example",
    }


def server_env(extra: dict[str, str], port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GUNICORN_"))}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    env.update(HOST=HOST, PORT=str(port), WEB_CONCURRENCY=str(WORKERS), GUNICORN_LOG_LEVEL="warning")
    return env


# --- processes ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed and this is not root: run `apt-get install -y wrk`")
    log("wrk is missing: installing the Debian package (apt-get update; apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, env=env)  # noqa: S607
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


class Server:
    """A gunicorn master we started; stopped by its pid only."""

    def __init__(self, app: str, env: dict[str, str], port: int, ready_path: str, log_path: Path):
        self.port = port
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", app],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({self.proc.returncode}); see {log_path}")
            try:
                status, _ = http("GET", f"{self.base}{ready_path}")
                if status == 200 and len(self.workers()) == WORKERS:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"gunicorn did not get ready; see {log_path}")
            time.sleep(0.2)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def workers(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         form: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - localhost
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def postgres_pids() -> list[int]:
    """The server's own processes and the backends of our database (not other people's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() not in ("postgres", "postmaster"):
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            backend = re.match(r"postgres: \S+: (\S+) (\S+) ", cmdline)
            if backend is None or backend.group(2) == PG_DATABASE:
                pids.append(int(entry.name))
    return pids


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def wait_for_quiet(limit_s: float = 90, threshold: float = 0.3) -> float:
    """Wait (up to `limit_s`) until the rest of the machine uses less than `threshold` cores.

    The development machine is shared: a test suite running beside the benchmark takes
    the cores the gateway is measured on. Returns the cores still busy at the start.
    """
    waited = 0.0
    while True:
        before = machine_busy()
        time.sleep(1)
        busy = machine_busy() - before
        if busy < threshold or waited >= limit_s:
            if waited:
                log(f"    (waited {waited:.0f} s for a quiet machine; {busy:.2f} cores busy)")
            return round(busy, 2)
        if waited == 0:
            log(f"    the machine is busy ({busy:.2f} cores used by other processes): waiting")
        waited += 1


# --- wrk --------------------------------------------------------------------------------------


def coprime_stride(span: int) -> int:
    stride = 7919
    while math.gcd(stride, span) != 1:
        stride += 2
    return stride


@dataclass
class Load:
    wrk: str
    duration: int
    profile_dir: Path | None = None
    quiet_wait_s: float = 30  # per measurement
    quiet_budget_s: float = 240  # for the whole run
    waited_s: float = 0.0


def run_wrk(load: Load, server: Server, script: str, *, id_range: tuple[int, int], duration: int,
            env_extra: dict[str, str], profile_name: str | None = None,
            connections: int = CONNECTIONS) -> dict[str, Any]:
    threads = min(WRK_THREADS, connections)
    lo, hi = id_range
    env = {**os.environ, "BENCH_WRK_DIR": str(WRK_DIR), "BENCH_ID_LO": str(lo), "BENCH_ID_HI": str(hi),
           "BENCH_STRIDE": str(coprime_stride(hi - lo)), "BENCH_OFFSET": str(random.randrange(hi - lo)),
           "BENCH_THREADS": str(threads), **env_extra}
    cmd = [load.wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
           "--latency", "-s", str(WRK_DIR / script), server.base]
    workers = server.workers()
    spies = []
    if profile_name and load.profile_dir is not None:
        spies = start_py_spy(workers, load.profile_dir / profile_name, duration)
    pg = postgres_pids()
    cpu_before = (cpu_seconds(workers), cpu_seconds(pg), resource.getrusage(resource.RUSAGE_CHILDREN),
                  machine_busy())
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "gateway_workers": round((cpu_seconds(workers) - cpu_before[0]) / wall, 2),
        "postgres": round((cpu_seconds(pg) - cpu_before[1]) / wall, 2),
        "wrk": round((children.ru_utime + children.ru_stime - cpu_before[2].ru_utime
                      - cpu_before[2].ru_stime) / wall, 2),
        "machine": round((machine_busy() - cpu_before[3]) / wall, 2),
    }
    # py-spy, the gunicorn master, the kernel's network work and anyone else's processes
    cpu["other"] = round(cpu["machine"] - cpu["gateway_workers"] - cpu["postgres"] - cpu["wrk"], 2)
    for spy in spies:
        spy.wait(timeout=duration + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("BENCH_JSON "):])
    seconds = raw["duration_us"] / 1e6
    per_request = {k: round(1000 * v * wall / max(raw["requests"], 1), 3) for k, v in cpu.items()
                   if k in ("gateway_workers", "postgres")}
    errors = {k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors",
                                  "timeouts") if raw[k]}
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        "errors": errors,
        "cpu_cores": cpu,
        # CPU milliseconds per request: much less disturbed by a busy machine than req/s
        "cpu_ms_per_request": per_request,
        "wrk_latency": [x.strip() for x in done.stdout.splitlines()
                        if re.match(r"\s+\d+(\.\d+)?%\s", x)],
    }


def measure(load: Load, server: Server, name: str, script: str, *, id_range: tuple[int, int],
            env_extra: dict[str, str], engine: str, profile: bool = False,
            connections: int = CONNECTIONS, warmup: int = WARMUP_S) -> dict[str, Any]:
    allowance = max(0.0, min(load.quiet_wait_s, load.quiet_budget_s - load.waited_s))
    t0 = time.monotonic()
    busy_before = wait_for_quiet(allowance) if allowance else None
    load.waited_s += time.monotonic() - t0
    run_wrk(load, server, script, id_range=id_range, duration=warmup, env_extra=env_extra,
            connections=connections)
    result = run_wrk(load, server, script, id_range=id_range, duration=load.duration,
                     env_extra=env_extra, profile_name=f"{engine}-{name}" if profile else None,
                     connections=connections)
    result.update(scenario=name, engine=engine, subjects_range=list(id_range), connections=connections,
                  machine_busy_before=busy_before, profiled=profile)
    flag = f"  ERRORS {result['errors']}" if result["errors"] else ""
    log(f"  {engine:10} {name:22} {result['rps']:>8,.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
        f"p99 {result['p99_ms']:7.2f} ms  cpu {result['cpu_cores']}{flag}")
    return result


# --- profiling (py-spy) -----------------------------------------------------------------------


def ensure_py_spy() -> str:
    path = BIN / "py-spy"
    if not path.exists():
        log("py-spy is missing: installing it into the virtualenv (pip install py-spy)")
        subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "py-spy"], check=True)  # noqa: S603
    return str(path)


def start_py_spy(workers: list[int], stem: Path, duration: int) -> list[subprocess.Popen]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    spies = []
    for i, pid in enumerate(workers):
        # collapsed stacks ("raw"): speedscope.app or flamegraph.pl draw them
        spies.append(subprocess.Popen(  # noqa: S603 - our own venv's py-spy
            [ensure_py_spy(), "record", "--pid", str(pid), "--duration", str(duration),
             "--rate", "250", "--format", "raw", "--output", f"{stem}-w{i}.txt", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


# --- databases --------------------------------------------------------------------------------


class Scratch:
    """A migrated, empty database; `drop()` removes it."""

    def __init__(self, engine_name: str, workdir: Path, database: str = PG_DATABASE):
        from gateway.store import migrate
        from gateway.store.db import make_engine

        self.engine_name = engine_name
        self.admin = None
        if engine_name == "sqlite":
            self.url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            self.database = database
            self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
            self.url = sa.engine.make_url(PG_ADMIN_URL).set(database=database) \
                .render_as_string(hide_password=False)
        self.engine = make_engine(self.url)
        migrate.upgrade(self.engine)

    def drop(self) -> None:
        self.engine.dispose()
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.admin.dispose()


APP = "gateway:create_app()"  # --app: another factory, e.g. a candidate change on PYTHONPATH


def make_app(env: dict[str, str]):
    import importlib

    module, _, factory = APP.partition(":")
    return getattr(importlib.import_module(module), factory.removesuffix("()"))(env)


def prepare(gw) -> dict[str, Any]:
    """What an operator does once: the policy stored, a banner property, two service clients."""
    from gateway.services import properties
    from gateway.services.auth import clients
    from gateway.services.policy import ensure_stored

    with gw.db.write() as s:
        ensure_stored(gw, s)
    prop = properties.create_property(gw, "Bench shop", ["https://shop.example"])
    reader = clients.create_client(gw, "bench profile reader", ["profile:read"], ["personalization"])
    decider = clients.create_client(gw, "bench decider", ["decision:write"], ["personalization"])
    return {"property": prop, "reader": reader, "decider": decider}


def fetch_token(server: Server, client: dict[str, str]) -> str:
    status, body = http("POST", f"{server.base}/oauth/token",
                        form={"grant_type": "client_credentials", "client_id": client["client_id"],
                              "client_secret": client["client_secret"]})
    if status != 200:
        raise SystemExit(f"/oauth/token answered {status}: {body}")
    return body["access_token"]


def check_sample(server: Server, creds: dict[str, Any], n: int) -> dict[str, Any]:
    """One request of each scenario by hand: the load must be answered 2xx with real content."""
    sid = seed.subject_id(n)
    key = {"X-Property-Key": creds["property_key"]}
    bearer_r = {"Authorization": f"Bearer {creds['reader_token']}"}
    bearer_d = {"Authorization": f"Bearer {creds['decider_token']}"}
    status, state = http("GET", f"{server.base}/v1/subjects/{sid}/consents", headers=key)
    assert status == 200, (status, state)
    personalization = next(p for p in state["purposes"] if p["purpose"] == "personalization")
    assert personalization["effective"], personalization
    status, view = http("GET", f"{server.base}/v1/subjects/{sid}/profile?purpose=personalization",
                        headers=bearer_r)
    assert status == 200 and view["effective"] and len(view["attributes"]) == 6, (status, view)
    status, decision = http("POST", f"{server.base}/v1/decisions", headers=bearer_d,
                            body={"subject_id": sid, "placement": "homepage_hero", "locale": "de",
                                  "context": {"device": "mobile"}})
    assert status == 201, (status, decision)
    status, receipt = http("POST", f"{server.base}/v1/consents",
                           headers={**key, "Origin": "https://shop.example"},
                           body={"subject_id": sid, "purposes": {"personalization": "granted"},
                                 "locale": "de"})
    assert status == 201 and receipt["purposes"][0]["status"] == "granted", (status, receipt)
    return {"profile_view": view, "decision": {k: decision[k] for k in
                                              ("personalized", "content", "purpose")},
            "receipt": {k: receipt[k] for k in ("purposes", "consent_mode")}}


# --- one engine -------------------------------------------------------------------------------


def bench_engine(engine_name: str, args, load: Load, workdir: Path, secrets: Secrets,
                 ceiling_rps: float | None) -> dict[str, Any]:
    log(f"\n== {engine_name} ==")
    scratch = Scratch(engine_name, workdir)
    env = gateway_env(scratch.url, secrets, workdir / "instance")
    app = make_app(env)
    gw = app.extensions["gateway"]
    made = prepare(gw)
    spec = seed.make_spec(gw, actor=made["property"]["property_id"],
                          pseudonym_key=secrets.pseudonym_key, master_keys=(secrets.master_key,))
    seed.verify(spec)
    out: dict[str, Any] = {"engine": engine_name, "scenarios": [], "seeding": []}
    scale = engine_name == "postgresql" and not args.skip_1m
    small = min(args.scale_small, args.subjects)
    server = None
    try:
        seeded = 0

        def grow(to: int) -> None:
            nonlocal seeded
            if to <= seeded:
                return
            seconds = seed.seed(scratch.engine, spec, seeded, to)
            settle = seed.settle(scratch.engine)
            rows = {t: count(scratch.engine, t) for t in ("subjects", "profile_values")}
            out["seeding"].append({"from": seeded, "to": to, "seconds": round(seconds, 1),
                                   "subjects_per_s": round((to - seeded) / seconds),
                                   "settle_s": round(settle, 1), "rows": rows})
            log(f"  seeded subjects {seeded:,}..{to:,} in {seconds:.1f} s "
                f"({(to - seeded) / seconds:,.0f}/s; vacuum/analyze/checkpoint {settle:.1f} s); {rows}")
            seeded = to

        grow(small if scale else args.subjects)
        server = Server(APP, server_env(env, GATEWAY_PORT), GATEWAY_PORT, "/readyz",
                        LOGS / f"gunicorn-{engine_name}.log")
        creds = {"property_key": made["property"]["property_key"],
                 "reader_token": fetch_token(server, made["reader"]),
                 "decider_token": fetch_token(server, made["decider"])}
        wrk_env = {"BENCH_PROPERTY_KEY": creds["property_key"]}
        tokens = {"profile_read": creds["reader_token"], "decision": creds["decider_token"]}
        out["sample"] = check_sample(server, creds, 1)

        first = [True]

        def scenario(name: str, id_range: tuple[int, int], label: str | None = None,
                     profile: bool = False, connections: int = CONNECTIONS) -> dict[str, Any]:
            env_extra = {**wrk_env, "BENCH_TOKEN": tokens.get(name, "")}
            # the first measurement after the start warms up longer (caches, prepared statements)
            warmup = FIRST_WARMUP_S if first[0] else WARMUP_S
            first[0] = False
            result = measure(load, server, label or name, SCENARIOS[name][0], id_range=id_range,
                             env_extra=env_extra, engine=engine_name, profile=profile,
                             connections=connections, warmup=warmup)
            result["endpoint"] = SCENARIOS[name][1]
            if ceiling_rps:
                result["ratio"] = round(result["rps"] / ceiling_rps, 3)
            return result

        scale_rows = {}
        if scale:
            scale_rows["small"] = scenario("profile_read", (0, small), f"profile_read@{small // 1000}k")
            # at 32 connections the p50 is mostly queueing (32 / throughput); one connection
            # shows the service time itself
            scale_rows["small_1c"] = scenario("profile_read", (0, small),
                                              f"profile_read@{small // 1000}k 1 conn", connections=1)
            grow(args.subjects)
        for name in ("consent_read", "profile_read", "decision", "consent_write"):
            out["scenarios"].append(scenario(name, (0, args.subjects)))
        if args.profile:  # a separate pass: py-spy costs the workers some throughput
            import profile_report

            out["profiles"] = {}
            for name in ("consent_read", "profile_read", "decision", "consent_write"):
                run = scenario(name, (0, args.subjects), f"{name}-pyspy", profile=True)
                stems = sorted(load.profile_dir.glob(f"{engine_name}-{name}-pyspy-w*.txt"))
                out["profiles"][name] = {"run": run, **profile_report.summarize(stems)}
                log(profile_report.render(name, out["profiles"][name], engine_name))
        if scale:
            grow(args.scale_large)
            label = f"{args.scale_large // 1000}k" if args.scale_large < 1_000_000 else \
                f"{args.scale_large // 1_000_000}M"
            scale_rows["large"] = scenario("profile_read", (0, args.scale_large),
                                           f"profile_read@{label}")
            scale_rows["large_1c"] = scenario("profile_read", (0, args.scale_large),
                                              f"profile_read@{label} 1 conn", connections=1)
            scale_rows["large_hot"] = scenario("profile_read", (0, small),
                                               f"profile_read@{label}(ids<{small // 1000}k)")
            out["scale"] = {
                "small_subjects": small, "large_subjects": args.scale_large,
                "p50_small_ms": scale_rows["small"]["p50_ms"],
                "p50_large_ms": scale_rows["large"]["p50_ms"],
                "p50_large_hot_ms": scale_rows["large_hot"]["p50_ms"],
                "ratio": round(scale_rows["large"]["p50_ms"] / scale_rows["small"]["p50_ms"], 3),
                "p50_small_1conn_ms": scale_rows["small_1c"]["p50_ms"],
                "p50_large_1conn_ms": scale_rows["large_1c"]["p50_ms"],
                "ratio_1conn": round(scale_rows["large_1c"]["p50_ms"] / scale_rows["small_1c"]["p50_ms"], 3),
                "runs": scale_rows,
            }
            sc = out["scale"]
            log(f"  profile-read p50: {small:,} subjects {sc['p50_small_ms']} ms; "
                f"{args.scale_large:,} subjects {sc['p50_large_ms']} ms (x{sc['ratio']}); ids < {small:,} "
                f"in the large database {sc['p50_large_hot_ms']} ms; one connection: "
                f"{sc['p50_small_1conn_ms']} -> {sc['p50_large_1conn_ms']} ms (x{sc['ratio_1conn']})")
        out["database"] = database_sizes(scratch.engine)
        server.stop()
        server = None
        if args.audit_events and engine_name in args.audit_engines:
            out["audit_export"] = bench_audit(gw, scratch, env, args.audit_events, secrets)
    finally:  # also on failure: no gunicorn left running, no scratch database left behind
        if server is not None:
            server.stop()
        gw.db.dispose()
        scratch.drop()
    return out


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()  # noqa: S608


def database_sizes(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return {"database_mb": round(conn.exec_driver_sql(
                "SELECT pg_database_size(current_database())").scalar_one() / 2**20),
                "shared_buffers": conn.exec_driver_sql("SHOW shared_buffers").scalar_one()}
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        return {"database_mb": round(pages * size / 2**20)}


# --- audit export -----------------------------------------------------------------------------


def bench_audit(gw, scratch: Scratch, env: dict[str, str], events: int, secrets: Secrets) -> dict:
    from gateway.services import audit

    log(f"  audit: {events:,} events")
    with scratch.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events")
    insert_s = seed.insert_audit_events(scratch.engine, events, secrets.pseudonym_key)
    log(f"    inserted in {insert_s:.1f} s")
    seed.settle(scratch.engine)
    started = time.perf_counter()
    sealed = audit.seal(gw, wait=True)
    seal_s = time.perf_counter() - started
    assert sealed == events, (sealed, events)
    log(f"    sealed in {seal_s:.1f} s ({events / seal_s:,.0f} events/s)")
    seed.settle(scratch.engine)
    done = subprocess.run(  # noqa: S603 - this script
        [sys.executable, str(Path(__file__).resolve()), "--export-child", "--app", APP],
        input=json.dumps(env), capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the export child failed:\n{done.stderr}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    rate = child["events"] / child["seconds"]
    result = {
        "events": events, "insert_s": round(insert_s, 1), "seal_s": round(seal_s, 1),
        "seal_events_per_s": round(events / seal_s), "export_events": child["events"],
        "export_mb": round(child["bytes"] / 2**20, 1), "export_s": child["seconds"],
        "export_events_per_s": round(rate), **{k: child[k] for k in child if "rss" in k or "hwm" in k},
    }
    log(f"    export: {child['events']:,} events in {child['seconds']:.1f} s = {rate:,.0f} events/s; "
        f"peak RSS {child['peak_rss_mb']} MB (after start {child['start_rss_mb']} MB)")
    return result


def vm_hwm_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def export_child() -> None:
    """A separate process that reads one whole export; prints a JSON line of figures.

    ru_maxrss carries a parent's high-water mark over fork and exec, so the work is done
    in a child forked from this small process (a fork starts its own maxrss afresh):
    `peak_rss_mb` is then the export's own peak, starting-up included.
    """
    env = json.loads(sys.stdin.read())
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            from gateway.services import audit

            app = make_app(env)
            gw = app.extensions["gateway"]
            start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            started = time.perf_counter()
            lines = size = 0
            for line in audit.export(gw, "bench", audit.make_filter(gw)):
                lines += 1
                size += len(line)
            seconds = time.perf_counter() - started
            figures = {"events": lines - 1, "bytes": size, "seconds": round(seconds, 2),
                       "start_rss_mb": round(start_rss, 1),
                       "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                       "peak_vmhwm_mb": vm_hwm_mb()}
            gw.db.dispose()
            os.write(write_fd, json.dumps(figures).encode())
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            os.write(2, f"{type(exc).__name__}: {exc}\n".encode())
            os._exit(1)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit("the export failed")
    print(b"".join(chunks).decode())


# --- the ceiling --------------------------------------------------------------------------------


def bench_ceiling(load: Load, label: str) -> dict[str, Any]:
    server = Server("bench.ceiling_app:create_app()", server_env({}, CEILING_PORT), CEILING_PORT,
                    "/healthz", LOGS / "gunicorn-ceiling.log")
    try:
        return measure(load, server, label, "ceiling.lua", id_range=(0, 100_000), env_extra={},
                       engine="flask")
    finally:
        server.stop()


# --- report -----------------------------------------------------------------------------------


def judge(row: dict[str, Any]) -> tuple[str, str]:
    target = RATIO_TARGETS.get(row["scenario"])
    if row["engine"] != "postgresql" or target is None:
        return "-", "-"
    ok = row.get("ratio", 0) >= target and row["p99_ms"] <= P99_TARGET_MS and not row["errors"]
    return f">={target} & p99<={P99_TARGET_MS:g}ms", "yes" if ok else "NO"


def table(results: dict[str, Any]) -> str:
    head = ("| scenario | engine | req/s | p50 ms | p99 ms | ratio to ceiling | target | met? "
            "| worker CPU ms/req | PG CPU ms/req | other load (cores) |\n"
            "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|\n")
    lines = []

    def tail(row: dict[str, Any]) -> str:
        cpu = row["cpu_ms_per_request"]
        pg = f"{cpu['postgres']:.2f}" if row["engine"] == "postgresql" else "-"
        return f" {cpu['gateway_workers']:.2f} | {pg} | {row['cpu_cores']['other']:.2f} |"

    for row in results["ceiling"]:
        lines.append(f"| {row['scenario']} | flask | {row['rps']:,.0f} | {row['p50_ms']:.2f} | "
                     f"{row['p99_ms']:.2f} | {row['rps'] / results['ceiling_rps']:.2f} | - | - |" + tail(row))
    for engine in results["engines"]:
        for row in engine["scenarios"]:
            target, met = judge(row)
            errors = f" ({sum(row['errors'].values())} errors)" if row["errors"] else ""
            lines.append(f"| {row['scenario']}{errors} | {row['engine']} | {row['rps']:,.0f} | "
                         f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row.get('ratio', 0):.2f} | "
                         f"{target} | {met} |" + tail(row))
    return head + "\n".join(lines)


def summary(results: dict[str, Any]) -> str:
    out = [table(results), ""]
    for engine in results["engines"]:
        for s in engine["seeding"]:
            out.append(f"seeding {engine['engine']}: subjects {s['from']:,}..{s['to']:,} in "
                       f"{s['seconds']} s ({s['subjects_per_s']:,}/s)")
        if "scale" in engine:
            sc = engine["scale"]
            met = "yes" if sc["ratio"] <= SCALE_TARGET else "NO"
            out.append(f"profile-read p50 {engine['engine']}: {sc['small_subjects']:,} subjects "
                       f"{sc['p50_small_ms']} ms, {sc['large_subjects']:,} subjects {sc['p50_large_ms']} ms "
                       f"= x{sc['ratio']} (target <= x{SCALE_TARGET}: {met}); first "
                       f"{sc['small_subjects']:,} ids in the large database {sc['p50_large_hot_ms']} ms; "
                       f"at one connection {sc['p50_small_1conn_ms']} ms -> {sc['p50_large_1conn_ms']} ms "
                       f"(x{sc['ratio_1conn']})")
        if "audit_export" in engine:
            a = engine["audit_export"]
            met = "yes" if (a["export_events_per_s"] >= EXPORT_TARGET_EVENTS_S
                            and a["peak_rss_mb"] <= EXPORT_TARGET_RSS_MB) else "NO"
            out.append(f"audit export {engine['engine']}: {a['events']:,} events; insert {a['insert_s']} s, "
                       f"seal {a['seal_s']} s ({a['seal_events_per_s']:,}/s); export {a['export_s']} s = "
                       f"{a['export_events_per_s']:,} events/s, peak RSS {a['peak_rss_mb']} MB "
                       f"(target >= {EXPORT_TARGET_EVENTS_S:,}/s and <= {EXPORT_TARGET_RSS_MB:g} MB: {met})")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    global APP, WORKERS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 s per scenario, 10,000 subjects, 100,000 audit events")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--skip-1m", action="store_true", help="no 10k-versus-1M profile-read test")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the gateway workers during the PostgreSQL scenarios")
    parser.add_argument("--duration", type=int, help="seconds per scenario (default 15; quick 5)")
    parser.add_argument("--subjects", type=int, help="subjects seeded (default 100,000; quick 10,000)")
    parser.add_argument("--audit-events", type=int, help="default 1,000,000; quick 100,000; 0: none")
    parser.add_argument("--audit-engines", default="postgresql,sqlite")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="seconds to wait, before each measurement, for other processes to go "
                             "quiet (the run waits 240 s at most in all); 0: never")
    parser.add_argument("--app", default=APP,
                        help="the gateway's WSGI factory (default gateway:create_app()); a module on "
                             "PYTHONPATH can wrap it to measure a candidate change")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="gunicorn workers (WEB_CONCURRENCY) of the gateway and the ceiling "
                             "(default 2, the README's setting and the targets')")
    parser.add_argument("--sqlite-sync-writes", type=int, default=300,
                        help="consent writes per setting in the SQLite synchronous NORMAL-versus-FULL "
                             "comparison (bench/bench_sqlite_sync.py; default 300; 0: skip)")
    parser.add_argument("--webhook-writes", type=int, default=200,
                        help="consent writes per run in the webhook comparison "
                             "(bench/bench_webhooks.py; default 200; 0: skip)")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    APP = args.app
    WORKERS = args.workers
    if args.export_child:
        export_child()
        return
    quick = args.quick
    args.duration = args.duration or (5 if quick else 15)
    args.subjects = args.subjects or (10_000 if quick else 100_000)
    if args.audit_events is None:
        args.audit_events = 100_000 if quick else 1_000_000
    args.audit_engines = [e.strip() for e in args.audit_engines.split(",")]
    args.scale_small = 10_000
    args.scale_large = 100_000 if quick else 1_000_000
    engines = [args.only] if args.only else ["postgresql", "sqlite"]

    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    load = Load(wrk=ensure_wrk(), duration=args.duration, quiet_wait_s=args.quiet_wait,
                profile_dir=LOGS / "profiles" if args.profile else None)
    if args.profile:
        ensure_py_spy()
    started = time.perf_counter()
    log(f"bench: {os.cpu_count()} cpus, {WORKERS} gunicorn workers, wrk {WRK_THREADS} threads x "
        f"{CONNECTIONS} connections, {args.duration} s per scenario (+{WARMUP_S} s warm-up), "
        f"{args.subjects:,} subjects")
    secrets = Secrets()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": {"app": APP, "workers": WORKERS, "worker_class": "sync", "wrk_threads": WRK_THREADS,
                     "connections": CONNECTIONS, "duration_s": args.duration, "warmup_s": WARMUP_S,
                     "subjects": args.subjects, "quick": quick},
        "targets": {"ratio": RATIO_TARGETS, "p99_ms": P99_TARGET_MS,
                    "export_events_per_s": EXPORT_TARGET_EVENTS_S, "export_rss_mb": EXPORT_TARGET_RSS_MB,
                    "p50_1m_over_10k": SCALE_TARGET},
        "ceiling": [], "engines": [],
    }
    log("\n== ceiling (bare Flask) ==")
    results["ceiling"].append(bench_ceiling(load, "ceiling"))
    results["ceiling_rps"] = results["ceiling"][0]["rps"]
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        for engine_name in engines:
            workdir = Path(tmp) / engine_name
            workdir.mkdir()
            results["engines"].append(bench_engine(engine_name, args, load, workdir, secrets,
                                                   results["ceiling_rps"]))
    if args.sqlite_sync_writes and (args.only in (None, "sqlite")):
        import bench_sqlite_sync

        log("\n== SQLite: synchronous NORMAL versus FULL (consent writes, in-process) ==")
        results["sqlite_sync"] = bench_sqlite_sync.measure(args.sqlite_sync_writes)
        log(bench_sqlite_sync.table(results["sqlite_sync"]))
    if args.webhook_writes:
        import bench_webhooks

        log("\n== webhooks: consent writes with one subscription against none; one worker's deliveries ==")
        results["webhooks"] = bench_webhooks.measure(
            args.webhook_writes, rounds=3 if quick else 5, deliveries=1000 if quick else 3000,
            engines=tuple(e for e in ("sqlite", "postgresql") if args.only in (None, e)))
        log(bench_webhooks.table(results["webhooks"]))
    log("\n== ceiling again (drift check) ==")
    results["ceiling"].append(bench_ceiling(load, "ceiling (again)"))
    results["elapsed_s"] = round(time.perf_counter() - started)
    results["waited_for_quiet_s"] = round(load.waited_s)
    text = summary(results)
    results["table"] = text
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    log("\n" + text)
    log(f"\nwritten to {(RESULTS / 'latest.json').relative_to(ROOT)} in {results['elapsed_s']} s "
        f"({results['waited_for_quiet_s']} s of it waiting for other processes to go quiet)")


if __name__ == "__main__":
    main()
