"""What every command module shares: the Typer app (with ``--version`` and Typer's shell
completion, ``--install-completion`` and ``--show-completion``), the consoles, the options
several commands declare alike, and the small steps they all take (read the configuration,
open Redis, turn ``--set`` and ``--allow-network`` into values, stop on a signal, read seeds).

The commands do not register themselves: :mod:`hotline.cli` adds each one to :data:`app`, in
the order ``--help`` lists them.
"""

from __future__ import annotations

import signal
import sys
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from crawler.seeds import SeedFileError, SeedProblem, collect_seeds
from crawler.settings import CRAWL_DEPTH, CRAWL_MAX_PAGES_PER_SEED
from hotline.config import Config
from hotline.errors import InputError, UsageError
from hotline.services import Session, redis_session
from hotline.takedownrun import Takedown, open_takedown
from store.addresses import parse_networks

__all__ = [
    "CRAWL_DEPTH",
    "CRAWL_MAX_PAGES_PER_SEED",
    "DepthOption",
    "HitDepthOption",
    "JsonOption",
    "ListsOption",
    "MaxPagesOption",
    "ObeyRobotsOption",
    "SetsOption",
    "VerboseOption",
    "app",
    "check_networks",
    "check_status",
    "distribution_version",
    "err",
    "load_config",
    "open_session",
    "open_takedown_session",
    "out",
    "parse_sets",
    "read_seeds",
    "report_seeds",
    "stop_on_signals",
]

# Off a terminal (pipes, CI logs) tables get room for whole URLs instead of 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Notice-and-takedown crawler: crawl reported URLs, hash every image in memory, "
    "match known hash lists, send takedown notices and verify removal.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: The distribution ``hotline --version`` names (``[project] name`` in ``pyproject.toml``).
DISTRIBUTION = "hotline-crawler"
#: Where the version is read from when the package runs from a checkout that is not installed.
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def distribution_version() -> str:
    """The installed distribution's version; from a checkout that is not installed,
    ``pyproject.toml``'s; ``unknown`` when neither says."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unknown"
    version = project.get("version") if isinstance(project, dict) else None
    return version if isinstance(version, str) and version else "unknown"


def _print_version(value: bool) -> None:
    if value:
        out.print(f"{DISTRIBUTION} {distribution_version()}", markup=False)
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """The options of ``hotline`` itself (before any command)."""


# -- options declared alike by several commands -------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")]

# What a crawl does, for `crawl` and `schedule add` (with the defaults imported here).
DepthOption = Annotated[
    int, typer.Option(min=0, help="Link depth to follow within each seed's site.")
]
MaxPagesOption = Annotated[int, typer.Option(min=1, help="Page cap per seed.")]
HitDepthOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="Extra link depth below a page that yielded a confirmed hit (0: none).",
    ),
]
ObeyRobotsOption = Annotated[bool, typer.Option(help="Obey robots.txt (off by default).")]
ListsOption = Annotated[
    list[str] | None, typer.Option("--list", help="Match only these lists (repeatable).")
]
SetsOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a Scrapy setting, NAME=VALUE (repeatable)."),
]
# The address policy, for every command that fetches (`crawl`, `worker`, `schedule add`,
# `recheck`): nothing private is reached unless one of these says so.
AllowPrivateNetworksOption = Annotated[
    bool,
    typer.Option(
        help="Let fetches reach private, loopback and link-local addresses (tests, demos, "
        "labs). Also HOTLINE_ALLOW_PRIVATE_NETWORKS=1."
    ),
]
AllowNetworkOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-network",
        help="A private network (CIDR) fetches may reach, e.g. a lab (repeatable).",
    ),
]


# -- steps every command takes ------------------------------------------------------------


def load_config() -> Config:
    return Config.from_env()


def open_session(config: Config | None = None) -> AbstractContextManager[Session]:
    """Redis for one command: the configured server, or the embedded one (see
    :func:`hotline.services.redis_session`); ``config`` defaults to the environment's."""
    return redis_session(load_config() if config is None else config)


@contextmanager
def open_takedown_session(
    config: Config | None = None, *, consumer: str | None = None, need_sender: bool = True
) -> Iterator[Takedown]:
    """Redis and the notice system for one command (see :func:`hotline.takedownrun.open_takedown`:
    ``need_sender=False`` for commands that send nothing)."""
    config = load_config() if config is None else config
    with (
        open_session(config) as session,
        open_takedown(session, config, consumer=consumer, need_sender=need_sender) as takedown,
    ):
        yield takedown


def check_status(status: str | None, statuses: Iterable[str]) -> None:
    """Refuse a ``--status`` filter that names no status."""
    if status is not None and status not in statuses:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(statuses)}")


