"""Settings, read from the environment in exactly one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_dir: Path = CHECKOUT / "instance"
    database_url: str = ""
    policy_dir: Path = CHECKOUT / "policies"
    master_key: str | None = None
    pseudonym_key: str | None = None
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Environment first, then `overrides` (create_app's test config) on top."""
        values: dict[str, Any] = dict(os.environ if environ is None else environ)
        values.update(overrides or {})
        instance = Path(values.get("GATEWAY_INSTANCE_DIR") or CHECKOUT / "instance")
        db_url = values.get("DATABASE_URL") or f"sqlite:///{instance / 'gateway.db'}"
        return cls(
            env=values.get("GATEWAY_ENV", "development"),
            instance_dir=instance,
            database_url=db_url,
            policy_dir=Path(values.get("GATEWAY_POLICY_DIR") or CHECKOUT / "policies"),
            master_key=values.get("GATEWAY_MASTER_KEY") or None,
            pseudonym_key=values.get("GATEWAY_PSEUDONYM_KEY") or None,
            max_body_bytes=int(values.get("GATEWAY_MAX_BODY_BYTES", 64 * 1024)),
            log_level=str(values.get("GATEWAY_LOG_LEVEL", "INFO")).upper(),
            log_json=_bool(values.get("GATEWAY_LOG_JSON", "true")),
            testing=_bool(values.get("TESTING", False)),
            extra={k: v for k, v in (overrides or {}).items() if k.isupper()},
        )
