"""What every daemon offers operators: ``--log-format text|json`` and ``--metrics-port``
(see :mod:`hotline.logs` and :mod:`hotline.metrics`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from hotline.cli.app import err
from hotline.errors import UsageError
from hotline.logs import LOG_FORMATS, install
from hotline.metrics import DaemonMetrics, serve_metrics
from hotline.services import Session
from store.environment import log_format as env_log_format
from store.errors import EnvironmentVariableError

__all__ = [
    "LogFormatOption",
    "MetricsHostOption",
    "MetricsPortOption",
    "chosen_log_format",
    "observed",
    "say",
]

log = logging.getLogger("hotline.daemon")

LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        metavar="text|json",
        help="Log lines as text or one JSON object each (default: $HOTLINE_LOG_FORMAT, "
        "else text). One line per notice state change; never any content.",
        show_default=False,
    ),
]
MetricsPortOption = Annotated[
    int,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        metavar="PORT",
        help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: off).",
    ),
]
MetricsHostOption = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        metavar="HOST",
        help="Address the metrics are served on (0.0.0.0 in a container, for Prometheus).",
    ),
]

#: Libraries that log every request at INFO: only their warnings reach the daemons' logs.
QUIET_LOGGERS = ("httpx", "httpcore", "aiosmtpd", "mail.log")


def chosen_log_format(value: str | None) -> str:
    """``--log-format``, else ``$HOTLINE_LOG_FORMAT``, else ``text``; exit 2 for anything else."""
    if value is None:
        try:
            return env_log_format()
        except EnvironmentVariableError as exc:
            raise UsageError(str(exc)) from None
    folded = value.strip().lower()
    if folded not in LOG_FORMATS:
        raise UsageError(f"--log-format: expected text or json, got {value!r}")
    return folded


@contextmanager
def observed(
    role: str,
    session: Session,
    *,
    log_format: str,
    metrics_port: int,
    metrics_host: str,
    level: int = logging.INFO,
    logs: bool = True,
) -> Iterator[DaemonMetrics | None]:
    """Log to standard error in ``log_format`` (unless ``logs`` is off: the caller has its
    own handler) and, with a port, serve the metrics of ``role`` for the duration of the
    block; yields the daemon's counters (None: no metrics)."""
    handler = install(sys.stderr, log_format, level) if logs else None
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        metrics = None
        if metrics_port:
            try:
                metrics = serve_metrics(role, session, port=metrics_port, host=metrics_host)
            except OSError as exc:
                raise UsageError(
                    f"--metrics-port {metrics_port}: cannot listen on {metrics_host}: "
                    f"{exc.strerror or exc}"
                ) from None
        yield metrics
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)


def say(log_format: str, message: str, *, quiet: bool = False, event: str = "status") -> None:
    """A daemon's status line: as it is on standard error in text format (not with
    ``quiet``, i.e. ``--json``), a log event of its own in json."""
    if log_format == "json":
        log.info(message, extra={"event": event})
    elif not quiet:
        err.print(message, markup=False)
