"""The CLI's configuration, read once from the environment into a typed object.

:meth:`Config.from_env` reads every variable the CLI needs through :mod:`store.environment`
(which names them all, documents their values and defaults, and reads them alike for the
crawler), and turns a value it cannot use into a :class:`~hotline.errors.UsageError`
(exit 2) naming the variable. What only one command needs is read when it asks, so a bad
value fails that command alone: the notices' TOML configuration
(:meth:`Config.takedown_settings`, so an edited file applies to the next command) and the
shortest schedule interval (:meth:`Config.schedule_min_interval`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import UsageError
from store import environment
from store.errors import EnvironmentVariableError
from store.schedules import MIN_INTERVAL
from takedown.settings import SettingsError, TakedownSettings


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
        environ = dict(os.environ if env is None else env)
        try:
            return cls(
                redis_url=environment.redis_url(environ),
                data_dir=environment.default_data_dir(environ),
                key_prefix=environment.key_prefix(environ),
                allow_private_networks=environment.allow_private_networks(environ),
                config_path=environment.config_path(environ),
                env=environ,
            )
        except EnvironmentVariableError as exc:
            raise UsageError(str(exc)) from None

    def schedule_min_interval(self) -> float:
        """The shortest interval ``schedule add --every`` accepts, in seconds:
        ``$HOTLINE_SCHEDULE_MIN_INTERVAL``, else :data:`store.schedules.MIN_INTERVAL`."""
        try:
            seconds = environment.schedule_min_interval(self.env)
        except EnvironmentVariableError as exc:
            raise UsageError(str(exc)) from None
        return MIN_INTERVAL if seconds is None else seconds

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
