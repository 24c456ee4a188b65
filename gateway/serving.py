"""gunicorn glue: an error log that never repeats what a client sent.

gunicorn's own error log writes the request line when a request is malformed
("Invalid request from ip=…: Invalid HTTP request line: '…'") and the method
and URI when a worker fails while handling one. Paths carry raw subject ids, so
`gunicorn.conf.py` sets `logger_class` to `RedactingLogger`, which keeps those
lines (their kind and the stack) and drops the client's text and address.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

INVALID_REQUEST = "Invalid request from ip="
ERROR_HANDLING = "Error handling request"


class RedactingLogger(Logger):
    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(INVALID_REQUEST):
            error = msg.split(": ", 1)[1] if ": " in msg else ""
            kind = error.split(":", 1)[0].split("'", 1)[0].strip() or "malformed request"
            msg, args = "Invalid request refused (%s; request line and address withheld)", (kind,)
        super().warning(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(ERROR_HANDLING):
            msg, args = "Error handling request (method and URI withheld)", ()
        super().exception(msg, *args, **kwargs)
