"""The outbox channel: a notice as files in a directory, for hotlines that send by hand.

:class:`OutboxChannel` writes ``<notice_id>.<kind>.<sequence>.json`` (the webhook payload,
indented) and then ``.eml`` (the email bytes as rendered) into a directory. Each file is written
atomically (hidden temporary file in the same directory, fsync, rename), mode 0600; a directory
the channel creates gets mode 0700 (an existing one keeps its mode). Writing the same notice
again replaces the files with identical ones.

Errors are :class:`~takedown.errors.DeliveryError`: permanent for a notice id that cannot be a
file name, transient when the directory or a file cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from takedown.channels.base import excerpt, payload_json
from takedown.errors import DeliveryError
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = ["OUTBOX_DIR_MODE", "OUTBOX_FILE_MODE", "OutboxChannel", "OutboxSettings"]

OUTBOX_DIR_MODE = 0o700
OUTBOX_FILE_MODE = 0o600

_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    directory: Path


class OutboxChannel:
    """Writes notices as files for sending by hand (see the module docstring)."""

    name: ClassVar[Channel] = "outbox"

    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings

    def close(self) -> None:
        """Nothing to release: every file is closed once written."""

    def paths(self, notice: OutgoingNotice) -> tuple[Path, Path]:
        """The ``(.eml, .json)`` paths for ``notice``."""
        stem = f"{notice.notice_id}.{notice.kind}.{notice.sequence}"
        if not _SAFE_STEM.fullmatch(stem) or ".." in stem:
            raise DeliveryError(
                f"notice id {notice.notice_id!r} cannot be used as a file name", permanent=True
            )
        directory = self.settings.directory
        return directory / f"{stem}.eml", directory / f"{stem}.json"

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        eml, meta = self.paths(notice)
        payload = payload_json(notice, indent=2)
        try:
            self.settings.directory.mkdir(mode=OUTBOX_DIR_MODE, parents=True, exist_ok=True)
            # The .eml goes last: whoever watches for it finds the .json already there.
            _write_atomic(meta, (payload + "\n").encode("utf-8"))
            _write_atomic(eml, notice.email)
            _fsync_directory(self.settings.directory)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write notice {notice.idempotency_key} to outbox "
                f"{self.settings.directory}: {excerpt(exc.strerror or str(exc))}",
                permanent=False,
            ) from exc
        return DeliveryReceipt(
            channel=self.name, destination=str(eml), detail=f"wrote {eml.name} and {meta.name}"
        )


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file in the same directory."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, OUTBOX_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable (on POSIX a directory is synced through a read-only fd)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
