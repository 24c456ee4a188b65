"""Settings, read from the environment in exactly one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core.limits import Limit, LimitSyntaxError, parse_rate_limits

CHECKOUT = Path(__file__).resolve().parent.parent


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _positive(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return number


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _demo_settings(values: Mapping[str, Any], env: str) -> dict[str, Any]:
    """GATEWAY_DEMO (on in development, off in production) and GATEWAY_DEMO_ORIGINS (comma-
    separated; default the loopback origins of `make run`'s PORT). Production refuses the demo."""
    raw = values.get("GATEWAY_DEMO")
    demo = _bool(raw) if raw not in (None, "") else env != "production"
    if demo and env == "production":
        raise ValueError("GATEWAY_DEMO must be off when GATEWAY_ENV=production: the demo shop "
                         "is for development only")
    port = str(values.get("PORT") or "8000").strip()
    default = f"http://127.0.0.1:{port},http://localhost:{port}"
    origins = str(values.get("GATEWAY_DEMO_ORIGINS") or default)
    return {"demo": demo,
            "demo_origins": tuple(o.strip() for o in origins.split(",") if o.strip())}


DEFAULT_ISSUER = "http://127.0.0.1:8000"
MAX_TRUSTED_PROXIES = 10


def _issuer(values: Mapping[str, Any], env: str) -> str:
    """GATEWAY_ISSUER: the one source of `iss` and of the metadata's URLs, never a Host header.
    Required in production (https); in development the default is `make run`'s own URL."""
    raw = str(values.get("GATEWAY_ISSUER") or "").strip().rstrip("/")
    if not raw:
        if env == "production":
            raise ValueError("GATEWAY_ISSUER is required when GATEWAY_ENV=production: the public "
                             "https URL of the gateway, such as https://consent.example")
        host = str(values.get("HOST") or "127.0.0.1").strip()
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a listen address, not a URL: use loopback
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{str(values.get('PORT') or '8000').strip()}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise ValueError(f"GATEWAY_ISSUER must be an http(s) URL without query or fragment, not {raw!r}")
    if env == "production" and parts.scheme != "https":
        raise ValueError(f"GATEWAY_ISSUER must be an https URL in production, not {raw!r}")
    return raw


def _whole(values: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(text)


def _edge_settings(values: Mapping[str, Any], env: str) -> dict[str, Any]:
    """Issuer, proxies in front, token-endpoint throttling, banner rate limits and /metrics."""
    try:
        rate_limits = parse_rate_limits(values.get("GATEWAY_RATE_LIMITS"))
    except LimitSyntaxError as exc:
        raise ValueError(f"GATEWAY_RATE_LIMITS: {exc}") from None
    return {
        "issuer": _issuer(values, env),
        "trusted_proxies": _whole(values, "GATEWAY_TRUSTED_PROXIES", 0, 0, MAX_TRUSTED_PROXIES),
        "token_free_failures": _whole(values, "GATEWAY_TOKEN_FREE_FAILURES", 5, 1, 1000),
        "token_max_lock_seconds": _whole(values, "GATEWAY_TOKEN_MAX_LOCK", 900, 1, 86400),
        "rate_limits": rate_limits,
        "metrics_token": str(values.get("GATEWAY_METRICS_TOKEN") or "").strip() or None,
    }


def _webhook_settings(values: Mapping[str, Any], env: str) -> dict[str, Any]:
    """Webhooks (README, "Webhooks"): where subscriptions may point and how the worker runs."""
    raw = values.get("GATEWAY_WEBHOOK_ALLOW_PRIVATE")
    allow_private = _bool(raw) if raw not in (None, "") else env != "production"
    worker = str(values.get("GATEWAY_WEBHOOK_WORKER") or "on").strip().lower()
    return {
        "webhook_allow_private": allow_private,
        "webhook_worker": _choice(worker, "GATEWAY_WEBHOOK_WORKER", ("on", "off")) == "on",
        "webhook_timeout": _whole(values, "GATEWAY_WEBHOOK_TIMEOUT", 10, 1, 60),
        "webhook_concurrency": _whole(values, "GATEWAY_WEBHOOK_CONCURRENCY", 16, 1, 256),
        "webhook_poll_ms": _whole(values, "GATEWAY_WEBHOOK_POLL_MS", 500, 10, 60000),
        "webhook_retry_window_days": _whole(values, "GATEWAY_WEBHOOK_RETRY_WINDOW_DAYS", 7, 0, 90),
        "webhook_log_days": _whole(values, "GATEWAY_WEBHOOK_LOG_DAYS", 30, 1, 3650),
    }


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
    # service authentication (OAuth2 client credentials)
    token_ttl_seconds: int = 900
    issuer: str = DEFAULT_ISSUER  # GATEWAY_ISSUER, see _edge_settings
    audience: str = "consent-gateway"
    signing_algorithm: str = "EdDSA"
    signing_key_passphrase: str | None = field(default=None, repr=False)
    idp_issuer: str | None = None
    idp_audience: str | None = None
    idp_jwks_url: str | None = None
    # audit log
    audit_signing_key: str | None = field(default=None, repr=False)
    audit_seal_interval: float = 1.0
    # the demo shop (development only)
    demo: bool = False
    demo_origins: tuple[str, ...] = ()
    # the edge: proxies, token-endpoint throttling, banner rate limits, /metrics (_edge_settings)
    trusted_proxies: int = 0
    token_free_failures: int = 5
    token_max_lock_seconds: int = 900
    rate_limits: Mapping[str, Limit] = field(default_factory=dict)
    metrics_token: str | None = field(default=None, repr=False)
    # webhooks (_webhook_settings)
    webhook_allow_private: bool = True
    webhook_worker: bool = True
    webhook_timeout: int = 10
    webhook_concurrency: int = 16
    webhook_poll_ms: int = 500
    webhook_retry_window_days: int = 7
    webhook_log_days: int = 30
    extra: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # for secrets the policy names

    def secret(self, name: str) -> str | None:
        """A secret named by the policy (e.g. a backend's `secret_env`), from the environment."""
        value = self.environ.get(name)
        return value if isinstance(value, str) and value else None

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def idp_enabled(self) -> bool:
        """Whether tokens from the organisation's own identity provider are trusted."""
        return bool(self.idp_issuer and self.idp_audience and self.idp_jwks_url)

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
            token_ttl_seconds=_positive(values.get("GATEWAY_TOKEN_TTL", 900), "GATEWAY_TOKEN_TTL"),
            audience=values.get("GATEWAY_AUDIENCE") or "consent-gateway",
            signing_algorithm=_choice(values.get("GATEWAY_SIGNING_ALG") or "EdDSA",
                                      "GATEWAY_SIGNING_ALG", ("EdDSA", "ES256")),
            signing_key_passphrase=values.get("GATEWAY_SIGNING_KEY_PASSPHRASE") or None,
            idp_issuer=values.get("GATEWAY_IDP_ISSUER") or None,
            idp_audience=values.get("GATEWAY_IDP_AUDIENCE") or None,
            idp_jwks_url=values.get("GATEWAY_IDP_JWKS_URL") or None,
            audit_signing_key=values.get("GATEWAY_AUDIT_SIGNING_KEY") or None,
            audit_seal_interval=float(values.get("GATEWAY_AUDIT_SEAL_INTERVAL", 1.0)),
            **_demo_settings(values, values.get("GATEWAY_ENV", "development")),
            **_edge_settings(values, values.get("GATEWAY_ENV", "development")),
            **_webhook_settings(values, values.get("GATEWAY_ENV", "development")),
            extra={k: v for k, v in (overrides or {}).items() if k.isupper()},
            environ={k: str(v) for k, v in values.items() if isinstance(v, str)},
        )
