"""Where a gateway worker's CPU goes: a summary of py-spy's collapsed stacks.

    .venv/bin/python bench/profile_report.py bench/results/profiles/postgresql-profile_read-pyspy-w*.txt

py-spy (`record --format raw`, idle samples left out) writes one line per distinct
stack: `frame;frame;...;frame count`, a frame being `function (file:line)`. Every
figure here is a share of the samples in which the worker was on the CPU: the
*inclusive* share of a phase is the share of samples whose stack contains it
(phases can nest: "JWT decode" is part of "bearer authentication"), the *self*
share of a function the share of samples in which it was the innermost frame.
bench/run.py --profile calls `summarize` for each scenario.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

Frame = tuple[str, str]  # (function, file)


def _frame(text: str) -> Frame:
    m = FRAME.match(text)
    return (m.group("func"), m.group("file")) if m else (text, "")


def read(paths: Iterable[Path]) -> Counter:
    stacks: Counter = Counter()
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(_frame(f) for f in stack.split(";"))] += int(count)
    return stacks


def has(func: str, file: str) -> Callable[[tuple[Frame, ...]], bool]:
    """A stack containing `func` (the qualified name ends with it) in a file ending with `file`."""
    def test(stack: tuple[Frame, ...]) -> bool:
        return any(f.endswith(func) and p.endswith(file) for f, p in stack)
    return test


def in_file(fragment: str) -> Callable[[tuple[Frame, ...]], bool]:
    def test(stack: tuple[Frame, ...]) -> bool:
        return any(fragment in p for _, p in stack)
    return test


def outside_app(stack: tuple[Frame, ...]) -> bool:
    return not any(f.endswith("wsgi_app") and p.endswith("flask/app.py") for f, p in stack)


# request phases, outermost first (inclusive shares)
PHASES: list[tuple[str, Callable]] = [
    ("gunicorn + werkzeug outside the Flask app (accept, parse, write, close)", outside_app),
    ("bearer authentication (api/auth.py _authenticate -> clients.authenticate_bearer)",
     has("authenticate_bearer", "gateway/services/clients.py")),
    ("  JWT verify (security/jwt.py decode, authlib)", has("decode", "gateway/security/jwt.py")),
    ("    JsonWebKey.import_key (a key object per request)",
     has("import_key", "authlib/jose/rfc7517/jwk.py")),
    ("  key and client rows (clients._local_actor session)",
     has("_local_actor", "gateway/services/clients.py")),
    ("property-key authentication (properties.authenticate)",
     has("authenticate", "gateway/services/properties.py")),
    ("consent state (services/consent.py current_state)",
     has("current_state", "gateway/services/consent.py")),
    ("consent write (services/consent.py _record)", has("_record", "gateway/services/consent.py")),
    ("  subject lock (store/subjects.py lock_subject)", has("lock_subject", "gateway/store/subjects.py")),
    ("  receipt body re-read and update (get_one(Receipt))",
     has("get_one", "sqlalchemy/orm/session.py")),
    ("permitted view (services/profiles.py permitted)", has("permitted", "gateway/services/profiles.py")),
    ("  consent records read (store/consents.py records)", has("records", "gateway/store/consents.py")),
    ("  profile rows + data key read (ProfileRepository.values/key)",
     lambda s: has("values", "gateway/store/profiles.py")(s) or has("key", "gateway/store/profiles.py")(s)),
    ("  AES-GCM unwrap + decrypt (security/envelope.py)", in_file("gateway/security/envelope.py")),
    ("  value decoding (core/attributes.py decode_value)", has("decode_value", "gateway/core/attributes.py")),
    ("rules (core/rules.py evaluate, CEL)", has("evaluate", "gateway/core/rules.py")),
    ("explanation (core/explain.py render)", in_file("gateway/core/explain.py")),
    ("decision row + audit write (services/decisions.py, 2nd transaction)",
     lambda s: has("decide", "gateway/services/decisions.py")(s)
     and has("__exit__", "contextlib.py")(s) and in_file("sqlalchemy/orm/session.py")(s)
     and not has("permitted", "gateway/services/profiles.py")(s)),
    ("transaction commit (flush of the audit event and other rows, COMMIT)",
     has("commit", "sqlalchemy/orm/session.py")),
    ("audit sealing after the response (audit.seal_soon)", has("seal_soon", "gateway/services/audit.py")),
    ("request body: JSON + marshmallow schema (api/parsing.py json_body)",
     has("json_body", "gateway/api/parsing.py")),
    ("response: jsonify", has("jsonify", "flask/json/__init__.py")),
    ("request log line (structlog)", in_file("structlog/")),
    ("metrics (prometheus_client)", in_file("prometheus_client/")),
    ("CORS (api/cors.py)", in_file("gateway/api/cors.py")),
]

# libraries, across phases (inclusive shares)
LAYERS: list[tuple[str, Callable]] = [
    ("SQLAlchemy (ORM + Core, all calls)", in_file("sqlalchemy/")),
    ("  connection pool checkout (incl. pre-ping)", has("_checkout", "sqlalchemy/pool/base.py")),
    ("  pre-ping (pool_pre_ping=True)", has("_do_ping_w_event", "sqlalchemy/engine/default.py")),
    ("psycopg (driver: send, wait, adapt)", in_file("psycopg/")),
    ("sqlite3 execute (engine/default.py do_execute)", has("do_execute", "sqlalchemy/engine/default.py")),
    ("structlog", in_file("structlog/")),
    ("authlib", in_file("authlib/")),
    ("marshmallow", in_file("marshmallow/")),
    ("Flask + werkzeug", lambda s: in_file("flask/")(s) or in_file("werkzeug/")(s)),
    ("gateway/ code itself (self time in gateway/ files)", None),  # computed from self samples
]


def summarize(paths: Iterable[Path], top: int = 15) -> dict[str, Any]:
    stacks = read(paths)
    total = sum(stacks.values())
    if not total:
        return {"samples": 0, "phases": [], "layers": [], "top_self": [], "top_gateway": []}

    def share(test) -> float:
        return round(100 * sum(c for s, c in stacks.items() if test(s)) / total, 1)

    self_counts: Counter = Counter()
    gateway_inclusive: Counter = Counter()
    for stack, count in stacks.items():
        func, file = stack[-1]
        self_counts[f"{func} ({file})"] += count
        for name in {f"{f} ({p})" for f, p in stack if p.startswith("gateway/")}:
            gateway_inclusive[name] += count
    gateway_self = sum(c for s, c in stacks.items() if s[-1][1].startswith("gateway/"))
    layers = []
    for label, test in LAYERS:
        pct = round(100 * gateway_self / total, 1) if test is None else share(test)
        layers.append((label, pct))
    return {
        "samples": total,
        "phases": [(label, share(test)) for label, test in PHASES if share(test) > 0],
        "layers": layers,
        "top_self": [(name, round(100 * c / total, 1)) for name, c in self_counts.most_common(top)],
        "top_gateway": [(name, round(100 * c / total, 1)) for name, c in gateway_inclusive.most_common(top)],
    }


def render(name: str, summary: dict[str, Any], engine: str = "") -> str:
    lines = [f"  -- {engine} {name}: {summary['samples']:,} on-CPU samples of the workers --"]
    lines.append("  phase (inclusive %):")
    lines += [f"    {pct:5.1f}  {label}" for label, pct in summary["phases"]]
    lines.append("  layer (inclusive %):")
    lines += [f"    {pct:5.1f}  {label}" for label, pct in summary["layers"]]
    lines.append("  top self (innermost frame %):")
    lines += [f"    {pct:5.1f}  {label}" for label, pct in summary["top_self"][:10]]
    return "\n".join(lines)


if __name__ == "__main__":
    files = [Path(p) for p in sys.argv[1:]]
    print(render(", ".join(p.name for p in files), summarize(files)))
    print("  gateway functions (inclusive %):")
    for label, pct in summarize(files)["top_gateway"]:
        print(f"    {pct:5.1f}  {label}")
