"""Who is calling: a banner's property, a service client, or the command line."""

from __future__ import annotations

from dataclasses import dataclass, field

from .consent import METHOD_API, METHOD_BANNER


@dataclass(frozen=True)
class Actor:
    kind: str  # "property" | "client" | "cli"
    id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    purposes: frozenset[str] = field(default_factory=frozenset)

    @property
    def method(self) -> str:
        """How choices from this actor were collected (receipt `method`)."""
        return METHOD_BANNER if self.kind == "property" else METHOD_API


CLI = Actor(kind="cli", id="cli")
