"""GATEWAY_RATE_LIMITS syntax, fixed windows and the token endpoint's backoff (pure, table-driven)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.limits import (
    LIMIT_NAMES,
    Limit,
    LimitSyntaxError,
    backoff_seconds,
    parse_rate_limits,
    window,
)


@pytest.mark.parametrize(("text", "expected"), [
    (None, {}),
    ("", {}),
    ("  ", {}),
    ("consents=20/minute", {"consents": Limit(20, 60)}),
    ("consents=20/minute;visitors=10/minute",
     {"consents": Limit(20, 60), "visitors": Limit(10, 60)}),
    (" notices = 5 / second ; state=1000/hour; ", {"notices": Limit(5, 1), "state": Limit(1000, 3600)}),
    ("withdraw=3/day;explanations=60/minute;outcomes=100/minute",
     {"withdraw": Limit(3, 86400), "explanations": Limit(60, 60), "outcomes": Limit(100, 60)}),
    ("consents=1000000/second", {"consents": Limit(1_000_000, 1)}),
])
def test_valid_settings(text, expected):
    assert parse_rate_limits(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("consents", "not NAME=COUNT/PERIOD"),
    ("consents=20", "not NAME=COUNT/PERIOD"),
    ("consents=/minute", "not NAME=COUNT/PERIOD"),
    ("consents=-1/minute", "not NAME=COUNT/PERIOD"),
    ("consents=2.5/minute", "not NAME=COUNT/PERIOD"),
    ("Consents=20/minute", "not NAME=COUNT/PERIOD"),
    ("consents=20/minute,visitors=1/minute", "not NAME=COUNT/PERIOD"),
    ("profiles=20/minute", "'profiles' is not a limit name"),
    ("consents=20/minute;consents=5/second", "given twice"),
    ("consents=0/minute", "the count must be 1 to"),
    ("consents=2000000/minute", "the count must be 1 to"),
    ("consents=20/week", "the period must be one of second, minute, hour, day"),
    ("consents=20/minutes", "the period must be one of"),
])
def test_bad_settings_say_what_is_wrong(text, message):
    with pytest.raises(LimitSyntaxError, match=message):
        parse_rate_limits(text)


def test_every_name_is_accepted():
    assert set(parse_rate_limits(";".join(f"{n}=1/minute" for n in LIMIT_NAMES))) == set(LIMIT_NAMES)


@pytest.mark.parametrize(("limit", "text"), [(Limit(20, 60), "20/minute"), (Limit(1, 86400), "1/day")])
def test_a_limit_reads_as_it_is_written(limit, text):
    assert str(limit) == text


@pytest.mark.parametrize(("timestamp", "seconds", "expected"), [
    (0, 60, (0, 60)),
    (59, 60, (0, 1)),
    (60, 60, (60, 60)),
    (1_764_579_601, 3600, (1_764_579_600, 3599)),
    (17, 1, (17, 1)),
])
def test_fixed_windows(timestamp, seconds, expected):
    assert window(timestamp, seconds) == expected


@given(st.integers(0, 2**40), st.sampled_from([1, 60, 3600, 86400]))
def test_a_window_holds_its_timestamp(timestamp, seconds):
    start, retry_after = window(timestamp, seconds)
    assert start <= timestamp < start + seconds
    assert 1 <= retry_after <= seconds and start + seconds - timestamp == retry_after


@pytest.mark.parametrize(("failures", "free", "cap", "expected"), [
    (0, 5, 900, 0),
    (5, 5, 900, 0),
    (6, 5, 900, 1),
    (7, 5, 900, 2),
    (10, 5, 900, 16),
    (14, 5, 900, 256),
    (15, 5, 900, 512),
    (16, 5, 900, 900),
    (10_000, 5, 900, 900),
    (1, 0, 10, 1),
    (3, 1, 1, 1),
])
def test_backoff(failures, free, cap, expected):
    assert backoff_seconds(failures, free, cap) == expected


@given(st.integers(0, 10_000), st.integers(0, 100), st.integers(1, 86400))
def test_backoff_grows_and_stays_under_the_cap(failures, free, cap):
    now, after = backoff_seconds(failures, free, cap), backoff_seconds(failures + 1, free, cap)
    assert 0 <= now <= after <= cap
    assert after <= max(1, 2 * now)
