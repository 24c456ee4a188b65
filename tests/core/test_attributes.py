"""Attribute values: type checks, all-or-nothing patches, canonical bytes. No app, no database."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.attributes import check_value, decode_value, encode_value, validate_patch
from gateway.core.errors import InvalidRequest
from gateway.core.policy import ATTRIBUTE_TYPES, Attribute, Controller, Notice, Policy, Purpose


def attr(atype: str, aid: str = "a") -> Attribute:
    return Attribute(id=aid, type=atype, data_category="user", purposes=("p",))


POLICY = Policy(
    declared_version="1",
    content_hash="0" * 64,
    controller=Controller("C", "c@example"),
    purposes=(Purpose("p", 1, "consent", "personalize", {"en": Notice("t", "d")}),),
    attributes=(
        attr("string", "email"),
        attr("integer", "age"),
        attr("number", "score"),
        attr("boolean", "newsletter"),
        attr("date", "birthday"),
        attr("list[string]", "browsing_categories"),
    ),
)

OK = [
    ("string", ""),
    ("string", "ä€😀"),
    ("string", "x" * 4096),
    ("integer", 0),
    ("integer", -34),
    ("integer", 2**53),
    ("integer", -(2**53)),
    ("number", 0),
    ("number", 1.5),
    ("number", -1e300),
    ("number", 2**60),
    ("boolean", True),
    ("boolean", False),
    ("date", "2026-10-30"),
    ("date", "2024-02-29"),
    ("date", "0001-01-01"),
    ("list[string]", []),
    ("list[string]", ["outdoor", ""]),
    ("list[string]", ["x" * 256] * 1000),
]

BAD = [
    ("string", 1, "must be a text"),
    ("string", None, "must be a text"),
    ("string", ["a"], "must be a text"),
    ("string", "x" * 4097, "at most 4096"),
    ("integer", True, "whole number"),  # bool is not an int
    ("integer", False, "whole number"),
    ("integer", 1.0, "whole number"),
    ("integer", "1", "whole number"),
    ("integer", 2**53 + 1, "2^53"),
    ("integer", -(2**53) - 1, "2^53"),
    ("number", True, "must be a number"),
    ("number", "1.5", "must be a number"),
    ("number", math.nan, "finite"),
    ("number", math.inf, "finite"),
    ("number", -math.inf, "finite"),
    ("number", 10**400, "finite"),
    ("boolean", 1, "true or false"),
    ("boolean", "true", "true or false"),
    ("boolean", None, "true or false"),
    ("date", "2026-02-30", "real calendar date"),
    ("date", "2025-02-29", "real calendar date"),
    ("date", "2026-13-01", "real calendar date"),
    ("date", "20261030", "YYYY-MM-DD"),
    ("date", "2026-10-30T00:00:00Z", "YYYY-MM-DD"),
    ("date", "2026-1-5", "YYYY-MM-DD"),
    ("date", "２０２６-10-30", "YYYY-MM-DD"),  # non-ASCII digits
    ("date", " 2026-10-30", "YYYY-MM-DD"),
    ("date", 20261030, "as a text"),
    ("list[string]", "outdoor", "list of texts"),
    ("list[string]", ("a",), "list of texts"),
    ("list[string]", [["nested"]], "item 0 must be a text"),
    ("list[string]", ["ok", 1], "item 1 must be a text"),
    ("list[string]", ["ok", None], "item 1 must be a text"),
    ("list[string]", ["x" * 257], "at most 256"),
    ("list[string]", ["x"] * 1001, "at most 1000"),
    ("list[string]", {"a": "b"}, "list of texts"),
]


@pytest.mark.parametrize("atype, value", OK)
def test_value_fits(atype, value):
    assert check_value(attr(atype), value) is None


@pytest.mark.parametrize("atype, value, message", BAD)
def test_value_does_not_fit(atype, value, message):
    result = check_value(attr(atype), value)
    assert result is not None and message in result


def test_messages_never_repeat_the_value():
    for atype, value, _ in BAD:
        if isinstance(value, str) and len(value) > 4:
            assert value not in check_value(attr(atype), value)


def test_validate_patch_splits_sets_and_removals():
    to_set, to_remove = validate_patch(
        POLICY, {"age": 34, "email": None, "birthday": "1990-05-17", "browsing_categories": None}
    )
    assert to_set == {"age": 34, "birthday": "1990-05-17"}
    assert to_remove == ["email", "browsing_categories"]


def test_validate_patch_lists_every_problem_and_writes_nothing():
    with pytest.raises(InvalidRequest) as err:
        validate_patch(
            POLICY,
            {"age": True, "email": "ok@example", "shoe_size": 44, "birthday": "2026-02-30", "gone": None},
        )
    got = {e.field: e.message for e in err.value.errors}
    assert list(got) == ["attributes.age", "attributes.shoe_size", "attributes.birthday", "attributes.gone"]
    assert got["attributes.shoe_size"] == "unknown attribute"
    assert got["attributes.gone"] == "unknown attribute"  # removing an unknown attribute is an error too
    assert "whole number" in got["attributes.age"]


@pytest.mark.parametrize("body", [{}, [], "age"])
def test_validate_patch_needs_a_non_empty_object(body):
    with pytest.raises(InvalidRequest) as err:
        validate_patch(POLICY, body)
    assert [e.field for e in err.value.errors] == ["attributes"]


def test_empty_patch_message():
    with pytest.raises(InvalidRequest) as err:
        validate_patch(POLICY, {})
    assert err.value.errors[0].as_dict() == {"field": "attributes", "message": "at least one attribute"}


@pytest.mark.parametrize(
    "atype, value, encoded",
    [
        ("string", "Grüße", '"Grüße"'.encode()),
        ("integer", 34, b"34"),
        ("number", 1.5, b"1.5"),
        ("boolean", True, b"true"),
        ("date", "2026-10-30", b'"2026-10-30"'),
        ("list[string]", ["b", "a"], b'["b","a"]'),
    ],
)
def test_encode_is_canonical_json(atype, value, encoded):
    assert encode_value(attr(atype), value) == encoded
    assert decode_value(attr(atype), encoded) == value


def test_encode_refuses_a_value_that_does_not_fit():
    with pytest.raises(ValueError, match="whole number"):
        encode_value(attr("integer"), True)


@pytest.mark.parametrize(
    "atype, data",
    [("integer", b"NaN"), ("number", b"Infinity"), ("integer", b'"34"'), ("string", b"\xff"), ("date", b"{")],
)
def test_decode_refuses_bytes_that_do_not_fit(atype, data):
    with pytest.raises(ValueError):
        decode_value(attr(atype), data)


VALUES = {
    "string": st.text(max_size=50),
    "integer": st.integers(-(2**53), 2**53),
    "number": st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)),
    "boolean": st.booleans(),
    "date": st.dates().map(lambda d: d.isoformat()),
    "list[string]": st.lists(st.text(max_size=20), max_size=10),
}


@given(st.sampled_from(ATTRIBUTE_TYPES).flatmap(lambda t: st.tuples(st.just(t), VALUES[t])))
def test_round_trip_keeps_value_and_type(case):
    """Property: every value that fits survives encode/decode with its JSON type."""
    atype, value = case
    a = attr(atype)
    assert check_value(a, value) is None
    decoded = decode_value(a, encode_value(a, value))
    assert decoded == value and type(decoded) is type(value)
