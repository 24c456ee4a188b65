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
from flask.cli import AppGroup, with_appcontext

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
    if gw.loaded_policy is None:
        _fail(f"the policy in {gw.settings.policy_dir} is invalid; run "
              "'flask --app gateway policy check' to see why")


db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database in DATABASE_URL to the latest revision."""
    from .services import database

    click.echo(f"database at {', '.join(database.upgrade(_gw(), revision))}")


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
        f"{len(policy.attributes)} attributes, {len(policy.placements)} placements with "
        f"{sum(len(p.rules) for p in policy.placements)} rules"
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


def _explain(exc: GatewayError) -> str:
    return "; ".join([exc.detail] + [f"{e.field}: {e.message}" for e in exc.errors])


clients_cli = AppGroup("clients", help="Service clients (OAuth2 client credentials).")


@clients_cli.command("create")
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, required=True,
              help="A scope such as consent:write (repeat for more).")
@click.option("--purpose", "purposes", multiple=True,
              help="A purpose of the policy the client may use (repeat for more).")
def clients_create(name: str, scopes: tuple[str, ...], purposes: tuple[str, ...]) -> None:
    """Create a client; prints its id and its secret (shown once)."""
    from .services.auth import clients

    gw = _gw()
    _needs_policy(gw)
    split = [s for value in scopes for s in value.replace(",", " ").split()]
    wanted = [p for value in purposes for p in value.replace(",", " ").split()]
    try:
        created = clients.create_client(gw, name, split, wanted)
    except GatewayError as exc:
        _fail(_explain(exc))
    _echo_json({k: created[k] for k in ("client_id", "client_secret", "scopes", "purposes", "name")})


@clients_cli.command("list")
def clients_list() -> None:
    """Every client with its scopes and purposes (never the secrets)."""
    from .services.auth import clients

    _echo_json(clients.list_clients(_gw()))


@clients_cli.command("rotate-secret")
@click.argument("client_id")
def clients_rotate_secret(client_id: str) -> None:
    """A new secret for the client (shown once); the old one stops working at once."""
    from .services.auth import clients

    try:
        _echo_json(clients.rotate_secret(_gw(), client_id))
    except GatewayError as exc:
        _fail(_explain(exc))


@clients_cli.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """No new tokens, and the client's unexpired tokens are refused from now on."""
    from .services.auth import clients

    try:
        _echo_json(clients.revoke_client(_gw(), client_id))
    except GatewayError as exc:
        _fail(_explain(exc))


keys_cli = AppGroup("keys", help="Token signing keys.")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """A new signing key; tokens signed with the previous one stay valid until they expire."""
    from .services.auth import keys

    try:
        _echo_json(keys.rotate_signing_key(_gw()))
    except GatewayError as exc:
        _fail(_explain(exc))



@keys_cli.command("rotate-master")
@click.option("--new-dev-key", is_flag=True,
              help="development: generate a new master key in instance/ first")
def keys_rotate_master(new_dev_key: bool) -> None:
    """Re-wrap every subject's data key under the current master key (values untouched).

    In production, put the new key first in GATEWAY_MASTER_KEY, keep the old ones after
    it (comma-separated), run this, then drop the old ones.
    """
    from .services import profiles

    try:
        _echo_json(profiles.rotate_master(_gw(), "cli", new_dev_key=new_dev_key))
    except RuntimeError as exc:
        _fail(str(exc))


subjects_cli = AppGroup("subjects", help="Data subject rights: access and erasure.")


@subjects_cli.command("export")
@click.argument("subject_id")
def subjects_export(subject_id: str) -> None:
    """Everything held about SUBJECT_ID (GDPR Art. 15/20), as JSON."""
    from .core.actor import CLI
    from .services import profiles

    _needs_policy(_gw())
    _echo_json(profiles.export_subject(_gw(), CLI, _subject(subject_id)))


@subjects_cli.command("erase")
@click.argument("subject_id")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def subjects_erase(subject_id: str, yes: bool) -> None:
    """Erase SUBJECT_ID (GDPR Art. 17): destroys the data key and the profile, withdraws every
    consent and objects to every legitimate interest."""
    from .core.actor import CLI
    from .services import profiles

    _needs_policy(_gw())
    if not yes and sys.stdin.isatty():
        click.confirm(f"Erase every profile value of {subject_id!r}? This cannot be undone", abort=True)
    _echo_json(profiles.erase_subject(_gw(), CLI, _subject(subject_id)))


