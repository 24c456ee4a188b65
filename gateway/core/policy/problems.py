"""The one collector of a policy's problems: each names the file, the entry and what is wrong.

Problems are collected, not raised, so that one run of the loader reports
everything wrong with the files; the messages are for data-protection staff.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import PolicyProblem

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def kind(value: object) -> str:
    """A reader's name for the YAML kind of `value`, for messages."""
    return {dict: "a mapping", list: "a list", str: "a text", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


class Problems:
    """Collects problems while reading one file's entries, with checks that report as they go."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[PolicyProblem] = []

    def add(self, entry: str, message: str) -> None:
        self.items.append(PolicyProblem(self.file, entry, message))

    def mapping(self, value: object, entry: str) -> Mapping[object, object]:
        if not isinstance(value, dict):
            self.add(entry, f"must be a mapping, not {kind(value)}")
            return {}
        return value

    def unknown_keys(self, data: Mapping[object, object], allowed: set[str], entry: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(entry, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")

    def string(self, data: Mapping[object, object], key: str, entry: str, *,
               required: bool = True) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(entry, f"'{key}' is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(entry, f"'{key}' must be a non-empty text, not {kind(value)}")
            return None
        return value

    def integer(self, data: Mapping[object, object], key: str, entry: str, *, required: bool,
                minimum: int, maximum: int) -> int | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(entry, f"'{key}' is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.add(entry, f"'{key}' must be a whole number from {minimum} to {maximum}, not {value!r}")
            return None
        return value

    def boolean(self, data: Mapping[object, object], key: str, entry: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.add(entry, f"'{key}' must be true or false, not {value!r}")
            return False
        return value

    def identifier(self, data: Mapping[object, object], entry: str) -> str | None:
        value = data.get("id")
        if not isinstance(value, str) or not ID_RE.match(value):
            self.add(entry, f"'id' must match [a-z][a-z0-9_]*, not {value!r}")
            return None
        return value

    def strings(self, data: Mapping[object, object], key: str, entry: str) -> list[str]:
        """A list of texts under `key` (none if absent)."""
        return [v for v in self._list_of(data, key, entry, str) if isinstance(v, str)]

    def integers(self, data: Mapping[object, object], key: str, entry: str) -> list[int]:
        """A list of whole numbers under `key` (none if absent)."""
        return [v for v in self._list_of(data, key, entry, int) if isinstance(v, int)]

    def _list_of(self, data: Mapping[object, object], key: str, entry: str,
                 item_type: type) -> list[object]:
        value = data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, item_type) and not isinstance(v, bool) for v in value
        ):
            self.add(entry, f"'{key}' must be a list of {item_type.__name__}, not {value!r}")
            return []
        return value
