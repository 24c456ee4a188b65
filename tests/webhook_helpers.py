"""Helpers and fixtures (a plugin of tests/conftest.py) for the webhook tests: a real local
receiver, subscriptions to it, workers, deliveries in a given state."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from receiver import Receiver

from gateway.services import webhooks
from gateway.services.webhooks_worker import Worker

UNUSED_URL = "http://127.0.0.1:9/hook"  # the discard port: nothing answers there


def failed_delivery(gw, url: str = UNUSED_URL) -> tuple[str, str]:
    """A new subscription with one delivery that failed finally; (webhook_id, delivery_id)."""
    created = webhooks.create(gw, "cli", {"url": url, "events": ["policy.changed"]})
    with gw.db.write() as s:
        webhooks.emit(gw, s, "policy.changed", {"policy_version": "test", "reconsent_required": []})
    with gw.db.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 8, next_attempt_at = NULL, "
            "finished_at = occurred_at, last_attempt_at = occurred_at WHERE webhook_id = :w"),
            {"w": created["webhook_id"]})
        number = conn.execute(sa.text("SELECT id FROM webhook_deliveries WHERE webhook_id = :w"),
                              {"w": created["webhook_id"]}).scalar_one()
    return created["webhook_id"], f"dlv_{number}"


def outbox(gw) -> list[dict]:
    """Every delivery row as a dict, oldest first."""
    with gw.db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT * FROM webhook_deliveries ORDER BY id"))]


# -- fixtures (test modules import them by name) ----------------------------------------------


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (tests/receiver.py)."""
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def subscribe(gw):
    """subscribe(url, events=(every type), purposes=None) -> the subscription, with its secret."""

    def make(url, events=("consent.changed", "subject.erased", "subject.linked", "policy.changed"),
             purposes=None, description=None):
        values = {"url": url, "events": list(events), "description": description}
        if purposes is not None:
            values["purposes"] = list(purposes)
        return webhooks.create(gw, "cli", values)

    return make


@pytest.fixture
def worker(gw):
    """worker(**Worker options) -> a delivery worker (jitter fixed at the schedule's middle)."""
    made = []

    def make(**kwargs):
        w = Worker(gw, rand=kwargs.pop("rand", lambda: 0.5), **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