def _subject(subject_id: str) -> str:
    from .core.subjects import subject_id_problem

    problem = subject_id_problem(subject_id)
    if problem:
        _fail(f"subject_id {problem}")
    return subject_id


@click.command("purge")
@with_appcontext  # a plain command: AppGroup commands get this from the group
def purge() -> None:
    """Delete profile values older than their attribute's retention_days."""
    from .services import profiles

    _needs_policy(_gw())
    _echo_json(profiles.purge_expired(_gw(), "cli"))


audit_cli = AppGroup("audit", help="The tamper-evident audit log.")


def _time_option(value: str | None, name: str):
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        _fail(f"--{name} must be an RFC 3339 time with a zone, e.g. 2026-11-01T00:00:00Z")
    return parsed.astimezone(UTC)


@audit_cli.command("export")
@click.option("--since", help="RFC 3339 time (inclusive)")
@click.option("--until", help="RFC 3339 time (exclusive)")
@click.option("--type", "types", multiple=True, help="only events of this type (repeatable)")
@click.option("--subject-id", help="only events of this subject (raw id; matched by pseudonym)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def audit_export(since, until, types, subject_id, fmt, output: Path) -> None:
    """Write a signed export (CSV gets FILE.manifest.json beside it)."""
    from .services import audit

    gw = _gw()
    flt = audit.make_filter(gw, since=_time_option(since, "since"), until=_time_option(until, "until"),
                            types=types, subject_id=subject_id)
    if fmt == "jsonl":
        count = 0
        with output.open("wb") as fh:
            for line in audit.export(gw, "cli", flt):
                fh.write(line)
                count += 1
        click.echo(f"{output}: {count - 1} events and the signed manifest")
    else:
        with output.open("wb") as fh:
            manifest = audit.export_csv(gw, "cli", flt, fh)
        manifest_path = output.with_name(output.name + ".manifest.json")
        manifest_path.write_text(json.dumps({"manifest": manifest}, indent=2) + "\n")
        click.echo(f"{output}: {manifest['count']} events; manifest in {manifest_path}")


@audit_cli.command("verify")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM file of the public key; without it the gateway's own keys are used")
@click.option("--database", is_flag=True, help="verify the chain stored in the database instead")
def audit_verify(file: Path | None, public_key: Path | None, database: bool) -> None:
    """Exit 0 with a summary if chain and signature hold; else name the first bad line (or seq)."""
    from .services import audit

    gw = _gw()
    if database:
        result = audit.verify_database(gw)
    elif file is None:
        _fail("give an export FILE or --database", 2)
    else:
        pem = public_key.read_text() if public_key else None
        if file.suffix == ".csv":
            manifest_path = file.with_name(file.name + ".manifest.json")
            if not manifest_path.exists():
                _fail(f"{manifest_path} is missing: a CSV export is verified with its manifest")
            with file.open("rb") as fh:
                result = audit.verify_csv(gw, fh, manifest_path.read_text(), pem)
        else:
            with file.open("rb") as fh:
                result = audit.verify_lines(gw, fh, pem)
    if result.ok:
        click.echo(str(result))
    else:
        click.echo(str(result), err=True)
        sys.exit(1)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Chain every pending audit event now (the gateway also does this in batches)."""
    from .services import audit

    click.echo(f"sealed {audit.seal(_gw(), wait=True)} events")


@audit_cli.command("rotate-key")
def audit_rotate_key() -> None:
    """Development: a new audit signing key; earlier keys stay available by key_id."""
    from .services import audit

    try:
        _echo_json(audit.rotate_key(_gw(), "cli"))
    except RuntimeError as exc:
        _fail(str(exc))


demo_cli = AppGroup("demo", help="The demo shop at /demo (development only).")


@demo_cli.command("setup")
def demo_setup() -> None:
    """Create the demo's banner property for GATEWAY_DEMO_ORIGINS (once; again when they change)."""
    from .services import demo

    gw = _gw()
    if not demo.enabled(gw):
        click.echo("the demo is switched off (GATEWAY_DEMO): nothing to set up")
        return
    try:
        _echo_json(demo.setup(gw))
    except GatewayError as exc:
        _fail(exc.detail + "".join(f"; {e.field}: {e.message}" for e in exc.errors))


def init_app(app: Flask) -> None:
    from .cli_webhooks import webhooks_cli

    for group in (db_cli, policy_cli, properties_cli, clients_cli, keys_cli, audit_cli, subjects_cli,
                  demo_cli, purge, webhooks_cli):
        app.cli.add_command(group)
