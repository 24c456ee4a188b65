"""Helpers for tests that need webhook subscriptions and deliveries in a given state."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.services import webhooks

UNUSED_URL = "http://127.0.0.1:9/hook"  # the discard port: nothing answers there


def failed_delivery(gw, url: str = UNUSED_URL) -> tuple[str, str]:
    """A new subscription with one delivery that failed finally; (webhook_id, delivery_id)."""
    created = webhooks.create(gw, "cli", {"url": url, "events": ["policy.changed"]})
    with gw.db.write() as s:
        webhooks.emit(gw, s, "policy.changed", {"policy_version": "test", "reconsent_required": []})
    with gw.db.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 8, next_attempt_at = NULL, "
            "finished_at = last_attempt_at WHERE webhook_id = :w"), {"w": created["webhook_id"]})
        number = conn.execute(sa.text("SELECT id FROM webhook_deliveries WHERE webhook_id = :w"),
                              {"w": created["webhook_id"]}).scalar_one()
    return created["webhook_id"], f"dlv_{number}"


def outbox(gw) -> list[dict]:
    """Every delivery row as a dict, oldest first."""
    with gw.db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT * FROM webhook_deliveries ORDER BY id"))]
