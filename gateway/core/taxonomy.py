"""The Fides taxonomy (fideslang, CC BY 4.0) as plain key sets for the policy loader."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Taxonomy:
    data_uses: frozenset[str]
    data_categories: frozenset[str]


def fides_taxonomy() -> Taxonomy:
    """Current (non-deprecated) data-use and data-category keys of fideslang."""
    from fideslang import DEFAULT_TAXONOMY  # imported on call: nothing is built at import time

    def keys(items: Iterable[Any]) -> frozenset[str]:
        return frozenset(i.fides_key for i in items if not getattr(i, "version_deprecated", None))

    return Taxonomy(keys(DEFAULT_TAXONOMY.data_use), keys(DEFAULT_TAXONOMY.data_category))
