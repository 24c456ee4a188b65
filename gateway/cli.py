"""Command line (`flask --app gateway ...`): database, policy, properties.

Commands only parse arguments, call services/ and print; errors are readable
messages with a non-zero exit, never tracebacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .core.errors import GatewayError, PolicyInvalid
from .services.context import Gateway


def _gw() -> Gateway:
    return current_app.extensions["gateway"]


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _needs_policy(gw: Gateway) -> None:
    if gw.policy is None:
        _fail(f"the policy in {gw.settings.policy_dir} is invalid; run "
              "'flask --app gateway policy check' to see why")


db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database in DATABASE_URL to the latest revision."""
    from .store import migrate

    gw = _gw()
    migrate.upgrade(gw.db.engine, revision)
    click.echo(f"database at {', '.join(sorted(migrate.current_revisions(gw.db.engine)))}")


policy_cli = AppGroup("policy", help="Policy files.")


@policy_cli.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def policy_check(directory: Path | None) -> None:
    """Validate a policy directory (default: the one in force)."""
    from .services.policy import load_policy

    directory = directory or _gw().settings.policy_dir
    try:
        policy, _ = load_policy(directory)
    except PolicyInvalid as exc:
        click.echo(f"{directory}: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{directory}: policy {policy.version} is valid: {len(policy.purposes)} purposes, "
        f"{len(policy.attributes)} attributes"
    )


properties_cli = AppGroup("properties", help="Banner properties (public keys + origins).")


@properties_cli.command("create")
@click.option("--name", required=True)
@click.option("--origin", "origins", multiple=True, required=True,
              help="An allowed Origin, e.g. https://shop.example (repeat for more).")
def properties_create(name: str, origins: tuple[str, ...]) -> None:
    """Create a property; prints its id and its key (shown once)."""
    from .services import properties

    try:
        _echo_json(properties.create_property(_gw(), name, list(origins)))
    except GatewayError as exc:
        _fail("; ".join([exc.detail] + [f"{e.field}: {e.message}" for e in exc.errors]))


@properties_cli.command("list")
def properties_list() -> None:
    from .services import properties

    _echo_json(properties.list_properties(_gw()))


def init_app(app: Flask) -> None:
    for group in (db_cli, policy_cli, properties_cli):
        app.cli.add_command(group)
