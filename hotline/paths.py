"""Where hotline-crawler keeps its per-user state (embedded Redis, outbox, ...).

Resolution order for the data directory (:func:`default_data_dir`):

1. ``$HOTLINE_DATA_DIR`` if set and non-empty;
2. ``$XDG_DATA_HOME/hotline-crawler`` if ``XDG_DATA_HOME`` is set and non-empty;
3. ``~/.local/share/hotline-crawler``.

The rules themselves live in :mod:`store.connection`, because the crawler needs the
embedded Redis socket too and may not import ``hotline``; this module is the CLI's entry.
"""

from __future__ import annotations

from pathlib import Path

from store.connection import APP_NAME, ENV_DATA_DIR, default_data_dir

__all__ = ["APP_NAME", "DATA_DIR_MODE", "ENV_DATA_DIR", "default_data_dir", "ensure_data_dir"]

#: Only the owning user may enter the data directory (it holds the Redis socket and data).
DATA_DIR_MODE = 0o700


def ensure_data_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it private to the user (mode 0o700).

    Returns the path, so callers can write ``data_dir = ensure_data_dir(default_data_dir())``.
    """
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for an existing directory.
    path.chmod(DATA_DIR_MODE)
    return path
