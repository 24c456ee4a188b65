"""The delivery worker: takes due deliveries from the outbox, signs and posts them, records the
outcome, retries on API.md's schedule, and keeps the outbox tidy.

One round: claim a batch in a short transaction (the claim counts the attempt and leases the
rows), post them concurrently (a thread pool, kept-alive connections), and record every
outcome in one transaction. A worker killed mid-round leaves its rows leased; when the lease
ends they are claimed again and sent with the same `webhook-id` (at least once).

Several workers on PostgreSQL share the outbox (the claim skips rows another worker has
locked); on SQLite run one (a second is safe, its claims wait for the write lock, but it adds
nothing).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from standardwebhooks.webhooks import Webhook as StandardWebhook

from ..core import webhooks as hooks
from ..security.envelope import EnvelopeError
from ..store.webhooks import Claimed, WebhookRepository
from . import audit
from . import webhooks as subscriptions
from .context import Gateway
from .webhooks_http import Outcome, Sender

log = structlog.get_logger(__name__)

ROUNDS_PER_BATCH = 4  # a batch is this many posts per sending thread
LEASE_MARGIN = 10.0  # seconds beyond the longest a batch can take
DISABLE_AFTER = timedelta(days=5)
SWEEP_SECONDS = 60.0


def sign(secrets: list[bytes], message_id: str, at: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,<base64>` per secret, space-separated."""
    return " ".join(StandardWebhook(s).sign(message_id, at, body) for s in secrets)


@dataclass
class Stats:
    rounds: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


