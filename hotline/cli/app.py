"""What every ``hotline`` command module shares: the Typer app, the consoles, common options.

The commands live in ``hotline.cli`` (crawl, demo, hits, review, the entry point),
``hotline.cli_hashes`` (hash lists), ``hotline.cli_runs`` (runs), ``hotline.cli_schedule``
(schedules and the scheduler) and ``hotline.cli_takedown`` (notifier, providers, notices,
rechecks, statistics); ``hotline.cli`` registers them all on :data:`app`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from hotline.config import Config
from hotline.errors import UsageError

__all__ = ["JsonOption", "app", "err", "load_config", "out", "parse_sets", "stop_on_signals"]

# Off a terminal (pipes, CI logs) tables get room for whole URLs instead of 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Notice-and-takedown crawler: crawl reported URLs, hash every image in memory, "
    "match known hash lists, send takedown notices and verify removal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def load_config() -> Config:
    return Config.from_env()


def parse_sets(values: Iterable[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` options as a mapping (a Scrapy setting override each)."""
    overrides = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {value!r}: expected NAME=VALUE")
        overrides[key.strip()] = setting
    return overrides


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so a daemon finishes the message in hand and exits."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
