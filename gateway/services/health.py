"""Readiness: database reachable, migrations at head, policy loaded."""

from __future__ import annotations

from ..store import migrate
from ..store.errors import StoreUnavailable
from .context import Gateway


def readiness(gw: Gateway) -> dict:
    checks = {"database": "ok", "migrations": "ok", "policy": gw.policy.version}
    try:
        gw.db.ping()
        if not migrate.at_head(gw.db.engine):
            checks["migrations"] = "behind: run 'flask --app gateway db upgrade'"
    except StoreUnavailable as exc:
        checks["database"] = f"unreachable ({exc.cause})"
        checks["migrations"] = "unknown"
    ready = checks["database"] == "ok" and checks["migrations"] == "ok"
    return {"status": "ready" if ready else "not_ready", "checks": checks}
