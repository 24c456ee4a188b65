"""CPU profile and database round trips of the four hot paths, in-process (Flask test client).

    .venv/bin/python bench/profile_paths.py [--engines postgresql,sqlite] [--requests 400]

A complement to `bench/run.py --profile` (py-spy on the workers under load): here one
process sends the requests one after another through the Flask test client, so the
figures do not depend on how busy the machine is. For each scenario, against a scratch
database seeded like the load benchmark's (PostgreSQL `cg_bench_profile`, dropped at
the end, or a temporary SQLite file):

- CPU ms and wall ms per request (no profiler attached);
- the database round trips of one request: pool checkouts (each one a pre-ping
  `SELECT 1` with pool_pre_ping), BEGIN, statements, COMMIT, and the statements;
- a cProfile with a CPU-time clock: the inclusive share of each phase of the request
  in the app's own CPU time (Flask.wsgi_app = 100 %), and the top functions.

Writes bench/results/profile_paths.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: scratch databases, settings, seeding helpers)
import seed  # noqa: E402

BASE_URL = f"http://{run.HOST}:{run.GATEWAY_PORT}"

# phase -> (file suffix, function name) whose inclusive CPU time it is
PHASES: list[tuple[str, tuple[str, str]]] = [
    ("bearer auth (bearer.authenticate_bearer)", ("gateway/services/auth/bearer.py", "authenticate_bearer")),
    ("  JWT verify (security/jwt.decode)", ("gateway/security/jwt.py", "decode")),
    ("    JsonWebKey.import_key", ("authlib/jose/rfc7517/jwk.py", "import_key")),
    ("  signing-key + client rows (bearer._local_actor minus JWT)",
     ("gateway/services/auth/bearer.py", "_local_actor")),
    ("property-key auth (properties.authenticate)", ("gateway/services/properties.py", "authenticate")),
    ("consent state read (consent.current_state)", ("gateway/services/consent.py", "current_state")),
    ("consent write (consent._record)", ("gateway/services/consent.py", "_record")),
    ("  subject lock (store/subjects.lock_subject)", ("gateway/store/subjects.py", "lock_subject")),
    ("  consent_state upsert (ConsentRepository.append)", ("gateway/store/consents.py", "append")),
    ("permitted view (profiles.permitted)", ("gateway/services/profiles.py", "permitted")),
    ("  consent records (ConsentRepository.records)", ("gateway/store/consents.py", "records")),
    ("  decrypt all (profiles._decrypt_all, incl. its reads)",
     ("gateway/services/profiles.py", "_decrypt_all")),
    ("  permitted_view (core/view.py)", ("gateway/core/view.py", "permitted_view")),
    ("rules (core/conditions.evaluate)", ("gateway/core/conditions/evaluation.py", "evaluate")),
    ("explanation (core/explain.render)", ("gateway/core/explain.py", "render")),
    ("session commit (flush + COMMIT)", ("sqlalchemy/orm/session.py", "commit")),
    ("pool checkout (incl. pre-ping)", ("sqlalchemy/pool/base.py", "_checkout")),
    ("  pre-ping SELECT 1", ("sqlalchemy/engine/default.py", "_do_ping_w_event")),
    ("audit.record (building the event)", ("gateway/services/audit.py", "record")),
    ("audit sealing (seal_soon, after the response)", ("gateway/services/audit.py", "seal_soon")),
    ("request JSON + schema (api/parsing.json_body)", ("gateway/api/parsing.py", "json_body")),
    ("jsonify", ("flask/json/__init__.py", "jsonify")),
    ("request log (api._finish)", ("gateway/api/__init__.py", "_finish")),
    ("metrics (_observe)", ("gateway/api/metrics.py", "_observe")),
]
TOTAL = ("flask/app.py", "wsgi_app")


def inclusive(stats: pstats.Stats) -> dict[tuple[str, str], float]:
    """Cumulative time by (file, function); several functions of one name in a file add up."""
    out: dict[tuple[str, str], float] = {}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore
        out[(file, func)] = out.get((file, func), 0.0) + ct
    return out


def find(times: dict[tuple[str, str], float], suffix: str, func: str) -> float:
    return sum(t for (file, f), t in times.items() if f == func and file.endswith(suffix))


class Client:
    def __init__(self, app, made: dict[str, Any]):
        self.c = app.test_client()
        self.pk = made["property"]["property_key"]
        self.reader = self._token(made["reader"])
        self.decider = self._token(made["decider"])

    def _token(self, client: dict[str, str]) -> str:
        r = self.c.post("/oauth/token", base_url=BASE_URL, data={
            "grant_type": "client_credentials", "client_id": client["client_id"],
            "client_secret": client["client_secret"]})
        assert r.status_code == 200, r.get_data()
        return r.get_json()["access_token"]

    def consent_read(self, n: int) -> None:
        r = self.c.get(f"/v1/subjects/{seed.subject_id(n)}/consents", base_url=BASE_URL,
                       headers={"X-Property-Key": self.pk})
        assert r.status_code == 200, r.get_data()

    def profile_read(self, n: int) -> None:
        r = self.c.get(f"/v1/subjects/{seed.subject_id(n)}/profile?purpose=personalization",
                       base_url=BASE_URL, headers={"Authorization": f"Bearer {self.reader}"})
        assert r.status_code == 200, r.get_data()

    def decision(self, n: int) -> None:
        r = self.c.post("/v1/decisions", base_url=BASE_URL,
                        headers={"Authorization": f"Bearer {self.decider}"},
                        json={"subject_id": seed.subject_id(n), "placement": "homepage_hero",
                              "locale": "de", "context": {"device": "mobile"}})
        assert r.status_code == 201, r.get_data()

    def consent_write(self, n: int) -> None:
        r = self.c.post("/v1/consents", base_url=BASE_URL,
                        headers={"X-Property-Key": self.pk, "Origin": "https://shop.example"},
                        json={"subject_id": seed.subject_id(n),
                              "purposes": {"personalization": "granted", "ads": "denied"},
                              "locale": "de", "source": {"url": "https://shop.example/", "banner": "main"}})
        assert r.status_code == 201, r.get_data()


def round_trips(gw, call) -> dict[str, Any]:
    """What one request sends to the database."""
    from sqlalchemy import event

    seen: list[str] = []
    engine = gw.db.engine

    def on_execute(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split())[:90])

    def autocommit(conn) -> bool:
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def on_begin(conn):
        seen.append("(begin, autocommit: nothing sent)" if autocommit(conn) else "BEGIN")

    def on_commit(conn):
        seen.append("(commit, autocommit: nothing sent)" if autocommit(conn) else "COMMIT")

    pinging = bool(getattr(engine.pool, "_pre_ping", False))

    def on_checkout(*args):
        seen.append("(checkout: pre-ping SELECT 1)" if pinging else "(checkout)")

    pg = gw.db.dialect == "postgresql"
    hooks = [(engine, "before_cursor_execute", on_execute), (engine, "commit", on_commit),
             (engine.pool, "checkout", on_checkout)]
    if pg:  # on SQLite the gateway's own "begin" hook executes BEGIN [IMMEDIATE], seen above
        hooks.append((engine, "begin", on_begin))
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    gw.caches.audit_sealed_at = time.monotonic() + 3600  # no sealing in this one request
    try:
        call()
    finally:
        gw.caches.audit_sealed_at = 0.0
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    pings = sum(1 for s in seen if s.startswith("(checkout: pre-ping"))
    begins = sum(1 for s in seen if s.startswith("BEGIN"))
    commits = seen.count("COMMIT")
    transactions = begins + sum(1 for s in seen if s.startswith("(begin"))
    statements = [s for s in seen if not s.startswith(("(", "BEGIN")) and s != "COMMIT"]
    return {
        "transactions": transactions,
        "statements": len(statements),
        # psycopg sends BEGIN and COMMIT as commands of their own; a pre-ping is one SELECT 1
        "round_trips": len(statements) + (begins + commits + pings if pg else 0),
        "pre_pings": pings if pg else 0,
        "sequence": seen,
    }


def profile_engine(engine_name: str, args) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cg-profile-") as tmp:
        workdir = Path(tmp)
        scratch = run.Scratch(engine_name, workdir, database="cg_bench_profile")
        try:
            secrets = run.Secrets()
            env = run.gateway_env(scratch.url, secrets, workdir / "instance")
            app = run.make_app(env)
            gw = app.extensions["gateway"]
            made = run.prepare(gw)
            spec = seed.make_spec(gw, actor=made["property"]["property_id"],
                                  pseudonym_key=secrets.pseudonym_key, master_keys=(secrets.master_key,))
            seed.seed(scratch.engine, spec, 0, args.subjects, progress=False)
            seed.settle(scratch.engine)
            client = Client(app, made)
            out = {}
            n = args.requests
            for k, name in enumerate(("consent_read", "profile_read", "decision", "consent_write")):
                call = getattr(client, name)
                base = k * 3 * n  # fresh subjects for every pass
                for i in range(50):
                    call(base + i)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for i in range(n):
                    call(base + 50 + i)
                cpu_ms = (time.process_time() - cpu0) * 1000 / n
                wall_ms = (time.perf_counter() - wall0) * 1000 / n
                trips = round_trips(gw, lambda call=call, n=base + 50 + n: call(n))
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                for i in range(n):
                    call(base + 100 + n + i)
                profiler.disable()
                stats = pstats.Stats(profiler)
                times = inclusive(stats)
                total = find(times, *TOTAL)
                phases = [(label, round(100 * find(times, *where) / total, 1)) for label, where in PHASES]
                jwt_share = next((p for label, p in phases if label.startswith("  JWT")), 0.0)
                phases = [(label, round(p - jwt_share, 1) if label.startswith("  signing-key") else p)
                          for label, p in phases if p > 0]
                top_self = sorted(((tt, f"{func} ({Path(file).name}:{line})")
                                   for (file, line, func), (_c, _n, tt, _ct, _cl) in stats.stats.items()),
                                  reverse=True)[:12]
                self_total = sum(v[2] for v in stats.stats.values())
                out[name] = {
                    "cpu_ms_per_request": round(cpu_ms, 3), "wall_ms_per_request": round(wall_ms, 3),
                    **trips, "phases": phases,
                    "top_self": [(label, round(100 * tt / self_total, 1)) for tt, label in top_self],
                }
                print_scenario(engine_name, name, out[name])
            gw.db.dispose()
            return out
        finally:
            scratch.drop()


def print_scenario(engine: str, name: str, r: dict[str, Any]) -> None:
    print(f"\n== {engine} {name}: {r['cpu_ms_per_request']:.2f} ms CPU, {r['wall_ms_per_request']:.2f} ms "
          f"wall per request; {r['transactions']} transactions, {r['statements']} statements, "
          f"{r['round_trips']} round trips ({r['pre_pings']} pre-pings)", flush=True)
    for step in r["sequence"]:
        print(f"     {step}")
    print("   inclusive CPU share of the app (Flask.wsgi_app = 100 %):")
    for label, pct in r["phases"]:
        print(f"   {pct:6.1f} %  {label}")
    print("   top self time:")
    for label, pct in r["top_self"][:8]:
        print(f"   {pct:6.1f} %  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="postgresql,sqlite")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--app", default=run.APP, help="the gateway factory (see bench/run.py --app)")
    parser.add_argument("--output", default=str(run.RESULTS / "profile_paths.json"))
    args = parser.parse_args()
    run.APP = args.app
    results = {name: profile_engine(name, args) for name in args.engines.split(",")}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"app": args.app, **results}, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
