"""The daemons' log lines: ``--log-format text`` (default) or ``json``, one event per line.

``text`` is ``time level logger: message``. ``json`` is one object per line with stable keys,
for log shippers::

    {"time": "2026-12-06T14:03:11.204Z", "level": "INFO", "logger": "takedown.notices",
     "message": "notice N-3F2A91C0 sent: smtp to abuse@alpha.example", "event": "notice",
     "notice": "3f2a91c0...", "action": "sent", "status": "sent", "previous": "queued",
     "actor": "notifier@host"}

Fields a caller passes with ``extra=`` become keys of their own (``event``, ``notice``,
``status``...); a traceback is one string under ``error``. No log line carries content: a
``bytes`` value in ``extra`` is written as its length only (``"<1234 bytes>"``), and the
messages are built from identifiers, states and addresses, never from a downloaded body.

The format comes from ``--log-format``, else ``HOTLINE_LOG_FORMAT``, else ``text``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final, TextIO

__all__ = [
    "LOG_FORMATS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "formatter",
    "install",
]

LOG_FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every LogRecord has: everything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _plain(value: object) -> object:
    """A JSON value for an ``extra`` field: bytes by their length only, other objects as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data and not key.startswith("_"):
                data[key] = _plain(value)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (one of :data:`LOG_FORMATS`)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")


def install(stream: TextIO, log_format: str, level: int | str = logging.INFO) -> logging.Handler:
    """Log records at ``level`` and above to ``stream`` in ``log_format``, through the root
    logger; returns the handler, for the caller to remove."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > handler.level:
        root.setLevel(handler.level)
    return handler
