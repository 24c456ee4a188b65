"""The remote personalization backend protocol: a signed POST, a bounded wait.

README, "Decisions and explanations", describes it.

The backend receives only the permitted view. Its answer is refused when it is
not 200, not the expected JSON, late, or cites an attribute it was not given.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..core.policy import Backend, Policy

MAX_ANSWER_BYTES = 256 * 1024


@dataclass(frozen=True)
class BackendAnswer:
    content: dict[str, Any] | None = None
    attributes: tuple[str, ...] = ()
    explanation: dict[str, str] | None = None
    failure: str | None = None  # timeout | error | invalid_answer | unreleased_attribute | unavailable
    elapsed_ms: float = 0.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def call(backend: Backend, secret: str | None, payload: dict[str, Any], released: set[str],
         policy: Policy) -> BackendAnswer:
    """POST `payload` to the backend and check its answer; never raises."""
    if not secret:
        return BackendAnswer(failure="unavailable")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    url = urlsplit(backend.url)
    if not url.hostname:  # the policy loader refuses such a URL; never a default host
        return BackendAnswer(failure="unavailable")
    timeout = backend.timeout_ms / 1000
    started = time.perf_counter()
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname, url.port, timeout=timeout)
    # the socket timeout bounds each read only: a backend that trickles its answer would hold
    # the decision far beyond timeout_ms, so the exchange is cut at the deadline
    watchdog = None
    try:
        conn.connect()
        remaining = timeout - (time.perf_counter() - started)
        if remaining <= 0:
            raise TimeoutError
        watchdog = threading.Timer(remaining, _cut, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json",
            "X-Gateway-Signature": sign(secret, body),
            "User-Agent": "consent-gateway",
        })
        response = conn.getresponse()
        raw = response.read(MAX_ANSWER_BYTES + 1)
        status = response.status
    except TimeoutError:
        return BackendAnswer(failure="timeout", elapsed_ms=_ms(started))
    except (OSError, http.client.HTTPException):
        elapsed = _ms(started)
        return BackendAnswer(failure="timeout" if elapsed >= backend.timeout_ms else "error",
                             elapsed_ms=elapsed)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        conn.close()
    elapsed = _ms(started)
    if elapsed > backend.timeout_ms:
        return BackendAnswer(failure="timeout", elapsed_ms=elapsed)
    if status != 200:
        return BackendAnswer(failure="error", elapsed_ms=elapsed)
    return parse_answer(raw, released, elapsed)


def parse_answer(raw: bytes, released: set[str], elapsed: float = 0.0) -> BackendAnswer:
    if len(raw) > MAX_ANSWER_BYTES:
        return BackendAnswer(failure="invalid_answer", elapsed_ms=elapsed)
    try:
        data = json.loads(raw)
    except ValueError:
        return BackendAnswer(failure="invalid_answer", elapsed_ms=elapsed)
    if not isinstance(data, dict) or not isinstance(data.get("content"), dict):
        return BackendAnswer(failure="invalid_answer", elapsed_ms=elapsed)
    attributes = data.get("attributes", [])
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        return BackendAnswer(failure="invalid_answer", elapsed_ms=elapsed)
    if not set(attributes) <= released:
        return BackendAnswer(failure="unreleased_attribute", attributes=tuple(attributes),
                             elapsed_ms=elapsed)
    explanation = data.get("explanation")
    if explanation is not None and not (
        isinstance(explanation, dict)
        and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in explanation.items())
    ):
        return BackendAnswer(failure="invalid_answer", elapsed_ms=elapsed)
    return BackendAnswer(content=data["content"], attributes=tuple(dict.fromkeys(attributes)),
                         explanation=explanation or None, elapsed_ms=elapsed)


def _cut(conn: http.client.HTTPConnection) -> None:
    """At the deadline: end the exchange, whatever the backend is doing (reads then fail)."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
