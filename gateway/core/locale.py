"""Choosing a text for a language: one fallback for notices, labels, explanations and summaries.

A policy writes its texts per language code (`en`, `de`, `nb`); English is the
fallback every text must have. A requested locale is matched as written, then by
its base language (`de-AT` and `de_AT` find `de`), then English. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

FALLBACK = "en"
# a language code as the policy files write them: two or three lowercase letters
CODE_RE = re.compile(r"^[a-z]{2,3}$")

T = TypeVar("T")


def candidates(locale: str | None) -> tuple[str, ...]:
    """The codes to try for `locale`, best first, before the fallback: `de-AT` -> (`de-at`, `de`)."""
    if not locale:
        return ()
    wanted = locale.strip().replace("_", "-").lower()
    base = wanted.split("-")[0]
    return (wanted,) if base == wanted else (wanted, base)


def pick(texts: Mapping[str, T], locale: str | None) -> tuple[str, T]:
    """(locale used, text) of `texts` for `locale`, else English, which `texts` must have."""
    for candidate in candidates(locale):
        if candidate in texts:
            return candidate, texts[candidate]
    return FALLBACK, texts[FALLBACK]


def pick_or(texts: Mapping[str, str], locale: str | None, default: str) -> str:
    """The text of `texts` for `locale`, else English, else `default` (for texts English may lack)."""
    for candidate in (*candidates(locale), FALLBACK):
        text = texts.get(candidate)
        if text:
            return text
    return default


def negotiate(available: Sequence[str], requested: str | None,
              accepted: Iterable[tuple[str, float]] = ()) -> str:
    """The language of a page: `requested` (`?lang=`), else the best of `accepted`
    (Accept-Language as (tag, quality) pairs), else English; only codes in `available`."""
    for candidate in candidates(requested):
        if candidate in available:
            return candidate
    ranked = sorted(((q, i, tag) for i, (tag, q) in enumerate(accepted) if q > 0),
                    key=lambda item: (-item[0], item[1]))
    for _, _, tag in ranked:
        for candidate in candidates(tag):
            if candidate in available:
                return candidate
    return FALLBACK
