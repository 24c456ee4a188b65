"""`flask --app gateway webhooks …`: every command, readable errors, and `work --once`."""

from __future__ import annotations

import json

from receiver import verifies

from gateway.core.actor import CLI
from gateway.services import consent


def run(runner, *args):
    result = runner.invoke(args=["webhooks", *args])
    return result.exit_code, result.output


def test_the_commands(runner, gw, receiver):
    code, out = run(runner, "create", "--url", receiver.url, "--event", "consent.changed",
                    "--event", "subject.erased", "--purpose", "ads", "--description", "CRM")
    assert code == 0, out
    hook = json.loads(out)
    assert hook["secret"].startswith("whsec_") and hook["purposes"] == ["ads"]
    webhook_id = hook["webhook_id"]
    code, out = run(runner, "list")
    assert code == 0 and webhook_id in out and hook["secret"] not in out
    code, out = run(runner, "show", webhook_id)
    assert code == 0 and json.loads(out)["description"] == "CRM"

    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    code, out = run(runner, "work", "--once")
    assert code == 0, out
    assert json.loads(out)["delivered"] == 1
    assert verifies(hook["secret"], receiver.received[0])

    code, out = run(runner, "deliveries", webhook_id, "--status", "delivered")
    lines = json.loads(out)["deliveries"]
    assert code == 0 and [d["status"] for d in lines] == ["delivered"]
    assert "s-1" not in out

    code, out = run(runner, "rotate-secret", webhook_id)
    assert code == 0 and json.loads(out)["secret"] != hook["secret"]
    code, out = run(runner, "disable", webhook_id)
    assert code == 0 and json.loads(out)["status"] == "disabled"
    code, out = run(runner, "enable", webhook_id)
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out = run(runner, "replay", webhook_id, "--since", "2020-01-01T00:00:00Z")
    assert code == 0 and json.loads(out)["unavailable"] == 1
    code, out = run(runner, "delete", webhook_id)
    assert code == 0 and json.loads(out)["deliveries_deleted"] == 1


def test_retry_of_a_failed_delivery(runner, gw, receiver):
    from webhook_helpers import failed_delivery

    webhook_id, delivery_id = failed_delivery(gw, receiver.url)
    code, out = run(runner, "retry", webhook_id, delivery_id)
    assert code == 0 and json.loads(out)["status"] == "pending"
    code, out = run(runner, "retry", webhook_id, delivery_id)
    assert code == 1 and "only a failed delivery" in out
    assert run(runner, "work", "--once")[0] == 0
    assert len(receiver.received) == 1


def test_errors_are_one_line(runner):
    for args, message in [
        (("create", "--url", "ftp://x", "--event", "consent.changed"), "url: must be an absolute"),
        (("create", "--url", "http://127.0.0.1:9/", "--event", "nope"), "events[0]: unknown event type"),
        (("show", "whk_nope"), "no webhook with id"),
        (("disable", "whk_nope"), "no webhook with id"),
        (("retry", "whk_nope", "dlv_1"), "no webhook with id"),
        (("replay", "whk_nope", "--since", "yesterday"), "--since must be an RFC 3339 time"),
    ]:
        code, out = run(runner, *args)
        assert code == 1, (args, out)
        assert message in out and "Traceback" not in out
