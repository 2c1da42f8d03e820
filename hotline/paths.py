"""Where hotline-crawler keeps its per-user state (embedded Redis, outbox, ...).

Resolution order for the data directory:

1. ``$HOTLINE_DATA_DIR`` if set and non-empty;
2. ``$XDG_DATA_HOME/hotline-crawler`` if ``XDG_DATA_HOME`` is set and non-empty;
3. ``~/.local/share/hotline-crawler``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_NAME", "DATA_DIR_MODE", "ENV_DATA_DIR", "default_data_dir", "ensure_data_dir"]

APP_NAME = "hotline-crawler"
ENV_DATA_DIR = "HOTLINE_DATA_DIR"
ENV_XDG_DATA_HOME = "XDG_DATA_HOME"
#: Only the owning user may enter the data directory (it holds the Redis socket and data).
DATA_DIR_MODE = 0o700


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the data directory for this user (not created; see :func:`ensure_data_dir`)."""
    environ = os.environ if env is None else env
    explicit = environ.get(ENV_DATA_DIR, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get(ENV_XDG_DATA_HOME, "")
    if xdg:
        return Path(xdg).expanduser() / APP_NAME
    return Path.home() / ".local" / "share" / APP_NAME


def ensure_data_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it private to the user (mode 0o700).

    Returns the path, so callers can write ``data_dir = ensure_data_dir(default_data_dir())``.
    """
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for an existing directory.
    path.chmod(DATA_DIR_MODE)
    return path
