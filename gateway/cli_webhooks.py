"""`flask --app gateway webhooks …`: subscriptions, the delivery log, and the delivery worker.

Like the other commands these parse arguments, call services/ and print JSON; errors are one
line on stderr with a non-zero exit.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from .core.errors import GatewayError
from .services.context import Gateway

webhooks_cli = AppGroup("webhooks", help="Webhook subscriptions and their delivery worker.")


def _gw() -> Gateway:
    return current_app.extensions["gateway"]


def _echo(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except GatewayError as exc:
        _fail("; ".join([exc.detail] + [f"{e.field}: {e.message}" for e in exc.errors]))


def _split(values: tuple[str, ...]) -> list[str]:
    return [v for value in values for v in value.replace(",", " ").split()]


@webhooks_cli.command("create")
@click.option("--url", required=True, help="where deliveries are posted (https in production)")
@click.option("--event", "events", multiple=True, required=True,
              help="consent.changed, subject.erased, subject.linked or policy.changed (repeat)")
@click.option("--purpose", "purposes", multiple=True,
              help="only consent changes of this purpose (repeat; default: every purpose)")
@click.option("--description", default=None)
def create(url: str, events: tuple[str, ...], purposes: tuple[str, ...], description: str | None) -> None:
    """A subscription; prints it with its signing secret (shown once)."""
    from .services import webhooks

    values = {"url": url, "events": _split(events), "description": description}
    if purposes:
        values["purposes"] = _split(purposes)
    _echo(_call(webhooks.create, _gw(), "cli", values))


@webhooks_cli.command("list")
def list_all() -> None:
    """Every subscription with its delivery counts (never a secret)."""
    from .services import webhooks

    _echo(webhooks.list_all(_gw()))


@webhooks_cli.command("show")
@click.argument("webhook_id")
def show(webhook_id: str) -> None:
    from .services import webhooks

    _echo(_call(webhooks.show, _gw(), webhook_id))


@webhooks_cli.command("disable")
@click.argument("webhook_id")
def disable(webhook_id: str) -> None:
    """Stop sending (waiting deliveries are kept and resume with `enable`)."""
    from .services import webhooks

    _echo(_call(webhooks.disable, _gw(), "cli", webhook_id))


@webhooks_cli.command("enable")
@click.argument("webhook_id")
def enable(webhook_id: str) -> None:
    """Send again, the deliveries that waited first."""
    from .services import webhooks

    _echo(_call(webhooks.update, _gw(), "cli", webhook_id, {"status": "active"}))


@webhooks_cli.command("delete")
@click.argument("webhook_id")
def delete(webhook_id: str) -> None:
    """Delete the subscription, its delivery log and every body still waiting."""
    from .services import webhooks

    _echo(_call(webhooks.delete, _gw(), "cli", webhook_id))


@webhooks_cli.command("rotate-secret")
@click.argument("webhook_id")
def rotate_secret(webhook_id: str) -> None:
    """A new secret (shown once); the previous one signs beside it for 24 h."""
    from .services import webhooks

    _echo(_call(webhooks.rotate_secret, _gw(), "cli", webhook_id))


@webhooks_cli.command("deliveries")
@click.argument("webhook_id")
@click.option("--status", type=click.Choice(["pending", "retrying", "delivered", "failed"]))
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
def deliveries(webhook_id: str, status: str | None, limit: int) -> None:
    """The delivery log (failed first): status, attempts, response code, latency; no body."""
    from .services import webhooks

    _echo(_call(webhooks.deliveries, _gw(), webhook_id, status=status, limit=limit))


@webhooks_cli.command("retry")
@click.argument("webhook_id")
@click.argument("delivery_id")
def retry(webhook_id: str, delivery_id: str) -> None:
    """Send one failed delivery again (same webhook-id)."""
    from .services import webhooks

    _echo(_call(webhooks.retry, _gw(), "cli", webhook_id, delivery_id))


@webhooks_cli.command("replay")
@click.argument("webhook_id")
@click.option("--since", required=True, help="RFC 3339 time: every event from then on")
def replay(webhook_id: str, since: str) -> None:
    """Send again every event since --since whose body is still held."""
    from .services import webhooks

    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        _fail("--since must be an RFC 3339 time with a zone, e.g. 2026-11-01T00:00:00Z")
    _echo(_call(webhooks.replay, _gw(), "cli", webhook_id, when.astimezone(UTC)))


@webhooks_cli.command("work")
@click.option("--once", is_flag=True, help="deliver what is due now, then exit")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="posts in flight at once (default GATEWAY_WEBHOOK_CONCURRENCY)")
@click.option("--parent-pid", type=int, default=None, hidden=True,
              help="exit when this process is no longer the parent (gunicorn.conf.py sets it)")
def work(once: bool, concurrency: int | None, parent_pid: int | None) -> None:
    """The delivery worker: sends due deliveries until SIGTERM or Ctrl-C."""
    from .services.webhooks_worker import Worker

    worker = Worker(_gw(), concurrency=concurrency)
    if once:
        try:
            attempted = worker.drain()
            swept = worker.sweep()
        finally:
            worker.close()
        _echo({"attempted": attempted, "delivered": worker.stats.delivered,
               "retrying": worker.stats.retrying, "failed": worker.stats.failed, **swept})
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker.run(stop, parent_pid=parent_pid)
