"""A page's language (gateway.core.locale.negotiate): ?lang=, then Accept-Language, then English."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.locale import FALLBACK, negotiate

PAGES = ("en", "de", "nb")


@pytest.mark.parametrize(("requested", "accepted", "expected"), [
    (None, [], "en"),
    ("de", [], "de"),
    ("DE", [], "de"),
    ("de-AT", [], "de"),
    ("nb_NO", [], "nb"),
    ("fr", [], "en"),
    ("fr", [("nb", 1.0)], "nb"),  # an unknown ?lang= falls through to the header
    (None, [("de-DE", 1.0), ("en", 0.8)], "de"),
    (None, [("fr", 1.0), ("nb", 0.5)], "nb"),
    (None, [("en", 0.5), ("de", 0.9)], "de"),  # quality first, not order
    (None, [("de", 0.7), ("nb", 0.7)], "de"),  # equal quality: the header's order
    (None, [("de", 0.0), ("nb", 0.1)], "nb"),  # q=0 means "not this one"
    (None, [("*", 1.0)], "en"),
    ("", [("nb", 1.0)], "nb"),
])
def test_negotiate(requested, accepted, expected):
    assert negotiate(PAGES, requested, accepted) == expected


@given(st.one_of(st.none(), st.text(max_size=12)),
       st.lists(st.tuples(st.text(max_size=12), st.floats(0, 1)), max_size=5))
def test_always_a_page_language(requested, accepted):
    assert negotiate(PAGES, requested, accepted) in PAGES


def test_falls_back_to_english():
    assert FALLBACK == "en"
    assert negotiate(("en",), "de", [("de", 1.0)]) == "en"