class Worker:
    """Deliveries for one process. `run` until `stop` is set; `drain` for tests and the CLI."""

    def __init__(self, gw: Gateway, *, concurrency: int | None = None, batch: int | None = None,
                 rand: Callable[[], float] = random.random, name: str | None = None):
        settings = gw.settings
        self.gw = gw
        self.concurrency = concurrency or settings.webhook_concurrency
        self.batch = batch or self.concurrency * ROUNDS_PER_BATCH
        self.timeout = settings.webhook_timeout
        # every post ends by its deadline, so a batch takes at most its rounds of posts: a row
        # still leased after that belongs to a worker that died, and is claimed again
        rounds = -(-self.batch // self.concurrency)
        self.lease = timedelta(seconds=rounds * settings.webhook_timeout + LEASE_MARGIN)
        self.rand = rand
        self.name = name or f"worker-{os.getpid()}"
        self.sender = Sender(timeout=settings.webhook_timeout,
                             allow_private=settings.webhook_allow_private)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                       thread_name_prefix="webhook-send")
        self.stats = Stats()
        self._secrets: dict[tuple[str, bytes, bytes | None], list[bytes]] = {}
        self._swept_at = 0.0

    # -- one round ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim, send and record one batch; returns how many deliveries were attempted."""
        now = self.gw.now()
        with self.gw.db.write() as s:
            claimed = WebhookRepository(s).claim(now, now + self.lease, self.batch)
        if not claimed:
            return 0
        outcomes = list(self.pool.map(self._send, claimed))
        self._record(claimed, outcomes)
        self.stats.rounds += 1
        return len(claimed)

    def _secrets_for(self, d: Claimed, now: datetime) -> list[bytes]:
        current = d.previous_until is not None and d.previous_until > now
        key = (d.webhook_id, d.secret_wrapped, d.previous_wrapped if current else None)
        found = self._secrets.get(key)
        if found is None:
            if len(self._secrets) > 1000:
                self._secrets.clear()
            found = subscriptions.signing_secrets(self.gw, d.webhook_id, d.secret_kek_id,
                                                  d.secret_wrapped, d.previous_kek_id,
                                                  d.previous_wrapped, d.previous_until, now)
            self._secrets[key] = found
        return found

    def _send(self, d: Claimed) -> Outcome:
        if d.payload is None or d.kek_id is None or d.wrapped_key is None:
            return Outcome(None, 0, "body_deleted")
        now = self.gw.now()
        try:
            body = subscriptions.open_body(self.gw, d.message_id, d.kek_id, d.wrapped_key, d.payload)
            secrets = self._secrets_for(d, now)
        except EnvelopeError:
            return Outcome(None, 0, "key_unavailable")
        text = body.decode("utf-8")
        headers = {"webhook-id": d.message_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": sign(secrets, d.message_id, now, text)}
        return self.sender.post(d.url, body, headers)

    def _record(self, claimed: list[Claimed], outcomes: list[Outcome]) -> None:
        now = self.gw.now()
        results: list[dict[str, Any]] = []
        failed: list[tuple[Claimed, Outcome]] = []
        ok_hooks, bad_hooks = set(), set()
        keep_failed = self.gw.settings.webhook_retry_window_days > 0
        for d, outcome in zip(claimed, outcomes, strict=True):
            line: dict[str, Any] = {"id": d.id, "attempts": d.attempts, "response_status": outcome.status,
                    "latency_ms": outcome.latency_ms, "error": outcome.error}
            if outcome.delivered:
                line.update(status=hooks.DELIVERED, next_attempt_at=None, finished_at=now, clear=True)
                ok_hooks.add(d.webhook_id)
                self.stats.delivered += 1
            else:
                bad_hooks.add(d.webhook_id)
                delay = hooks.retry_delay(d.attempts, self.rand())
                if delay is None or outcome.error == "body_deleted":
                    line.update(status=hooks.FAILED, next_attempt_at=None, finished_at=now,
                                clear=not keep_failed)
                    failed.append((d, outcome))
                    self.stats.failed += 1
                else:
                    line.update(status=hooks.RETRYING, next_attempt_at=now + timedelta(seconds=delay),
                                finished_at=None, clear=False)
                    self.stats.retrying += 1
            if outcome.status is not None:
                self.stats.by_status[outcome.status] = self.stats.by_status.get(outcome.status, 0) + 1
            results.append(line)
        with self.gw.db.write() as s:
            repo = WebhookRepository(s)
            repo.record_results(results)
            repo.mark_health(ok_hooks, bad_hooks, now)
            for d, outcome in failed:
                audit.record(s, "webhook.failed", actor="system", at=now, webhook_id=d.webhook_id,
                             message_id=d.message_id, event_type=d.event_type, attempts=d.attempts,
                             response_status=outcome.status, error=outcome.error)
            self._disable_failing(s, now)

    def _disable_failing(self, s, now: datetime) -> list[str]:
        disabled = WebhookRepository(s).disable_failing(now - DISABLE_AFTER, now)
        for webhook_id in disabled:
            audit.record(s, "webhook.disabled", actor="system", at=now, webhook_id=webhook_id,
                         reason="every delivery failed for 5 days")
            log.warning("webhook.disabled", webhook_id=webhook_id, reason="failing")
        return disabled

    # -- housekeeping -------------------------------------------------------------------------

    def sweep(self) -> dict[str, Any]:
        """Disable subscriptions failing for 5 days, forget the bodies of failed deliveries whose
        retry window ended, and drop log lines older than GATEWAY_WEBHOOK_LOG_DAYS."""
        now = self.gw.now()
        settings = self.gw.settings
        with self.gw.db.write() as s:
            repo = WebhookRepository(s)
            disabled = self._disable_failing(s, now)
            forgotten = repo.forget_failed_before(now - timedelta(days=settings.webhook_retry_window_days))
            pruned = repo.prune_finished_before(now - timedelta(days=settings.webhook_log_days))
        self._swept_at = time.monotonic()
        return {"disabled": disabled, "bodies_deleted": forgotten, "log_lines_deleted": pruned}

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Rounds until nothing is due now; returns how many deliveries were attempted."""
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total

    def run(self, stop: threading.Event, *, parent_pid: int | None = None) -> None:
        """Deliver until `stop` is set (or the parent process is gone); errors are logged and
        the loop goes on after a pause."""
        poll = self.gw.settings.webhook_poll_ms / 1000
        failures = 0
        log.info("webhook.worker_started", worker=self.name, concurrency=self.concurrency)
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("webhook.worker_orphaned", worker=self.name)
                break
            try:
                if time.monotonic() - self._swept_at >= SWEEP_SECONDS:
                    self.sweep()
                n = self.run_once()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the loop outlives a lost database
                failures += 1
                log.warning("webhook.worker_round_failed", error=type(exc).__name__)
                stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if n < self.batch:
                stop.wait(poll)
        self.close()
        log.info("webhook.worker_stopped", worker=self.name, delivered=self.stats.delivered)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.sender.close()
