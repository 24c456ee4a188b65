"""What a subject id may be: one rule for HTTP and the command line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.subjects import MAX_LENGTH, subject_id_problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("dev-3f9a", None),
        ("x", None),
        ("x" * MAX_LENGTH, None),
        ("Ünïcödé visitor", None),
        ("", "must be 1 to 256 characters"),
        ("x" * (MAX_LENGTH + 1), "must be 1 to 256 characters"),
        (None, "must be 1 to 256 characters"),
        (42, "must be 1 to 256 characters"),
        ("line\nbreak", "must contain printable characters only"),
        ("tab\there", "must contain printable characters only"),
        ("nul\x00", "must contain printable characters only"),
    ],
)
def test_subject_id_problem(value, problem):
    assert subject_id_problem(value) == problem


@given(st.text(min_size=1, max_size=MAX_LENGTH))
def test_a_printable_id_of_allowed_length_is_valid_and_nothing_else_is(value):
    assert (subject_id_problem(value) is None) == value.isprintable()


def test_http_and_the_command_line_share_the_rule():
    from gateway.api import schemas

    assert schemas.subject_id_problem is subject_id_problem
