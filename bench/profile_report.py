"""Where a gateway worker's CPU goes: a summary of py-spy's collapsed stacks.

    .venv/bin/python bench/profile_report.py /tmp/cg-bench/profiles/postgresql-profile_read-pyspy-w*.txt

py-spy (`record --format raw`, idle samples left out) writes one line per distinct
stack: `frame;frame;...;frame count`, a frame being `function (file:line)`. Every
figure here is a share of the samples in which the worker was not idle: running,
or ready to run (on a saturated 2-core machine that includes waiting for a core
after a database reply, which is charged to the psycopg call that sent the query).
The *inclusive* share of a phase is the share of samples whose stack contains it
(phases can nest: "JWT verify" is part of "bearer authentication"), the *self*
share of a function or library the share in which it was the innermost frame.
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


def called_from(outer: tuple[str, str], inner: tuple[str, str]) -> Callable[[tuple[Frame, ...]], bool]:
    """`inner` called directly by `outer` (contextlib's frames in between are skipped)."""
    def test(stack: tuple[Frame, ...]) -> bool:
        frames = [(f, p) for f, p in stack if not p.endswith("contextlib.py")]
        return any(a[0].endswith(outer[0]) and a[1].endswith(outer[1])
                   and b[0].endswith(inner[0]) and b[1].endswith(inner[1])
                   for a, b in zip(frames, frames[1:], strict=False))
    return test


def either(*tests: Callable) -> Callable[[tuple[Frame, ...]], bool]:
    return lambda stack: any(t(stack) for t in tests)


# request phases, outermost first (inclusive shares)
PHASES: list[tuple[str, Callable]] = [
    ("gunicorn + werkzeug outside the Flask app (accept, parse, write, close)", outside_app),
    ("bearer authentication (bearer.authenticate_bearer: one read transaction)",
     has("authenticate_bearer", "gateway/services/auth/bearer.py")),
    ("  JWT verify (security/jwt.decode, incl. the signing-key lookup it calls back)",
     has("decode", "gateway/security/jwt.py")),
    ("    signing-key row lookup (keys.verification_key)",
     has("verification_key", "gateway/services/auth/keys.py")),
    ("property-key authentication (properties.authenticate: one read transaction)",
     has("authenticate", "gateway/services/properties.py")),
    ("consent state (services/consent.py current_state)",
     has("current_state", "gateway/services/consent.py")),
    ("consent write (services/consent.py _record)", has("_record", "gateway/services/consent.py")),
    ("  subject lock (store/subjects.py lock_subject)", has("lock_subject", "gateway/store/subjects.py")),
    ("  state rows re-read + events (ConsentRepository.append)", has("append", "gateway/store/consents.py")),
    ("  receipt re-read for the body (Session.get_one)", has("get_one", "sqlalchemy/orm/session.py")),
    ("permitted view (services/profiles.py permitted)", has("permitted", "gateway/services/profiles.py")),
    ("  consent records read (store/consents.py records)", has("records", "gateway/store/consents.py")),
    ("  profile rows + data key read (ProfileRepository.values/key)",
     either(has("values", "gateway/store/profiles.py"), has("key", "gateway/store/profiles.py"))),
    ("  AES-GCM unwrap + decrypt (security/envelope.py)", in_file("gateway/security/envelope.py")),
    ("  value decoding (core/attributes.py decode_value)", has("decode_value", "gateway/core/attributes.py")),
    ("rules (core/conditions evaluate, CEL)",
     has("evaluate", "gateway/core/conditions/evaluation.py")),
    ("explanation (core/explain.py render)", in_file("gateway/core/explain.py")),
    ("decision's own write transaction (decisions.decide -> Database.write)",
     called_from(("decide", "gateway/services/decisions.py"), ("Database.write", "gateway/store/db.py"))),
    ("transaction commits (Session.commit: flush + COMMIT)", has("commit", "sqlalchemy/orm/session.py")),
    ("connection checkouts (pool _checkout, incl. pre-ping)", has("_checkout", "sqlalchemy/pool/base.py")),
    ("  pre-ping SELECT 1 (pool_pre_ping=True)", has("_do_ping_w_event", "sqlalchemy/engine/default.py")),
    ("audit sealing after the response (audit.seal_soon)", has("seal_soon", "gateway/services/audit.py")),
    ("request body: JSON + marshmallow schema (api/parsing.py json_body)",
     has("json_body", "gateway/api/parsing.py")),
    ("response: jsonify", has("jsonify", "flask/json/__init__.py")),
    ("request log line (structlog)", in_file("structlog/")),
    ("metrics (prometheus_client)", in_file("prometheus_client/")),
    ("CORS (api/cors.py)", in_file("gateway/api/cors.py")),
]

# where the innermost frame is (self shares, adding up to 100 %)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("psycopg (driver: libpq calls, socket I/O, adaptation)", ("psycopg/",)),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy/",)),
    ("gunicorn", ("gunicorn/",)),
    ("Flask + werkzeug", ("flask/", "werkzeug/")),
    ("authlib + cryptography", ("authlib/", "cryptography/")),
    ("json", ("json/",)),
    ("structlog + prometheus_client", ("structlog/", "prometheus_client/")),
    ("marshmallow", ("marshmallow/",)),
    ("gateway/", ("gateway/",)),
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
    layers = []
    for label, prefixes in LAYERS:
        n = sum(c for s, c in stacks.items() if s[-1][1].startswith(prefixes))
        layers.append((label, round(100 * n / total, 1)))
    known = sum(pct for _, pct in layers)
    layers.append(("other (stdlib, ...)", round(100 - known, 1)))
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
    lines.append("  innermost frame by library (self %):")
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
