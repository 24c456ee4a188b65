"""Webhooks end to end in one process, on both engines: every change emits its event in its own
transaction, a real local receiver gets it signed (checked with the standardwebhooks library),
retries follow API.md's schedule, and nothing is lost or sent out of order."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from receiver import Receiver, verifies
from standardwebhooks.webhooks import Webhook as StandardWebhook
from webhook_helpers import outbox

from gateway.core import webhooks as hooks
from gateway.core.actor import CLI, Actor
from gateway.core.errors import Conflict, InvalidRequest, NotFound
from gateway.services import consent, profiles, webhooks
from gateway.services.webhooks_worker import Worker

BANNER = Actor(kind="property", id="prop_test")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TC_STRING = "CQuIxQAQuIxQAEsACBENCWFgAIwAAAHAAAYgAtwAgAQABbAAAAAA.IBAQAwAQABbAEAAA.cYAAAAAAAAAA"


def audit_types(gw, type_: str) -> list[dict]:
    with gw.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT data FROM audit_events WHERE type = :t ORDER BY id"),
                            {"t": type_}).scalars().all()
    return [r if isinstance(r, dict) else json.loads(r) for r in rows]


def events_of(receiver, secret, type_=None, path=None) -> list[dict]:
    bodies = receiver.verified(secret, path)
    return [b for b in bodies if type_ is None or b["type"] == type_]


# -- what is emitted, and in which transaction -----------------------------------------------


def test_the_delivery_commits_with_the_change_or_not_at_all(gw, subscribe):
    subscribe("http://127.0.0.1:9/x", events=["consent.changed"])
    with pytest.raises(RuntimeError), gw.db.write() as s:
        queued = webhooks.emit(gw, s, "consent.changed", {"subject_id": "s-1", "changes": []},
                               subject="s-1")
        assert queued == 1
        raise RuntimeError("the change fails after its event was queued")
    assert outbox(gw) == []
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    rows = outbox(gw)
    assert [(r["event_type"], r["status"], r["attempts"]) for r in rows] == [
        ("consent.changed", "pending", 0)]
    assert rows[0]["ordering_key"] == gw.pseudonymize("s-1")


def test_every_cause_of_a_status_change_is_sent(gw, receiver, subscribe, worker):
    hook = subscribe(receiver.url, events=["consent.changed"])
    consent.record_consent(gw, BANNER, subject_id="s-banner", purposes={"personalization": "granted"})
    consent.record_consent(gw, CLI, subject_id="s-api", purposes={"ads": "granted"})
    consent.record_consent(gw, BANNER, subject_id="s-api", purposes={"ads": "granted"},
                           gpc=True)
    consent.record_consent(gw, BANNER, subject_id="s-tcf", tc_string=TC_STRING)
    consent.withdraw_all(gw, BANNER, "s-banner")
    profiles.erase_subject(gw, CLI, "s-tcf")
    worker().drain()
    got = [(e["data"]["subject_id"], e["data"]["method"],
            [(c["purpose"], c["from"], c["to"]) for c in e["data"]["changes"]])
           for e in events_of(receiver, hook["secret"])]
    assert ("s-banner", "banner", [("personalization", "not_asked", "granted")]) in got
    assert ("s-api", "api", [("ads", "not_asked", "granted")]) in got
    gpc = [g for g in got if g[:2] == ("s-api", "gpc")]
    assert len(gpc) == 1 and ("ads", "granted", "withdrawn") in gpc[0][2]
    withdrawn = [g for g in got if g[0] == "s-banner" and ("personalization", "granted", "withdrawn")
                 in g[2]]
    assert len(withdrawn) == 1 and withdrawn[0][1] == "banner"
    tcf = [g for g in got if g[0] == "s-tcf" and g[1] in ("tcf", "banner")]
    assert tcf and all(to in ("granted", "denied") for _, _, to in tcf[0][2])
    erasure = [g for g in got if g[0] == "s-tcf" and g[1] == "erasure"]
    assert len(erasure) == 1 and ("analytics", "permitted", "objected") in erasure[0][2]
    body = events_of(receiver, hook["secret"])[0]
    assert set(body) == {"type", "timestamp", "data"}
    assert {"subject_id", "changes", "receipt_id", "method", "recorded_at", "policy_version"} <= set(
        body["data"])
    assert {"purpose", "from", "to", "effective"} <= set(body["data"]["changes"][0])


def test_choices_that_change_nothing_send_nothing(gw, subscribe):
    subscribe("http://127.0.0.1:9/x", events=["consent.changed"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "denied"})
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "denied"})
    assert len(outbox(gw)) == 1


def test_a_purpose_filter_sends_only_its_purposes(gw, receiver, subscribe, worker):
    ads = subscribe(receiver.url, events=["consent.changed"], purposes=["ads"])
    consent.record_consent(gw, CLI, subject_id="s-1",
                           purposes={"ads": "granted", "personalization": "granted"})
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"personalization": "denied"})
    worker().drain()
    got = events_of(receiver, ads["secret"])
    assert [[c["purpose"] for c in e["data"]["changes"]] for e in got] == [["ads"]]


def test_subject_erased_and_the_erasure_s_consent_changes(gw, receiver, subscribe, worker):
    hook = subscribe(receiver.url, events=["consent.changed", "subject.erased"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    erased = profiles.erase_subject(gw, CLI, "s-1")
    worker().drain()
    got = events_of(receiver, hook["secret"])
    assert [e["type"] for e in got] == ["consent.changed", "consent.changed", "subject.erased"]
    assert got[2]["data"] == {"subject_id": "s-1", "erased_at": erased["erased_at"]}
    assert got[1]["data"]["method"] == "erasure"


def test_emit_is_the_one_call_for_other_changes(gw, receiver, subscribe, worker):
    """subject.linked comes from visitor linking, which calls emit() in its own transaction."""
    hook = subscribe(receiver.url, events=["subject.linked", "consent.changed"])
    only_consents = subscribe(receiver.url + "/other", events=["consent.changed"])
    consent.record_consent(gw, CLI, subject_id="acct-42", purposes={"ads": "granted"})
    now = gw.now()
    with gw.db.write() as s:
        queued = webhooks.emit(gw, s, "subject.linked",
                               {"subject_id": "acct-42", "visitor_id": "vis_abc",
                                "linked_at": now.isoformat().replace("+00:00", "Z")},
                               subject="acct-42", at=now)
    assert queued == 1  # the subscription without subject.linked gets none
    worker().drain()
    got = events_of(receiver, hook["secret"], path="/hooks")
    assert [e["type"] for e in got] == ["consent.changed", "subject.linked"]
    assert got[-1]["data"]["visitor_id"] == "vis_abc"
    others = events_of(receiver, only_consents["secret"], path="/hooks/other")
    assert [e["type"] for e in others] == ["consent.changed"]
    with pytest.raises(ValueError), gw.db.write() as s:
        webhooks.emit(gw, s, "subject.renamed", {})


# -- policy changes and changes noticed at a read ----------------------------------------------


@pytest.fixture
def bumped_policy(tmp_path, policy_dir) -> Path:
    """The demo policy with the version of `personalization` one higher."""
    target = tmp_path / "policy-v2"
    shutil.copytree(policy_dir, target)
    path = target / "purposes.yaml"
    text = path.read_text()
    assert "  - id: personalization\n    version: 2\n" in text
    path.write_text(text.replace("  - id: personalization\n    version: 2\n",
                                 "  - id: personalization\n    version: 3\n"))
    return target


def test_a_new_policy_version_is_sent_and_reconsent_is_noticed_at_a_read(
        gw, app_config, bumped_policy, receiver, subscribe, worker):
    from gateway import create_app

    hook = subscribe(receiver.url)
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"personalization": "granted"})
    worker().drain()
    app2 = create_app({**app_config, "GATEWAY_POLICY_DIR": str(bumped_policy)})
    gw2 = app2.extensions["gateway"]
    try:
        consent.record_consent(gw2, CLI, subject_id="s-other", purposes={"ads": "denied"})
        state = consent.current_state(gw2, "s-1")
        assert {p["purpose"]: p["status"] for p in state["purposes"]}["personalization"] == \
            "reconsent_required"
        consent.current_state(gw2, "s-1")  # the second read announces nothing new
        Worker(gw2, rand=lambda: 0.5).drain()
    finally:
        gw2.db.dispose()
    policies = events_of(receiver, hook["secret"], "policy.changed")
    assert policies[-1]["data"] == {"policy_version": gw2.policy.version,
                                    "reconsent_required": ["personalization"]}
    noticed = [e for e in events_of(receiver, hook["secret"], "consent.changed")
               if e["data"]["method"] == "policy_change"]
    assert len(noticed) == 1
    assert noticed[0]["data"]["subject_id"] == "s-1"
    assert noticed[0]["data"]["changes"] == [{
        "purpose": "personalization", "from": "granted", "to": "reconsent_required",
        "effective": False, "method": "policy_change", "expires_at": noticed[0]["data"]["changes"][0][
            "expires_at"]}]


def test_an_expiry_is_noticed_at_a_read_once(gw, subscribe):
    subscribe("http://127.0.0.1:9/x", events=["consent.changed"])
    with freeze_time(T0) as frozen:
        consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
        assert len(outbox(gw)) == 1
        lifetime = gw.policy.purpose("ads").lifetime_days
        frozen.tick(timedelta(days=lifetime + 1))
        assert {p["purpose"]: p["status"] for p in consent.current_state(gw, "s-1")["purposes"]}[
            "ads"] == "expired"
        consent.current_state(gw, "s-1")
    rows = outbox(gw)
    assert len(rows) == 2
    body = json.loads(webhooks.open_body(gw, rows[1]["message_id"], rows[1]["kek_id"],
                                         bytes(rows[1]["wrapped_key"]), bytes(rows[1]["payload"])))
    assert body["data"]["method"] == "expiry"
    assert body["data"]["changes"][0]["to"] == "expired"


def test_reads_of_a_subject_without_derived_changes_write_nothing(gw, subscribe):
    subscribe("http://127.0.0.1:9/x", events=["consent.changed"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    consent.current_state(gw, "s-1")
    consent.current_state(gw, "never-seen")
    assert len(outbox(gw)) == 1


# -- signing, retries, failure ----------------------------------------------------------------


def test_deliveries_are_signed_and_keep_their_webhook_id(gw, receiver, subscribe, worker):
    hook = subscribe(receiver.url, events=["consent.changed"])
    assert hook["secret"].startswith("whsec_")
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    worker().drain()
    [got] = receiver.received
    assert verifies(hook["secret"], got)
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"
    assert not verifies("whsec_" + "A" * 43 + "=", got)
    tampered = type(got)(got.headers, got.body.replace(b"s-1", b"s-2"), got.at)
    assert not verifies(hook["secret"], tampered)
    [row] = outbox(gw)
    assert row["message_id"] == got.message_id and row["status"] == "delivered"
    assert row["payload"] is None and row["wrapped_key"] is None and row["kek_id"] is None
    assert row["response_status"] == 200 and row["attempts"] == 1


def test_retries_follow_the_schedule_then_fail_and_are_audited(gw, subscribe, worker):
    receiver = Receiver(behaviour=lambda n: (503, 0.0)).start()
    try:
        hook = subscribe(receiver.url, events=["consent.changed"])
        w = worker()
        with freeze_time(T0) as frozen:
            consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
            waits = []
            for _ in range(hooks.MAX_ATTEMPTS):
                assert w.run_once() == 1
                row = outbox(gw)[0]
                if row["status"] == "failed":
                    break
                assert row["status"] == "retrying" and row["response_status"] == 503
                wait = row["next_attempt_at"]
                wait = (wait if isinstance(wait, datetime) else datetime.fromisoformat(str(wait)))
                wait = wait.replace(tzinfo=UTC) if wait.tzinfo is None else wait
                waits.append(round((wait - gw.now()).total_seconds()))
                frozen.tick(timedelta(seconds=waits[-1] - 1))
                assert w.run_once() == 0, "sent before its time"
                frozen.tick(timedelta(seconds=1))
        assert waits == list(hooks.RETRY_DELAYS)
        row = outbox(gw)[0]
        assert (row["status"], row["attempts"], row["error"]) == ("failed", 8, "http_status")
        assert receiver.requests == 8
        [failed] = audit_types(gw, "webhook.failed")
        assert failed["webhook_id"] == hook["webhook_id"] and failed["attempts"] == 8
        assert "subject_id" not in json.dumps(failed)
        log = webhooks.deliveries(gw, hook["webhook_id"])["deliveries"]
        assert log[0]["status"] == "failed" and log[0]["retryable"] is True
        assert set(log[0]) >= {"status", "attempts", "response_status", "latency_ms"}
        assert "payload" not in log[0] and "data" not in log[0]
    finally:
        receiver.stop()


def test_retry_sends_a_failed_delivery_again_with_the_same_id(gw, receiver, subscribe, worker):
    from webhook_helpers import failed_delivery

    webhook_id, delivery_id = failed_delivery(gw, receiver.url)
    with pytest.raises(NotFound):
        webhooks.retry(gw, CLI, webhook_id, "dlv_999999")
    with pytest.raises(NotFound):
        webhooks.retry(gw, CLI, webhook_id, "nonsense")
    again = webhooks.retry(gw, CLI, webhook_id, delivery_id)
    assert again["status"] == "pending" and again["attempts"] == 0
    with pytest.raises(Conflict):
        webhooks.retry(gw, CLI, webhook_id, delivery_id)  # not failed (any more)
    worker().drain()
    [got] = receiver.received
    assert got.message_id == again["message_id"]
    assert audit_types(gw, "webhook.retried")[0]["message_id"] == again["message_id"]


def test_a_failed_delivery_keeps_its_body_for_the_retry_window_only(gw, subscribe, worker):
    from webhook_helpers import failed_delivery

    webhook_id, delivery_id = failed_delivery(gw)
    assert outbox(gw)[0]["payload"] is not None
    w = worker()
    with freeze_time(datetime.now(UTC) + timedelta(days=gw.settings.webhook_retry_window_days, hours=1)):
        swept = w.sweep()
    assert swept["bodies_deleted"] == 1
    assert outbox(gw)[0]["payload"] is None
    with pytest.raises(Conflict) as exc:
        webhooks.retry(gw, CLI, webhook_id, delivery_id)
    assert exc.value.extra["code"] == "body_deleted"


def test_five_days_of_failures_disable_the_subscription(gw, subscribe, worker):
    receiver = Receiver(behaviour=lambda n: (500, 0.0)).start()
    try:
        hook = subscribe(receiver.url, events=["consent.changed"])
        w = worker()
        with freeze_time(T0) as frozen:
            for day in range(5):
                consent.record_consent(gw, CLI, subject_id=f"s-{day}", purposes={"ads": "granted"})
                w.drain()
                assert webhooks.show(gw, hook["webhook_id"])["status"] == "active"
                frozen.tick(timedelta(days=1) - timedelta(seconds=1 if day == 4 else 0))
            w.sweep()
            assert webhooks.show(gw, hook["webhook_id"])["status"] == "active"
            frozen.tick(timedelta(seconds=1))  # five days since the first failure
            w.sweep()
        shown = webhooks.show(gw, hook["webhook_id"])
        assert (shown["status"], shown["disabled_reason"]) == ("disabled", "failing")
        [disabled] = audit_types(gw, "webhook.disabled")
        assert disabled["webhook_id"] == hook["webhook_id"]
    finally:
        receiver.stop()


def test_a_success_ends_the_failing_streak(gw, subscribe, worker):
    answers = {"status": 500}
    receiver = Receiver(behaviour=lambda n: (answers["status"], 0.0)).start()
    try:
        hook = subscribe(receiver.url, events=["consent.changed"])
        w = worker()
        with freeze_time(T0) as frozen:
            consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
            w.run_once()
            assert webhooks.show(gw, hook["webhook_id"])["failing_since"] is not None
            frozen.tick(timedelta(days=4))
            answers["status"] = 204
            consent.record_consent(gw, CLI, subject_id="s-2", purposes={"ads": "granted"})
            w.drain()
            assert webhooks.show(gw, hook["webhook_id"])["failing_since"] is None
            frozen.tick(timedelta(days=2))
            w.sweep()
        assert webhooks.show(gw, hook["webhook_id"])["status"] == "active"
    finally:
        receiver.stop()


def test_a_rotated_secret_signs_beside_the_new_one_for_24_hours(gw, receiver, subscribe, worker):
    hook = subscribe(receiver.url, events=["consent.changed"])
    old = hook["secret"]
    w = worker()
    with freeze_time(T0) as frozen:
        rotated = webhooks.rotate_secret(gw, CLI, hook["webhook_id"])
        new = rotated["secret"]
        assert new != old and rotated["previous_secret_until"] == "2026-03-03T10:00:00Z"
        consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
        w.drain()
        first = receiver.received[-1]
        assert len(first.headers["webhook-signature"].split(" ")) == 2
        assert StandardWebhook(old).verify(first.body, first.headers)
        assert StandardWebhook(new).verify(first.body, first.headers)
        frozen.tick(timedelta(hours=24))
        consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "denied"})
        w.drain()
        second = receiver.received[-1]
        assert len(second.headers["webhook-signature"].split(" ")) == 1
        assert verifies(new, second) and not verifies(old, second)
    assert audit_types(gw, "webhook.secret_rotated")


def test_each_subject_s_order_holds_while_an_earlier_delivery_retries(gw, subscribe, worker):
    fail_first = {"left": 1}

    def behaviour(n):
        if fail_first["left"]:
            fail_first["left"] -= 1
            return 500, 0.0
        return 200, 0.0

    receiver = Receiver(behaviour=behaviour).start()
    try:
        hook = subscribe(receiver.url, events=["consent.changed"])
        w = worker(concurrency=1)  # posts in claim order: s-1's first is the one that fails
        with freeze_time(T0) as frozen:
            for value in ("granted", "denied", "granted"):
                consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": value})
            consent.record_consent(gw, CLI, subject_id="s-2", purposes={"ads": "granted"})
            w.drain()  # s-1's first fails; s-1's others wait; s-2's goes
            assert [e["data"]["subject_id"] for e in events_of(receiver, hook["secret"])] == ["s-2"]
            frozen.tick(timedelta(seconds=10))
            w.drain()
            got = [(e["data"]["subject_id"], e["data"]["changes"][0]["to"])
                   for e in events_of(receiver, hook["secret"])]
        assert got == [("s-2", "granted"), ("s-1", "granted"), ("s-1", "withdrawn"), ("s-1", "granted")]
    finally:
        receiver.stop()


def test_a_receiver_that_fails_then_answers_slowly_then_recovers_gets_everything(app_config):
    """Real time: 5xx for the first posts, then answers slower than the timeout (it still
    processes them: duplicates follow), then fine. Waiting for each retry is skipped by making
    the retrying deliveries due."""
    from gateway import create_app

    app = create_app({**app_config, "GATEWAY_WEBHOOK_TIMEOUT": "1"})
    gw = app.extensions["gateway"]

    def behaviour(n):
        if n < 6:
            return 503, 0.0
        if n < 10:
            return 200, 1.6  # too late: not delivered, sent again
        return 200, 0.0

    receiver = Receiver(behaviour=behaviour).start()
    w = Worker(gw, rand=lambda: 0.0, concurrency=4)
    try:
        hook = webhooks.create(gw, "cli", {"url": receiver.url, "events": ["consent.changed"]})
        for n in range(12):
            consent.record_consent(gw, CLI, subject_id=f"s-{n % 4}",
                                   purposes={"ads": ("granted", "denied")[n // 4 % 2]})
        acknowledged = outbox(gw)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            w.drain()
            if {r["status"] for r in outbox(gw)} == {"delivered"}:
                break
            with gw.db.engine.begin() as conn:  # the next retry is due now
                conn.execute(sa.text("UPDATE webhook_deliveries SET next_attempt_at = :now "
                                     "WHERE status = 'retrying'"), {"now": gw.now().replace(tzinfo=None)
                                                                    if gw.db.dialect == "sqlite"
                                                                    else gw.now()})
        rows = outbox(gw)
        assert {r["status"] for r in rows} == {"delivered"}, [(r["status"], r["attempts"]) for r in rows]
        assert len(rows) == len(acknowledged) == 12
        assert {r.message_id for r in receiver.received} == {r["message_id"] for r in rows}
        assert len(receiver.received) > len(rows), "the slow answers were processed and sent again"
        assert any(r["attempts"] > 1 for r in rows)
        assert any(r["error"] is None and r["response_status"] == 200 for r in rows)
        # each subject's events, duplicates dropped by webhook-id, in the order of its receipts
        seen, per_subject = set(), defaultdict(list)
        for got in receiver.received:
            if got.message_id in seen:
                continue
            seen.add(got.message_id)
            assert verifies(hook["secret"], got)
            per_subject[got.json["data"]["subject_id"]].append(got.json["data"]["receipt_id"])
        with gw.db.engine.connect() as conn:
            order = list(dict.fromkeys(conn.execute(sa.text(
                "SELECT receipt_id FROM consent_events ORDER BY id")).scalars()))
        for receipts in per_subject.values():
            assert receipts == [r for r in order if r in set(receipts)]
    finally:
        w.close()
        receiver.stop()
        gw.db.dispose()


# -- subscriptions ----------------------------------------------------------------------------


def test_subscription_fields_are_checked(gw):
    with pytest.raises(InvalidRequest) as exc:
        webhooks.create(gw, "cli", {"url": "ftp://x", "events": ["nope"], "purposes": ["nope"],
                                    "description": "x" * 501})
    assert {e.field for e in exc.value.errors} == {"url", "events[0]", "purposes[0]", "description"}
    with pytest.raises(InvalidRequest):
        webhooks.create(gw, "cli", {"url": "http://127.0.0.1:9/", "events": []})
    with pytest.raises(InvalidRequest):
        webhooks.create(gw, "cli", {"url": "http://127.0.0.1:9/", "events": ["consent.changed"],
                                    "purposes": []})
    with pytest.raises(NotFound):
        webhooks.show(gw, "whk_nope")
    with pytest.raises(InvalidRequest):
        webhooks.update(gw, "cli", "whk_nope", {"status": "paused"})
    assert webhooks.list_all(gw) == {"webhooks": []}


def test_production_requires_https(app_config):
    from gateway.core.errors import FieldError
    from gateway.settings import Settings

    settings = Settings.load(environ={}, overrides={**app_config, "GATEWAY_ENV": "production",
                                                    "GATEWAY_ISSUER": "https://consent.example"})
    assert settings.webhook_allow_private is False
    assert hooks.url_problems("http://crm.example/", https_only=settings.production) == [
        FieldError("url", "must be https in production")]


@pytest.fixture
def strict(app_config):
    from gateway import create_app

    app = create_app({**app_config, "GATEWAY_WEBHOOK_ALLOW_PRIVATE": "false"})
    yield app.extensions["gateway"]
    app.extensions["gateway"].db.dispose()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/x", "http://localhost/x", "http://10.0.0.1/x",
                                 "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
                                 "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x"])
def test_private_targets_are_refused_at_subscribe_time(strict, url):
    with pytest.raises(InvalidRequest) as exc:
        webhooks.create(strict, "cli", {"url": url, "events": ["consent.changed"]})
    assert exc.value.errors[0].field == "url"
    assert "private" in exc.value.errors[0].message


def test_private_targets_are_refused_at_delivery_time(strict, monkeypatch, receiver):
    """A name that resolved to a public address at subscribe time and to a private one now."""
    from gateway.services import webhooks_http

    answers = {"crm.example": ["93.184.215.14"]}
    monkeypatch.setattr(webhooks_http, "resolve", lambda host, port: answers[host])
    hook = webhooks.create(strict, "cli", {"url": "https://crm.example/hooks",
                                           "events": ["consent.changed"]})
    answers["crm.example"] = ["93.184.215.14", "127.0.0.1"]
    consent.record_consent(strict, CLI, subject_id="s-1", purposes={"ads": "granted"})
    w = Worker(strict, rand=lambda: 0.5)
    try:
        assert w.run_once() == 1
    finally:
        w.close()
    [row] = outbox(strict)
    assert (row["status"], row["error"], row["response_status"]) == ("retrying", "private_address", None)
    assert receiver.requests == 0
    assert hook["webhook_id"] == row["webhook_id"]


def test_a_disabled_subscription_keeps_its_deliveries_until_it_is_on_again(gw, receiver, subscribe,
                                                                           worker):
    hook = subscribe(receiver.url, events=["consent.changed"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    webhooks.disable(gw, CLI, hook["webhook_id"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "denied"})  # not queued
    w = worker()
    assert w.drain() == 0
    shown = webhooks.update(gw, CLI, hook["webhook_id"], {"status": "active"})
    assert shown["deliveries"]["pending"] == 1
    w.drain()
    assert [e["data"]["changes"][0]["to"] for e in events_of(receiver, hook["secret"])] == ["granted"]


def test_update_and_delete(gw, subscribe):
    hook = subscribe("http://127.0.0.1:9/x", events=["consent.changed"])
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    changed = webhooks.update(gw, CLI, hook["webhook_id"], {"purposes": ["ads"], "description": "CRM",
                                                             "events": ["consent.changed",
                                                                        "subject.erased"]})
    assert (changed["purposes"], changed["description"]) == (["ads"], "CRM")
    assert changed["events"] == ["consent.changed", "subject.erased"]
    gone = webhooks.delete(gw, CLI, hook["webhook_id"])
    assert gone["deliveries_deleted"] == 1
    assert outbox(gw) == []
    with pytest.raises(NotFound):
        webhooks.delete(gw, CLI, hook["webhook_id"])
    assert [e["webhook_id"] for e in audit_types(gw, "webhook.deleted")] == [hook["webhook_id"]]


def test_replay_sends_again_what_is_still_held(gw, receiver, subscribe, worker):
    from webhook_helpers import failed_delivery

    webhook_id, _ = failed_delivery(gw, receiver.url)
    consent.record_consent(gw, CLI, subject_id="s-1", purposes={"ads": "granted"})
    with gw.db.write() as s:
        webhooks.emit(gw, s, "consent.changed", {"subject_id": "s-2", "changes": [{"purpose": "ads"}]},
                      subject="s-2")
    worker().drain()  # the consent events of the subscription are delivered
    delivered = len(receiver.received)
    result = webhooks.replay(gw, CLI, webhook_id, datetime(2020, 1, 1, tzinfo=UTC))
    assert result["replayed"] == 1  # the failed policy.changed
    assert result["unavailable"] == delivered  # delivered: bodies with subject ids deleted
    worker().drain()
    assert receiver.received[-1].json["type"] == "policy.changed"
    assert audit_types(gw, "webhook.replayed")[0]["replayed"] == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_share_the_outbox_and_lose_nothing(gw, subscribe):
    def slowish(n):
        return 200, 0.003

    receiver = Receiver(behaviour=slowish).start()
    try:
        hook = subscribe(receiver.url, events=["consent.changed"])
        for n in range(120):
            consent.record_consent(gw, CLI, subject_id=f"s-{n % 40}",
                                   purposes={"ads": ("granted", "denied")[n // 40 % 2]})
        expected = {r["message_id"] for r in outbox(gw)}
        workers = [Worker(gw, concurrency=4, batch=8, name=f"w{i}") for i in range(2)]
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len({r.message_id for r in receiver.received}) < len(expected):
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert {r.message_id for r in receiver.received} == expected
        assert all(w.stats.delivered > 0 for w in workers), [w.stats for w in workers]
        assert sum(w.stats.delivered for w in workers) == len(expected)  # none sent twice
        assert len(receiver.received) == len(expected)
        per_subject = defaultdict(list)
        for e in events_of(receiver, hook["secret"]):
            per_subject[e["data"]["subject_id"]].append(e["data"]["changes"][0]["to"])
        assert all(v == ["granted", "withdrawn", "granted"] for v in per_subject.values())
    finally:
        receiver.stop()
