"""The pure part of webhooks: the retry schedule, changes, bodies, URLs and addresses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import webhooks as hooks
from gateway.core.consent import PurposeState

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_the_schedule_is_api_md_s_then_failed():
    assert [hooks.retry_delay(n, 0.5) for n in range(1, 8)] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert hooks.retry_delay(8, 0.5) is None
    assert hooks.retry_delay(0, 0.5) is None
    assert hooks.MAX_ATTEMPTS == 8


@given(st.integers(1, 7), st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_a_fifth_of_the_schedule(attempts, rand):
    base = hooks.RETRY_DELAYS[attempts - 1]
    delay = hooks.retry_delay(attempts, rand)
    assert 0.8 * base <= delay < 1.2 * base + 1e-9


def test_jitter_spreads_the_retries():
    assert len({hooks.retry_delay(1, r / 10) for r in range(10)}) == 10


def state(purpose, status, effective=False, method="banner"):
    return PurposeState(purpose, "consent", status, effective, method=method)


def test_changes_are_the_purposes_whose_status_moved_in_policy_order():
    before = [state("a", "granted", True), state("b", "not_asked"), state("c", "denied")]
    after = [state("a", "withdrawn", method="gpc"), state("b", "granted", True), state("c", "denied")]
    found = hooks.changes(before, after)
    assert [(c.purpose, c.before, c.after, c.effective) for c in found] == [
        ("a", "granted", "withdrawn", False), ("b", "not_asked", "granted", True)]
    assert found[0].as_dict() == {"purpose": "a", "from": "granted", "to": "withdrawn",
                                  "effective": False, "method": "gpc", "expires_at": None}


def test_granting_again_is_no_change():
    assert hooks.changes([state("a", "granted", True)], [state("a", "granted", True)]) == []


def test_the_common_method_or_the_callers():
    a = hooks.Change("a", "granted", "withdrawn", False, "erasure", None)
    b = hooks.Change("b", "granted", "withdrawn", False, "erasure", None)
    c = hooks.Change("c", "not_asked", "granted", True, "banner", None)
    assert hooks.common_method([a, b], "api") == "erasure"
    assert hooks.common_method([a, c], "banner") == "banner"


def test_a_purpose_filter_keeps_only_its_changes_or_drops_the_event():
    data = {"subject_id": "s", "changes": [{"purpose": "ads"}, {"purpose": "analytics"}]}
    assert hooks.only_purposes(data, None) == data
    assert hooks.only_purposes(data, ["ads"])["changes"] == [{"purpose": "ads"}]
    assert hooks.only_purposes(data, ["personalization"]) is None


def test_the_body_is_type_timestamp_data():
    assert hooks.body("subject.erased", T, {"subject_id": "s"}) == {
        "type": "subject.erased", "timestamp": "2026-03-02T10:00:00Z", "data": {"subject_id": "s"}}


@pytest.mark.parametrize(("url", "https_only", "problem"), [
    ("https://crm.example/hooks", True, None),
    ("http://crm.example/hooks", False, None),
    ("http://crm.example/hooks", True, "https"),
    ("ftp://crm.example/", False, "http(s)"),
    ("/relative", False, "http(s)"),
    ("https://user:pw@crm.example/", False, "credentials"),
    ("https://crm.example/#frag", False, "fragment"),
    ("https://crm.example:99999/", False, "valid"),
    ("https://crm.example:0/", False, "port 0"),
    ("https://crm.example/a b", False, "spaces"),
    ("https://crm.example/\n", False, "control"),
    ("https://" + "a" * 2050, False, "at most"),
    (None, False, "required"),
    (42, False, "required"),
])
def test_url_problems(url, https_only, problem):
    found = hooks.url_problems(url, https_only=https_only)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].field == "url" and problem in found[0].message


@pytest.mark.parametrize(("address", "blocked"), [
    ("93.184.215.14", False),
    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False),
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
    ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True), ("fe80::1", True), ("fe80::1%eth0", True),
    ("fc00::1", True), ("100.64.0.1", True), ("0.0.0.0", True), ("::", True),
    ("224.0.0.1", True), ("ff02::1", True), ("240.0.0.1", True),
    ("::ffff:127.0.0.1", True), ("::ffff:10.0.0.1", True), ("::ffff:93.184.215.14", False),
    ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
    ("not an address", True),
])
def test_address_blocked(address, blocked):
    assert hooks.address_blocked(address) is blocked


def test_event_problems():
    assert hooks.event_problems(["consent.changed", "policy.changed"]) == []
    assert hooks.event_problems([])[0].field == "events"
    assert hooks.event_problems("consent.changed")[0].field == "events"
    assert [e.field for e in hooks.event_problems(["consent.changed", "nope"])] == ["events[1]"]


def test_purpose_versions_of_a_stored_purposes_file():
    text = "purposes:\n  - id: ads\n    version: 2\n  - id: analytics\n    version: 1\n  - nope\n"
    assert hooks.purpose_versions(text) == {"ads": 2, "analytics": 1}
    assert hooks.purpose_versions(None) == {}
    assert hooks.purpose_versions(": : not yaml [") == {}
