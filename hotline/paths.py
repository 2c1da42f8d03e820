"""The per-user data directory on disk: created on first use, private to the user.

Where it is (``$HOTLINE_DATA_DIR``, else ``$XDG_DATA_HOME/hotline-crawler``, else
``~/.local/share/hotline-crawler``) is decided by :func:`store.environment.default_data_dir`,
because the crawler needs the embedded Redis socket under it too and may not import
``hotline``. This module creates it (:func:`ensure_data_dir`); it holds the embedded Redis,
the scheduler's run logs and the demo's outbox.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR_MODE", "ensure_data_dir"]

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
