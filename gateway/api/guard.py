"""What Werkzeug lets through before a request reaches a view: chunked bodies past the size limit
and URLs that are not UTF-8. Both are refused here, for every endpoint, as problem+json."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, request

from ..core.errors import FieldError, MalformedRequest

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Past the limit, up to this much more of a body is read and dropped before the 413, so that
# the client, still sending, reads the answer instead of a connection reset. A larger body
# is cut off there (gunicorn closes the connection after the answer).
DRAIN_BYTES = 1024 * 1024


class ChunkedBodyLimit:
    """WSGI middleware: a body without Content-Length obeys MAX_CONTENT_LENGTH like one with it.

    A server that decodes `Transfer-Encoding: chunked` itself (gunicorn, Werkzeug's development
    server) marks the body `wsgi.input_terminated` and sends no length. Werkzeug then reads such a
    body up to MAX_CONTENT_LENGTH and stops without an error: a larger body was cut short, and
    the part within the limit was used. Here the decoded body is read up to one byte past the
    limit and handed on with its length, so that reading it raises the same 413 as a
    Content-Length over the limit (api/errors.py), and a body within the limit is read whole.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApp):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if limit is not None and environ.get("wsgi.input_terminated") and (
                chunked or not environ.get("CONTENT_LENGTH")):
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            if len(body) > limit:
                _read_at_most(environ["wsgi.input"], DRAIN_BYTES, keep=False)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))  # limit + 1 when over: a 413 on reading
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # decoded by the server already
        return self.wsgi_app(environ, start_response)


def _read_at_most(stream, size: int, *, keep: bool = True) -> bytes:
    parts, got = [], 0
    while got < size:
        part = stream.read(min(64 * 1024, size - got))
        if not part:
            break
        if keep:
            parts.append(part)
        got += len(part)
    return b"".join(parts)


def _raw_path_and_query(environ: dict[str, Any]) -> tuple[bytes, bytes]:
    """The path and query as the client sent them, percent-decoded to bytes.

    Werkzeug decodes PATH_INFO and the query with errors="replace", so that `%FF` and `%FE`
    both became U+FFFD and two different raw subject ids met as one. The raw request URI
    (RAW_URI from gunicorn, REQUEST_URI/RAW_URI from Werkzeug) is checked when the server
    gives one; a WSGI string holds the bytes as latin-1 characters (PEP 3333)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        raw_bytes = raw.encode("latin-1", "replace")
        if not raw_bytes.startswith(b"/"):  # absolute form: http://host/path?query
            parts = urlsplit(raw_bytes)
            path, query = parts.path, parts.query
        else:
            path, _, query = raw_bytes.partition(b"?")
        return unquote_to_bytes(path), unquote_to_bytes(query.replace(b"+", b" "))
    path = environ.get("PATH_INFO", "").encode("latin-1", "replace")
    query = environ.get("QUERY_STRING", "").encode("latin-1", "replace")
    return path, unquote_to_bytes(query.replace(b"+", b" "))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _require_utf8_url() -> None:
    path, query = _raw_path_and_query(request.environ)
    errors = []
    if not _utf8(path):
        errors.append(FieldError("path", "not valid UTF-8 once percent-decoded"))
    if not _utf8(query):
        errors.append(FieldError("query", "not valid UTF-8 once percent-decoded"))
    if errors:
        raise MalformedRequest("the URL is not valid UTF-8", errors=errors)


def init_app(app: Flask) -> None:
    app.wsgi_app = ChunkedBodyLimit(app, app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(_require_utf8_url)
