"""gunicorn glue for webhooks: one delivery worker per gunicorn master, beside its workers.

`gunicorn.conf.py` starts it when the master is ready (`when_ready`) and stops it when the
master exits (`on_exit`): one worker process per deployment of `make run` (or of any
`gunicorn --config gunicorn.conf.py`), however many web workers serve requests. It is the
command `flask --app gateway webhooks work`, run as a child of the master, so that it shares
nothing with the web workers (no thread forked into them, no connection pool copied) and a
crash in it never touches a request. A thread of the master watches it: when it exits, it is
started again (after 1 s, doubling to at most 30 s while it keeps failing). The child exits by
itself when the master is gone (it checks its parent), so even a master killed with SIGKILL
leaves no orphan behind. GATEWAY_WEBHOOK_WORKER=off leaves delivery to a worker run apart.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from typing import Any

MAX_BACKOFF = 30.0
STEADY = 60.0  # a worker that ran this long resets the backoff


class WorkerProcess:
    """Starts `flask --app gateway webhooks work` and keeps it running until `stop`."""

    def __init__(self, log: Any, argv: list[str] | None = None):
        self.log = log
        self.argv = argv or [sys.executable, "-m", "flask", "--app", "gateway", "webhooks", "work",
                             "--parent-pid", str(os.getpid())]
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="webhook-worker-watch", daemon=True)

    def start(self) -> WorkerProcess:
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen:
        self.starts += 1
        proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)  # noqa: S603 - our own command
        self.log.info("webhook delivery worker started (pid %s)", proc.pid)
        return proc

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            self.proc = self._spawn()
            while not self._stop.is_set() and self.proc.poll() is None:
                self._stop.wait(0.5)
            if self._stop.is_set():
                return
            ran = time.monotonic() - started
            backoff = 1.0 if ran >= STEADY else backoff
            self.log.warning("webhook delivery worker exited (code %s); starting it again in %.0f s",
                             self.proc.returncode, backoff)
            self._stop.wait(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the worker finishes its round), then SIGKILL after `timeout`."""
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._thread.join(timeout=5)


def start(log: Any) -> WorkerProcess | None:
    """The master's delivery worker, unless GATEWAY_WEBHOOK_WORKER=off."""
    from .settings import Settings

    if not Settings.load().webhook_worker:
        log.info("webhook delivery worker off (GATEWAY_WEBHOOK_WORKER=off): run "
                 "'flask --app gateway webhooks work' apart")
        return None
    return WorkerProcess(log).start()
