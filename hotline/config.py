"""The CLI's configuration, read once from the environment into a typed object.

=================================  =========================================================
``HOTLINE_REDIS_URL``              Redis to use (``redis://``, ``rediss://``, ``unix://``);
                                   unset: a private ``redis-server`` under the data directory
``HOTLINE_DATA_DIR``               per-user state (default ``~/.local/share/hotline-crawler``)
``HOTLINE_KEY_PREFIX``             prefix of every Redis key (default ``hotline:``)
``HOTLINE_ALLOW_PRIVATE_NETWORKS`` ``1`` lets crawls reach private and loopback addresses
=================================  =========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import UsageError
from hotline.paths import default_data_dir
from takedown.connection import ENV_REDIS_URL
from takedown.keys import DEFAULT_PREFIX, validate_prefix

ENV_KEY_PREFIX = "HOTLINE_KEY_PREFIX"
ENV_ALLOW_PRIVATE = "HOTLINE_ALLOW_PRIVATE_NETWORKS"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Config:
    redis_url: str | None  # None: the embedded server
    data_dir: Path
    key_prefix: str
    allow_private_networks: bool

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
        return cls(
            redis_url=environ.get(ENV_REDIS_URL) or None,
            data_dir=default_data_dir(environ),
            key_prefix=prefix,
            allow_private_networks=allow_raw in _TRUE,
        )
