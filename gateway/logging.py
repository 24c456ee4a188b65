"""structlog: JSON lines with a request id; never a raw subject id or attribute value.

Exceptions are logged by type and stack only, never by message: the message of a database
error carries the SQL statement and what the database said about the values (PostgreSQL:
`invalid input syntax for type integer: "<the value>"`, `Key (id)=(<the value>) already
exists`), and other exceptions quote what they were given. Engines are also built with
`hide_parameters=True` (store/db.py), but this is what keeps a client's value out of the log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

WITHHELD = "(message withheld: it may quote SQL parameters or request values)"


def describe_exception(exc: BaseException) -> str:
    """A traceback with frames (file, line, function, code) and exception types only, following
    `raise ... from` and `during handling` chains like Python's own, without any message."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        stack = "".join(traceback.format_tb(current.__traceback__))
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        parts.append(f"Traceback (most recent call last):\n{stack}{name}: {WITHHELD}")
        if current.__cause__ is not None:
            parts.append("The above exception was the direct cause of the following exception:")
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            parts.append("During handling of the above exception, another exception occurred:")
            current = current.__context__
        else:
            current = None
    return "\n\n".join(reversed(parts))


def _exc_info_tuple(value: Any) -> tuple[type, BaseException, TracebackType | None] | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[1] is not None:
        return value
    if value is True:
        info = sys.exc_info()
        return info if info[1] is not None else None
    return None


def _exception_without_message(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """structlog's format_exc_info, minus exception messages."""
    info = _exc_info_tuple(event.pop("exc_info", None))
    if info is not None:
        event["exception"] = describe_exception(info[1])
    return event


class _Formatter(logging.Formatter):
    """For records of other libraries (SQLAlchemy's pool, Werkzeug): tracebacks without messages."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return describe_exception(ei[1]) if ei and ei[1] is not None else ""


class _NoRequestLines(logging.Filter):
    """Werkzeug's development server logs every request line and every malformed request it
    refuses, with the path (which carries subject ids) or the raw bytes a client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = "werkzeug: request details withheld (paths carry subject ids)", ()
        return True


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(message)s"))
    logging.basicConfig(handlers=[handler], level=level, force=True)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NoRequestLines) for f in werkzeug.filters):
        werkzeug.addFilter(_NoRequestLines())
    renderer = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_without_message,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
