"""``hotline serve``: the analyst console and HTTP API (:mod:`hotline.console`), served by
uvicorn on the configured Redis (the embedded one by default) until SIGINT or SIGTERM, when
it finishes the requests in hand and exits."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import sys
from contextlib import ExitStack
from types import FrameType
from typing import Annotated

import typer

from hotline.cli.app import (
    CRAWL_DEPTH,
    CRAWL_MAX_PAGES_PER_SEED,
    AllowNetworkOption,
    AllowPrivateNetworksOption,
    DepthOption,
    MaxPagesOption,
    check_networks,
    err,
    load_config,
    open_session,
)
from hotline.cli.observe import (
    LogFormatOption,
    MetricsHostOption,
    MetricsPortOption,
    chosen_log_format,
    observed,
)
from hotline.errors import UsageError
from hotline.scheduler import RUN_LOG_DIR, CrawlLauncher
from hotline.takedownrun import open_takedown
from store.accounts import Accounts
from store.clock import parse_duration
from store.options import CrawlOptions

__all__ = ["serve"]

#: Seconds uvicorn waits for open requests when asked to stop.
GRACEFUL_SHUTDOWN = 10


def _seconds(value: str, option: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"{option} {value!r}: must be more than 0")
    return seconds


def _check_bind(host: str, port: int) -> None:
    """Fail with one line, before anything starts, when the address cannot be listened on."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (put TLS in front for anything but loopback).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    root_path: Annotated[
        str,
        typer.Option(
            "--root-path",
            help="Path prefix the reverse proxy serves the console under, e.g. /hotline.",
        ),
    ] = "",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Reverse proxies trusted for X-Forwarded-For/-Proto (comma-separated; '*' any).",
        ),
    ] = "127.0.0.1",
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Mark cookies Secure (default: when the request came over HTTPS).",
            show_default=False,
        ),
    ] = None,
    idle_timeout: Annotated[
        str, typer.Option(help="A session ends after this long without a request.")
    ] = "30m",
    absolute_timeout: Annotated[
        str, typer.Option(help="A session ends this long after login, whatever happens.")
    ] = "12h",
    depth: DepthOption = CRAWL_DEPTH,
    max_pages: MaxPagesOption = CRAWL_MAX_PAGES_PER_SEED,
    allow_private_networks: AllowPrivateNetworksOption = False,
    allow_network: AllowNetworkOption = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Queue reported URLs for `hotline worker` processes instead of crawling "
            "each report in a process of its own here.",
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option(help="One JSON line per request on standard error.")
    ] = True,
    log_format: LogFormatOption = None,
    metrics_port: MetricsPortOption = 0,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Serve the analyst console and the HTTP API (/api/v1, described at /api/docs)."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from hotline.console.app import create_app  # noqa: PLC0415
    from hotline.console.state import ConsoleSettings, ConsoleState  # noqa: PLC0415

    fmt = chosen_log_format(log_format)
    config = load_config()
    check_networks(allow_network or [])
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise UsageError(f"--root-path {root_path!r}: start with / and do not end with one")
    idle = _seconds(idle_timeout, "--idle-timeout")
    absolute = _seconds(absolute_timeout, "--absolute-timeout")
    _check_bind(host, port)
    logger = logging.getLogger("hotline.console.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    settings = ConsoleSettings(
        idle_timeout=idle,
        absolute_timeout=absolute,
        secure_cookies=secure_cookies,
        crawl_options=CrawlOptions(
            depth=depth,
            max_pages=max_pages,
            allow_private_networks=allow_private_networks or config.allow_private_networks,
            allowed_networks=tuple(allow_network or ()),
            distributed=distributed,
        ),
        access_log=logger.info if access_log else None,
    )
    with ExitStack() as stack:
        session = stack.enter_context(open_session(config))
        takedown = stack.enter_context(open_takedown(session, config, need_sender=False))
        stack.enter_context(
            observed(
                "console",
                session,
                log_format=fmt,
                metrics_port=metrics_port,
                metrics_host=metrics_host,
            )
        )
        accounts = Accounts(session.client, session.keys)
        if not accounts.users():
            err.print(
                "note: no console users yet; add one with `hotline users add NAME --role admin`",
                markup=False,
            )
        state = ConsoleState(
            config=config,
            settings=settings,
            session=session,
            accounts=accounts,
            takedown=takedown,
            launch=CrawlLauncher(config.data_dir / RUN_LOG_DIR),
        )
        app = create_app(state, root_path=root_path)
        err.print(f"console on http://{host}:{port}{root_path}/ (Ctrl-C stops)", markup=False)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
        # handler it found; a handler that returns lets the stores close and the exit be 0.
        signal.signal(signal.SIGTERM, _stopped)
        uvicorn.run(
            app,
            host=host,
            port=port,
            root_path=root_path,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            server_header=False,
        )
    err.print("console stopped", markup=False)


def _stopped(signum: int, frame: FrameType | None) -> None:
    """SIGTERM after uvicorn's graceful shutdown: nothing left to do but return."""