def parse_sets(values: Iterable[str]) -> dict[str, str]:
    """``--set NAME=VALUE`` options as a mapping (a Scrapy setting override each).

    A value that cannot be read as the setting's type (``--set DOWNLOAD_MAXSIZE=abc``: the
    project's value is an integer) is refused here with one line, rather than as a traceback
    from deep inside the crawl."""
    overrides = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {value!r}: expected NAME=VALUE")
        overrides[key.strip()] = setting
    if overrides:
        _check_set_types(overrides)
    return overrides


#: The project's settings that only a positive number makes sense for (what to say otherwise).
_POSITIVE_SETTINGS: Mapping[str, str] = {
    "CRAWL_MEDIA_MAXSIZE": "a positive number of bytes",
    "MATCHER_HASH_TIMEOUT": "a positive number of seconds",
    "MATCHER_ARCHIVE_TIMEOUT": "a positive number of seconds",
    "MATCHER_ARCHIVE_MAX_MEMBERS": "a positive whole number",
    "MATCHER_ARCHIVE_MAX_BYTES": "a positive whole number of bytes",
    "MATCHER_ARCHIVE_MAX_RATIO": "a positive whole number",
    "MATCHER_ARCHIVE_MAX_DEPTH": "a positive whole number",
    "MATCHER_VIDEO_SAMPLE_FPS": "a positive number of frames per second",
    "MATCHER_VIDEO_MAX_FRAMES": "a positive whole number",
    "MATCHER_VIDEO_MAX_FRAME_PIXELS": "a positive whole number of pixels",
    "MATCHER_VIDEO_MAX_DECODED_PIXELS": "a positive whole number of pixels",
    "MATCHER_VIDEO_MAX_SECONDS": "a positive number of seconds",
}
#: The project's settings where 0 turns a bound off and a negative number makes no sense.
_NON_NEGATIVE_SETTINGS: Mapping[str, str] = {
    "CRAWL_MAX_HELD_RESPONSES": "a whole number of responses (0: no bound)",
}


def _check_set_types(overrides: Mapping[str, str]) -> None:
    from scrapy.settings import Settings  # noqa: PLC0415 - loads Scrapy

    from crawler.runsettings import build_settings  # noqa: PLC0415 - loads Scrapy

    project = build_settings()
    for key, raw in overrides.items():
        current = project.get(key)
        probe = Settings({key: raw})
        readers: list[tuple[type | tuple[type, ...], str, Any]] = [
            (bool, "true/false or 1/0", probe.getbool),
            # Scrapy reads some integer-valued settings as numbers (DOWNLOAD_TIMEOUT=1.5).
            ((int, float), "a number", probe.getfloat),
            ((list, tuple), "a comma-separated list", probe.getlist),
            (dict, "a JSON object", probe.getdict),
        ]
        for kind, expected, read in readers:
            if isinstance(current, kind):
                try:
                    read(key)
                except (ValueError, TypeError):
                    raise UsageError(f"--set {key}={raw!r}: expected {expected}") from None
                break
        positive = _POSITIVE_SETTINGS.get(key)
        if positive is not None:
            try:
                number = int(raw) if "whole" in positive else float(raw)
            except ValueError:
                number = 0
            if not number > 0 or number == float("inf"):
                raise UsageError(f"--set {key}={raw!r}: expected {positive}")
        non_negative = _NON_NEGATIVE_SETTINGS.get(key)
        if non_negative is not None and not (raw.strip().isdecimal() and raw.strip().isascii()):
            raise UsageError(f"--set {key}={raw!r}: expected {non_negative}")
    if "CRAWL_PROXY" in overrides:
        from crawler.safety import proxy_from_settings  # noqa: PLC0415 - loads Scrapy

        try:
            proxy_from_settings(Settings({"CRAWL_PROXY": overrides["CRAWL_PROXY"]}))
        except ValueError as exc:
            raise UsageError(f"--set {exc}") from None


def check_networks(values: Iterable[str]) -> None:
    """Refuse an ``--allow-network`` value the crawler's safety middleware would refuse."""
    try:
        parse_networks(list(values))
    except ValueError as exc:
        raise UsageError(str(exc).replace("SAFETY_ALLOWED_NETWORKS", "--allow-network")) from None


def read_seeds(urls: Iterable[str], seeds: Path | None) -> tuple[list[str], list[SeedProblem]]:
    """The seed URLs of the arguments and of the ``--seeds`` file, and the rejected ones."""
    try:
        good, problems = collect_seeds(urls, [seeds] if seeds else [])
    except SeedFileError as exc:
        raise InputError(str(exc)) from None
    return [s.url for s in good], problems


def report_seeds(urls: list[str], problems: list[SeedProblem], *, what: str) -> None:
    """Say each rejected seed on standard error; no valid seed is a usage error."""
    for problem in problems:
        err.print(f"skipped seed {problem}", markup=False)
    if not urls:
        raise UsageError(f"no valid seed URL to {what} (give URLs or --seeds FILE)")


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
