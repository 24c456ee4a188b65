"""What a subject id may be: checked the same way over HTTP and on the command line."""

from __future__ import annotations

MAX_LENGTH = 256


def subject_id_problem(value: object) -> str | None:
    """None when `value` is a valid subject id (1-256 printable characters)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_LENGTH:
        return f"must be 1 to {MAX_LENGTH} characters"
    if not value.isprintable():
        return "must contain printable characters only"
    return None
