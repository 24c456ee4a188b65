"""Two versions of the gateway measured side by side in one run: `make bench-compare BEFORE=<rev>`.

    .venv/bin/python bench/compare.py --before REV [--rounds N] [--keep] [-- BENCH_ARGS ...]

A change that should not cost speed (a refactoring) or that promises a bound ("within 10 %")
is judged against the version before it, on the same machine, in the same minutes. This
script checks REV out into a temporary worktree with its own virtualenv (`make install`
there), then runs `bench/run.py BENCH_ARGS` of the old checkout and of this one in turn,
ROUNDS times (old, new, old, new, ...), so that drift of the machine falls on both alike.
Each checkout runs its own bench/run.py, so a change of the API is measured as each
version is meant to be called. It prints, per scenario and engine, the median requests
per second and p50 and p99 latency of both, and the change in per cent, and writes
bench/results/compare.json.
"""

# The commands run are git, make and the checkouts' own Python, with arguments from the
# operator's command line: nothing untrusted reaches them.
# ruff: noqa: S603, S607

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def checkout(rev: str, where: Path) -> Path:
    """REV in its own worktree with its own virtualenv."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True, text=True)
    log(f"compare: {rev} checked out in {where}; installing its virtualenv")
    subprocess.run(["make", "-C", str(where), "install"], check=True)
    return where


def run_once(tree: Path, bench_args: list[str]) -> dict[str, Any]:
    python = tree / ".venv" / "bin" / "python"
    subprocess.run([str(python), "bench/run.py", *bench_args], cwd=tree, check=True)
    return json.loads((tree / "bench" / "results" / "latest.json").read_text())


def rows(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    for engine in result["engines"]:
        for row in engine["scenarios"]:
            out[(row["scenario"], row["engine"])] = {
                "rps": row["rps"], "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"]}
    return out


def medians(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    per_run = [rows(r) for r in runs]
    keys = [k for k in per_run[0] if all(k in r for r in per_run)]
    return {k: {m: statistics.median(r[k][m] for r in per_run) for m in ("rps", "p50_ms", "p99_ms")}
            for k in keys}


def change(before: float, after: float) -> str:
    return f"{(after - before) / before * 100:+.1f} %" if before else "-"


def table(before: dict, after: dict, labels: tuple[str, str]) -> str:
    old, new = labels
    lines = [f"| scenario | engine | req/s {old} | req/s {new} | change | p50 ms {old} | "
             f"p50 ms {new} | change | p99 ms {old} | p99 ms {new} |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in before:
        if key not in after:
            continue
        b, a = before[key], after[key]
        lines.append(f"| {key[0]} | {key[1]} | {b['rps']:,.0f} | {a['rps']:,.0f} | "
                     f"{change(b['rps'], a['rps'])} | {b['p50_ms']:.2f} | {a['p50_ms']:.2f} | "
                     f"{change(b['p50_ms'], a['p50_ms'])} | {b['p99_ms']:.2f} | {a['p99_ms']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each version (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the old checkout afterwards")
    parser.add_argument("bench_args", nargs="*", help="passed to bench/run.py (after --)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.strip()
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before],
                             check=True, capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        parser.error(f"{args.before!r} is not a revision of this repository")
    where = Path(tempfile.mkdtemp(prefix=f"cg-compare-{rev}-")) / "tree"
    old_tree = checkout(args.before, where)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    try:
        for n in range(args.rounds):
            log(f"\n== round {n + 1} of {args.rounds}: {rev} (before) ==")
            runs["before"].append(run_once(old_tree, args.bench_args))
            log(f"\n== round {n + 1} of {args.rounds}: {head} (this checkout) ==")
            runs["after"].append(run_once(ROOT, args.bench_args))
    finally:
        if not args.keep:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                           check=False, capture_output=True)
            shutil.rmtree(where.parent, ignore_errors=True)
    before, after = medians(runs["before"]), medians(runs["after"])
    text = table(before, after, (rev, head))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(
        {"before": rev, "after": head, "rounds": args.rounds, "bench_args": args.bench_args,
         "table": text, "runs": runs}, indent=2, default=str) + "\n")
    print(f"\nmedians of {args.rounds} round(s) each, {rev} and {head} alternating:\n\n{text}")


if __name__ == "__main__":
    main()
