"""Every ``HOTLINE_*`` environment variable: its name, how its value is read, its default.

=================================  =========================================================
``HOTLINE_REDIS_URL``              Redis to use (``redis://``, ``rediss://``, ``unix://``);
                                   unset: the embedded server under the data directory
``HOTLINE_DATA_DIR``               per-user state (default ``$XDG_DATA_HOME/hotline-crawler``
                                   or ``~/.local/share/hotline-crawler``)
``HOTLINE_KEY_PREFIX``             prefix of every Redis key (default ``hotline:``)
``HOTLINE_ALLOW_PRIVATE_NETWORKS`` a yes/no (:func:`parse_bool`): yes lets crawls and rechecks
                                   reach private and loopback addresses (default no)
``HOTLINE_CRAWL_PROXY``            ``http://host:port`` of a proxy crawls, rechecks and workers go
                                   through, each target host checked here first (default none;
                                   ``CRAWL_PROXY`` overrides it); proxy variables such as
                                   ``http_proxy`` are never used
``HOTLINE_CONFIG``                 the TOML configuration of notices (default: ``hotline.toml``
                                   in the data directory, when it exists)
``HOTLINE_RDAP_URL``               RDAP: ``bootstrap`` (the IANA registry, the default), a
                                   base URL for every query, or ``""`` (off); read by
                                   ``takedown.settings``
``HOTLINE_SMTP_PASSWORD``          the SMTP password; read by ``takedown.settings``
``HOTLINE_WEBHOOK_SECRET``         the key webhook notices are signed with; read by
                                   ``takedown.settings``
``HOTLINE_CLOUDFLARE_ACCOUNT_ID``  the Cloudflare account that submits abuse reports; read by
                                   ``takedown.settings``
``HOTLINE_CLOUDFLARE_API_TOKEN``   its API token (Trust and Safety permission); read by
                                   ``takedown.settings``
``HOTLINE_SCHEDULE_MIN_INTERVAL``  the shortest ``schedule add --every`` (a duration, default
                                   ``1m``)
=================================  =========================================================

The CLI builds its typed ``hotline.config.Config`` from the readers here; the crawler
(``scrapy crawl``, which may not import ``hotline``) calls the same ones, so both read a
variable alike. Each reader takes the environment as a mapping (``None``: ``os.environ``) and
raises :class:`~store.errors.EnvironmentVariableError`, whose message starts with the
variable's name, for a value it cannot use.

:func:`parse_bool` is the project's one reading of a yes/no text (its spellings are
:data:`TRUE_SPELLINGS` and :data:`FALSE_SPELLINGS`), for environment variables and the
provider directory alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from store.clock import parse_duration
from store.errors import EnvironmentVariableError
from store.keys import DEFAULT_PREFIX, validate_prefix

__all__ = [
    "APP_NAME",
    "CONFIG_FILE_NAME",
    "ENV_ALLOW_PRIVATE",
    "ENV_CLOUDFLARE_ACCOUNT_ID",
    "ENV_CLOUDFLARE_API_TOKEN",
    "ENV_CONFIG",
    "ENV_CRAWL_PROXY",
    "ENV_DATA_DIR",
    "ENV_KEY_PREFIX",
    "ENV_LOG_FORMAT",
    "ENV_RDAP_URL",
    "ENV_REDIS_URL",
    "ENV_SCHEDULE_MIN_INTERVAL",
    "ENV_SMTP_PASSWORD",
    "ENV_WEBHOOK_SECRET",
    "ENV_XDG_DATA_HOME",
    "FALSE_SPELLINGS",
    "TRUE_SPELLINGS",
    "allow_private_networks",
    "config_path",
    "crawl_proxy",
    "default_data_dir",
    "key_prefix",
    "log_format",
    "parse_bool",
    "redis_url",
    "schedule_min_interval",
]

ENV_REDIS_URL: Final = "HOTLINE_REDIS_URL"
ENV_DATA_DIR: Final = "HOTLINE_DATA_DIR"
ENV_KEY_PREFIX: Final = "HOTLINE_KEY_PREFIX"
ENV_ALLOW_PRIVATE: Final = "HOTLINE_ALLOW_PRIVATE_NETWORKS"
ENV_CONFIG: Final = "HOTLINE_CONFIG"
ENV_CRAWL_PROXY: Final = "HOTLINE_CRAWL_PROXY"
ENV_LOG_FORMAT: Final = "HOTLINE_LOG_FORMAT"
ENV_RDAP_URL: Final = "HOTLINE_RDAP_URL"
ENV_SMTP_PASSWORD: Final = "HOTLINE_SMTP_PASSWORD"  # noqa: S105 - the variable's name
ENV_WEBHOOK_SECRET: Final = "HOTLINE_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
ENV_CLOUDFLARE_ACCOUNT_ID: Final = "HOTLINE_CLOUDFLARE_ACCOUNT_ID"
ENV_CLOUDFLARE_API_TOKEN: Final = "HOTLINE_CLOUDFLARE_API_TOKEN"  # noqa: S105 - the variable's name
ENV_SCHEDULE_MIN_INTERVAL: Final = "HOTLINE_SCHEDULE_MIN_INTERVAL"
#: Not ours, but it places the default data directory (XDG Base Directory specification).
ENV_XDG_DATA_HOME: Final = "XDG_DATA_HOME"

#: The data directory's name under ``$XDG_DATA_HOME`` or ``~/.local/share``.
APP_NAME: Final = "hotline-crawler"
#: The configuration of notices read from the data directory when ``HOTLINE_CONFIG`` is unset.
CONFIG_FILE_NAME: Final = "hotline.toml"

#: How "yes" and "no" may be written (compared after stripping and lowercasing); an empty
#: value is "no", as for an unset variable.
TRUE_SPELLINGS: Final = frozenset({"1", "true", "yes", "y", "on"})
FALSE_SPELLINGS: Final = frozenset({"0", "false", "no", "n", "off", ""})


def parse_bool(text: str) -> bool:
    """``text`` as a yes/no; ``ValueError`` for anything not in the two spelling sets."""
    folded = text.strip().lower()
    if folded in TRUE_SPELLINGS:
        return True
    if folded in FALSE_SPELLINGS:
        return False
    raise ValueError(f"{text!r} is not true or false")


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def redis_url(env: Mapping[str, str] | None = None) -> str | None:
    """``$HOTLINE_REDIS_URL``, or ``None`` (unset or blank): use the embedded server."""
    return _environ(env).get(ENV_REDIS_URL, "").strip() or None


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user data directory (not created; see ``hotline.paths.ensure_data_dir``).

    ``$HOTLINE_DATA_DIR`` if set and non-empty, else ``$XDG_DATA_HOME/hotline-crawler``, else
    ``~/.local/share/hotline-crawler``.
    """
    environ = _environ(env)
    explicit = environ.get(ENV_DATA_DIR, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get(ENV_XDG_DATA_HOME, "")
    if xdg:
        return Path(xdg).expanduser() / APP_NAME
    return Path.home() / ".local" / "share" / APP_NAME


def key_prefix(env: Mapping[str, str] | None = None) -> str:
    """``$HOTLINE_KEY_PREFIX`` (validated), or the default prefix when unset or empty."""
    prefix = _environ(env).get(ENV_KEY_PREFIX) or DEFAULT_PREFIX
    try:
        validate_prefix(prefix)
    except ValueError as exc:
        raise EnvironmentVariableError(ENV_KEY_PREFIX, str(exc)) from None
    return prefix


def allow_private_networks(env: Mapping[str, str] | None = None) -> bool:
    """``$HOTLINE_ALLOW_PRIVATE_NETWORKS`` as a yes/no (unset: no)."""
    raw = _environ(env).get(ENV_ALLOW_PRIVATE, "")
    try:
        return parse_bool(raw)
    except ValueError:
        raise EnvironmentVariableError(
            ENV_ALLOW_PRIVATE, f"expected 1 or 0, got {raw.strip().lower()!r}"
        ) from None


def crawl_proxy(env: Mapping[str, str] | None = None) -> str:
    """``$HOTLINE_CRAWL_PROXY``, stripped (unset: ``""``, no proxy)."""
    return _environ(env).get(ENV_CRAWL_PROXY, "").strip()


def log_format(env: Mapping[str, str] | None = None) -> str:
    """``$HOTLINE_LOG_FORMAT``: ``text`` (also when unset or blank) or ``json``."""
    value = _environ(env).get(ENV_LOG_FORMAT, "").strip().lower() or "text"
    if value not in ("text", "json"):
        raise EnvironmentVariableError(ENV_LOG_FORMAT, f"expected text or json, got {value!r}")
    return value


def config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration of notices: ``$HOTLINE_CONFIG`` (which must be a file), else
    ``hotline.toml`` in the data directory when it exists, else ``None`` (defaults apply)."""
    environ = _environ(env)
    if environ.get(ENV_CONFIG):
        path = Path(environ[ENV_CONFIG]).expanduser()
        if not path.is_file():
            raise EnvironmentVariableError(ENV_CONFIG, f"{path}: no such file")
        return path
    default = default_data_dir(environ) / CONFIG_FILE_NAME
    return default if default.is_file() else None


def schedule_min_interval(env: Mapping[str, str] | None = None) -> float | None:
    """``$HOTLINE_SCHEDULE_MIN_INTERVAL`` in seconds; ``None`` when unset or blank (then
    :data:`store.schedules.MIN_INTERVAL`, one minute, applies)."""
    raw = _environ(env).get(ENV_SCHEDULE_MIN_INTERVAL, "").strip()
    if not raw:
        return None
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise EnvironmentVariableError(ENV_SCHEDULE_MIN_INTERVAL, str(exc)) from None
