"""Posting a webhook: one bounded HTTP exchange to an address that was checked.

Unless GATEWAY_WEBHOOK_ALLOW_PRIVATE is on (the default only in development), the host is
resolved and refused if any of its addresses is loopback, private, link-local or otherwise
not global; the connection then goes to the address that was checked, not to a second
resolution of the name (which DNS rebinding could change). TLS still verifies the name.
Redirects are not followed: any answer but a 2xx is a failed attempt.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..core.errors import FieldError
from ..core.webhooks import address_blocked

MAX_ANSWER_BYTES = 64 * 1024
RESOLVED_TTL = 30.0  # seconds a checked answer of DNS is used again by one worker
USER_AGENT = "ConsentGateway-Webhooks/1"


class AddressRefused(Exception):
    """The URL's host does not resolve, or resolves to an address webhooks may not reach."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_address(host: str, port: int, allow_private: bool) -> str | None:
    """The address to connect to, or None (connect by name) when private targets are allowed.
    Raises AddressRefused."""
    if allow_private:
        return None
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise AddressRefused("does_not_resolve") from None
    if not addresses:
        raise AddressRefused("does_not_resolve")
    if any(address_blocked(a) for a in addresses):
        raise AddressRefused("private_address")
    return addresses[0]


def _port(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def address_problems(url: str, allow_private: bool) -> list[FieldError]:
    """Subscribe time: the URL's host must resolve to addresses webhooks may reach."""
    _scheme, host, port = _port(url)
    try:
        checked_address(host, port, allow_private)
    except AddressRefused as exc:
        message = ("does not resolve" if exc.reason == "does_not_resolve" else
                   "resolves to a loopback, private or link-local address (allowed only with "
                   "GATEWAY_WEBHOOK_ALLOW_PRIVATE=true)")
        return [FieldError("url", message)]
    return []


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the HTTP status, None when there was no answer
    latency_ms: int
    error: str | None  # None | http_status | timeout | connection | tls | private_address | ...

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None


class _Deadlines:
    """Cuts every exchange at its deadline: a socket timeout bounds each read only, and a
    receiver that trickles its answer would otherwise hold a worker thread for long."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, tuple[float, http.client.HTTPConnection]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, conn: http.client.HTTPConnection, deadline: float) -> int:
        with self._lock:
            key = id(conn)
            self._open[key] = (deadline, conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
        return key

    def done(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                late = [c for d, c in self._open.values() if d <= now]
            for conn in late:
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


class Sender:
    """Posts bodies, keeping one connection per target and thread alive between posts."""

    def __init__(self, *, timeout: float, allow_private: bool):
        self.timeout = timeout
        self.allow_private = allow_private
        self._local = threading.local()
        self._deadlines = _Deadlines()
        self._tls = ssl.create_default_context()
        self._resolved: dict[tuple[str, int], tuple[float, str | None]] = {}
        self._resolved_lock = threading.Lock()

    def _address(self, host: str, port: int) -> str | None:
        """The checked address of the host, asked of DNS again every RESOLVED_TTL seconds.
        Raises AddressRefused."""
        now = time.monotonic()
        with self._resolved_lock:
            found = self._resolved.get((host, port))
        if found is not None and found[0] > now:
            return found[1]
        address = checked_address(host, port, self.allow_private)
        with self._resolved_lock:
            if len(self._resolved) > 1000:
                self._resolved.clear()
            self._resolved[(host, port)] = (now + RESOLVED_TTL, address)
        return address

    def _connections(self) -> dict[tuple[str, str, int, str | None], http.client.HTTPConnection]:
        found = getattr(self._local, "connections", None)
        if found is None:
            found = self._local.connections = {}
        return found

    def _connect(self, scheme: str, host: str, port: int,
                 address: str | None) -> http.client.HTTPConnection:
        key = (scheme, host, port, address)
        pool = self._connections()
        conn = pool.get(key)
        if conn is not None:
            return conn
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        if address is not None:
            # connect to the address that was checked; the Host header and TLS keep the name
            def create(_addr, timeout=None, source_address=None, _ip=address):
                return socket.create_connection((_ip, port), timeout, source_address)

            conn._create_connection = create  # type: ignore[attr-defined]
        pool[key] = conn
        return conn

    def _drop(self, scheme: str, host: str, port: int, address: str | None) -> None:
        conn = self._connections().pop((scheme, host, port, address), None)
        if conn is not None:
            conn.close()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """One attempt; never raises."""
        started = time.monotonic()
        scheme, host, port = _port(url)
        try:
            address = self._address(host, port)
        except AddressRefused as exc:
            return Outcome(None, 0, exc.reason)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        for reused in (True, False):
            conn = self._connect(scheme, host, port, address)
            fresh = conn.sock is None
            key = self._deadlines.watch(conn, started + self.timeout)
            try:
                conn.request("POST", target, body=body, headers=all_headers)
                response = conn.getresponse()
                response.read(MAX_ANSWER_BYTES)
                if not response.isclosed() or response.will_close:
                    self._drop(scheme, host, port, address)
                elapsed = time.monotonic() - started
                latency = int(elapsed * 1000)
                if elapsed > self.timeout:
                    self._drop(scheme, host, port, address)
                    return Outcome(response.status, latency, "timeout")
                error = None if 200 <= response.status < 300 else "http_status"
                return Outcome(response.status, latency, error)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(scheme, host, port, address)
                if reused and not fresh and time.monotonic() - started < self.timeout:
                    continue  # a kept-alive connection the receiver had closed: once more, anew
                return Outcome(None, int((time.monotonic() - started) * 1000), _kind(exc, started,
                                                                                    self.timeout))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop(scheme, host, port, address)
                return Outcome(None, int((time.monotonic() - started) * 1000),
                               _kind(exc, started, self.timeout))
            finally:
                self._deadlines.done(key)
        return Outcome(None, int((time.monotonic() - started) * 1000), "connection")

    def close(self) -> None:
        for conn in self._connections().values():
            conn.close()
        self._connections().clear()


def _kind(exc: BaseException, started: float, timeout: float) -> str:
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, TimeoutError) or time.monotonic() - started >= timeout:
        return "timeout"
    return "connection"
