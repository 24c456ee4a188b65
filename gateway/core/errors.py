"""Domain errors: values the core and services raise; the API maps them once.

Each error knows its HTTP-neutral kind; `gateway.api.errors` turns it into
problem+json and the CLI into a readable message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class GatewayError(Exception):
    """Base class. `kind` picks the status code at the edge."""

    kind = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        self.extra = extra


class InvalidRequest(GatewayError):
    """Well-formed input that breaks the rules (HTTP 422)."""

    kind = "unprocessable"
    title = "The request breaks the rules"


class MalformedRequest(GatewayError):
    """Input that cannot be read at all (HTTP 400)."""

    kind = "bad_request"
    title = "Malformed request"


class UnsupportedMediaType(GatewayError):
    """A body in a format the endpoint does not read (HTTP 415)."""

    kind = "unsupported_media_type"
    title = "Unsupported media type"


class NotFound(GatewayError):
    kind = "not_found"
    title = "Not found"


class Conflict(GatewayError):
    kind = "conflict"
    title = "Conflict"


class Unauthenticated(GatewayError):
    kind = "unauthenticated"
    title = "Authentication required"


class Forbidden(GatewayError):
    kind = "forbidden"
    title = "Forbidden"


class RateLimited(GatewayError):
    kind = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


@dataclass
class PolicyProblem:
    """One thing wrong with a policy: which file, which entry, what."""

    file: str
    entry: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}" if self.entry else self.file
        return f"{where}: {self.message}"


@dataclass
class PolicyInvalid(Exception):
    problems: list[PolicyProblem] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"the policy has {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)
