"""The CLI's configuration, read once from the environment into a typed object.

=================================  =========================================================
``HOTLINE_REDIS_URL``              Redis to use (``redis://``, ``rediss://``, ``unix://``);
                                   unset: a private ``redis-server`` under the data directory
``HOTLINE_DATA_DIR``               per-user state (default ``~/.local/share/hotline-crawler``)
``HOTLINE_KEY_PREFIX``             prefix of every Redis key (default ``hotline:``)
``HOTLINE_ALLOW_PRIVATE_NETWORKS`` ``1`` lets crawls reach private and loopback addresses
``HOTLINE_CONFIG``                 the TOML configuration of notices (default: ``hotline.toml``
                                   in the data directory, when it exists); see
                                   :mod:`takedown.settings` for its tables
``HOTLINE_RDAP_URL``               RDAP base URL (a hotline's own mirror; ``""`` turns RDAP off)
``HOTLINE_SMTP_PASSWORD``          the SMTP password (secrets come from the environment only)
``HOTLINE_WEBHOOK_SECRET``         the key webhook notices are signed with
=================================  =========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import UsageError
from hotline.paths import default_data_dir
from store.connection import ENV_REDIS_URL
from store.keys import DEFAULT_PREFIX, validate_prefix
from takedown.settings import SettingsError, TakedownSettings

ENV_KEY_PREFIX = "HOTLINE_KEY_PREFIX"
ENV_ALLOW_PRIVATE = "HOTLINE_ALLOW_PRIVATE_NETWORKS"
ENV_CONFIG = "HOTLINE_CONFIG"
CONFIG_FILE_NAME = "hotline.toml"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Config:
    redis_url: str | None  # None: the embedded server
    data_dir: Path
    key_prefix: str
    allow_private_networks: bool
    config_path: Path | None = None  # None: no configuration file (defaults apply)
    env: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        environ = os.environ if env is None else env
        prefix = environ.get(ENV_KEY_PREFIX) or DEFAULT_PREFIX
        try:
            validate_prefix(prefix)
        except ValueError as exc:
            raise UsageError(f"{ENV_KEY_PREFIX}: {exc}") from None
        allow_raw = environ.get(ENV_ALLOW_PRIVATE, "").strip().lower()
        if allow_raw not in _TRUE | _FALSE:
            raise UsageError(f"{ENV_ALLOW_PRIVATE}: expected 1 or 0, got {allow_raw!r}")
        data_dir = default_data_dir(environ)
        config_path: Path | None = None
        if environ.get(ENV_CONFIG):
            config_path = Path(environ[ENV_CONFIG]).expanduser()
            if not config_path.is_file():
                raise UsageError(f"{ENV_CONFIG}: {config_path}: no such file")
        elif (data_dir / CONFIG_FILE_NAME).is_file():
            config_path = data_dir / CONFIG_FILE_NAME
        return cls(
            redis_url=environ.get(ENV_REDIS_URL) or None,
            data_dir=data_dir,
            key_prefix=prefix,
            allow_private_networks=allow_raw in _TRUE,
            config_path=config_path,
            env=dict(environ),
        )

    def takedown_settings(self) -> TakedownSettings:
        """The notices configuration, read now (so an edited file applies to the next
        command); errors are one line naming the file and field."""
        env = self.env if self.env is not None else os.environ
        try:
            if self.config_path is None:
                return TakedownSettings.defaults(env)
            return TakedownSettings.load(self.config_path, env)
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
