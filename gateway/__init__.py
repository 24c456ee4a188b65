"""Consent Gateway: consent ledger, purpose-filtered profiles and explainable decisions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from .core.errors import PolicyInvalid


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application factory (gunicorn: `gateway:create_app()`; `flask --app gateway`).

    Everything is built here from settings: logging, the policy (an invalid
    policy refuses to start), the database engine and the server secrets.
    """
    from . import api, cli
    from .logging import configure_logging
    from .security.envelope import load_master_keys
    from .security.pseudonym import Pseudonymizer
    from .security.secrets import load_key
    from .services.context import Gateway
    from .services.policy import load_policy
    from .settings import Settings
    from .store.db import Database

    settings = Settings.load(overrides=config)
    configure_logging(settings.log_level, settings.log_json)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.config.update(settings.extra)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing
    app.json = _JSONProvider(app)

    try:
        policy, files = load_policy(settings.policy_dir)
    except PolicyInvalid:
        if click.get_current_context(silent=True) is None:
            raise
        # On the command line, still start so that `policy check` can say what is wrong.
        policy, files = None, {}

    gw = Gateway(
        settings=settings,
        db=Database.from_url(settings.database_url),
        loaded_policy=policy,
        policy_files=files,
        pseudonymize=Pseudonymizer(
            load_key(settings.pseudonym_key, "GATEWAY_PSEUDONYM_KEY", settings.instance_dir,
                     production=settings.production)
        ),
        keyring=load_master_keys(settings.master_key, settings.instance_dir,
                                 production=settings.production),
    )
    if settings.production:
        _require_production_secrets(gw)
    app.extensions["gateway"] = gw
    api.init_app(app)
    cli.init_app(app)
    return app


class _JSONProvider(DefaultJSONProvider):
    """Keys in the order the code wrote them; text as itself, not as \\u escapes."""

    sort_keys = False
    ensure_ascii = False


def _require_production_secrets(gw) -> None:
    """In production a missing secret stops the start, not the first request that needs it."""
    from .security.secrets import load_key
    from .services import audit

    audit.signer(gw)
    load_key(gw.settings.signing_key_passphrase, "GATEWAY_SIGNING_KEY_PASSPHRASE",
             gw.settings.instance_dir, production=True)
