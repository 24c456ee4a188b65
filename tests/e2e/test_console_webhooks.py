"""The DPO console's webhooks: the subscriptions, their delivery log with failed deliveries
first, and the retry button, in a real browser against a real gateway (whose gunicorn master
runs the delivery worker)."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from receiver import Receiver
from test_browser import VIEWPORT, browser, playwright_api, server  # noqa: F401

from gateway.store.db import make_engine


@pytest.fixture(scope="module")
def hook_receiver():
    answers = {"status": 500}
    r = Receiver(behaviour=lambda n: (answers["status"], 0.0)).start()
    r.answers = answers
    yield r
    r.stop()


def test_failed_deliveries_come_first_and_retry_delivers(browser, server, hook_receiver):  # noqa: F811
    dpo = json.loads(server.cli("clients", "create", "--name", "DPO hooks", "--scope", "webhooks:manage",
                                "--scope", "audit:read"))
    hook = json.loads(server.cli("webhooks", "create", "--url", hook_receiver.url, "--event",
                                 "consent.changed", "--description", "Newsletter tool"))
    # one delivery the worker sends, one that failed for good (as after 8 failed attempts)
    hook_receiver.answers["status"] = 200
    server.cli("subjects", "erase", "console-hook-1", "--yes")
    deadline = time.monotonic() + 30
    while not hook_receiver.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hook_receiver.received, "the master's delivery worker did not deliver"
    hook_receiver.answers["status"] = 500
    server.cli("subjects", "erase", "console-hook-2", "--yes")
    engine = make_engine(server.env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 8, next_attempt_at = NULL, "
            "finished_at = occurred_at WHERE status <> 'delivered'"))
    engine.dispose()
    hook_receiver.answers["status"] = 200
    before = len(hook_receiver.received)

    ctx = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    page.goto(f"{server.url}/console")
    page.get_by_label("Client id").fill(dpo["client_id"])
    page.get_by_label("Client secret").fill(dpo["client_secret"])
    page.get_by_role("button", name="Sign in").click()
    row = page.locator(f"#webhooks-table tr[data-webhook='{hook['webhook_id']}']")
    row.wait_for()
    assert "Newsletter tool" in row.inner_text() and "active" in row.inner_text()
    row.get_by_role("button", name="Deliveries").click()
    lines = page.locator("#deliveries-table tbody tr")
    lines.first.wait_for()
    statuses = [lines.nth(i).get_attribute("data-status") for i in range(lines.count())]
    assert statuses[0] == "failed" and "delivered" in statuses
    assert statuses == sorted(statuses, key=lambda s: s != "failed")
    assert "console-hook" not in page.locator("#deliveries-table").inner_text()
    page.screenshot(path=str(server.instance.parent / "console-webhooks.png"), full_page=True)
    lines.first.get_by_role("button", name="Retry").click()
    page.locator("#deliveries-table tbody tr").first.wait_for()
    deadline = time.monotonic() + 30
    while len(hook_receiver.received) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(hook_receiver.received) == before + 1
    row.get_by_role("button", name="Deliveries").click()
    page.wait_for_function("() => !document.querySelector(\"#deliveries-table tr[data-status='failed']\")"
                           " && !document.querySelector(\"#deliveries-table tr[data-status='pending']\")")
    ctx.close()
