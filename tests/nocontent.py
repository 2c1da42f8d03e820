"""Finding any 64-byte window of any served image inside stored data, exactly and fast.

Every 64-byte window of the needles (the served images) and of each haystack (a Redis value,
a file, a log) is hashed with a polynomial rolling hash mod 2**64, computed with numpy for all
windows at once; equal hashes are then confirmed byte by byte, so a reported leak is real and
no leak of 64 bytes or more can be missed.

Windows of one repeated byte (64 zeros in a PNG's or a bomb's padding) say nothing about any
image and occur in any binary file, so they are not needles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WINDOW = 64
#: Names of pytest's per-user temp roots (``pytest-of-<user>``) in the system temp directory.
PYTEST_ROOT_PREFIX = "pytest-of-"
_P = np.uint64(0x100000001B3)  # odd, so invertible mod 2**64
_P_INV = np.uint64(pow(int(_P), -1, 2**64))


def _powers(base: np.uint64, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    if n:
        out[0] = 1
        out[1:] = base
        np.cumprod(out, out=out)  # wraps mod 2**64
    return out


def window_hashes(data: bytes) -> np.ndarray:
    """Hash of every WINDOW-byte window of ``data`` (len(data) - WINDOW + 1 values)."""
    n = len(data)
    if n < WINDOW:
        return np.empty(0, dtype=np.uint64)
    a = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    inv = _powers(_P_INV, n)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(a * inv, out=prefix[1:])
    diff = prefix[WINDOW:] - prefix[: n - WINDOW + 1]
    scale = _powers(_P, n)[WINDOW - 1 :]  # P**(WINDOW-1+i)
    return diff * scale


def _uniform_windows(data: bytes) -> np.ndarray:
    """For each WINDOW-byte window of ``data``: True when all its bytes are equal."""
    a = np.frombuffer(data, dtype=np.uint8)
    changes = np.concatenate(([0], np.cumsum(a[1:] != a[:-1])))  # changes up to each byte
    return np.asarray(changes[WINDOW - 1 :] == changes[: len(a) - WINDOW + 1])


@dataclass(frozen=True)
class Leak:
    where: str
    offset: int
    needle: int
    needle_offset: int


class WindowFinder:
    def __init__(self, needles: Iterable[bytes]) -> None:
        self.needles = [n for n in needles if len(n) >= WINDOW]
        hashes, owners, offsets = [], [], []
        for index, needle in enumerate(self.needles):
            h = window_hashes(needle)
            keep = ~_uniform_windows(needle)
            hashes.append(h[keep])
            owners.append(np.full(int(keep.sum()), index, dtype=np.int64))
            offsets.append(np.nonzero(keep)[0].astype(np.int64))
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        order = np.argsort(all_hashes, kind="stable")
        self.hashes = all_hashes[order]
        self.owners = np.concatenate(owners)[order] if owners else np.empty(0, np.int64)
        self.offsets = np.concatenate(offsets)[order] if offsets else np.empty(0, np.int64)

    def find(self, haystack: bytes, where: str) -> Leak | None:
        h = window_hashes(haystack)
        if not len(h) or not len(self.hashes):
            return None
        pos = np.searchsorted(self.hashes, h)
        pos[pos == len(self.hashes)] = 0
        for i in np.nonzero(self.hashes[pos] == h)[0]:
            j = int(pos[i])
            while j < len(self.hashes) and self.hashes[j] == h[i]:
                needle = self.needles[int(self.owners[j])]
                start = int(self.offsets[j])
                if needle[start : start + WINDOW] == haystack[int(i) : int(i) + WINDOW]:
                    return Leak(where, int(i), int(self.owners[j]), start)
                j += 1
        return None


def files_changed_in_temp(system_tmp: Path, since: float, own_basetemp: Path) -> Iterator[Path]:
    """Regular files under ``system_tmp`` modified at or after ``since``, except pytest's.

    Skipped: ``own_basetemp`` and every ``pytest-of-*`` root, where any pytest session, this one
    or another running at the same time, keeps its temp directories. Another session's files
    are not this crawl's and may legitimately share 64 bytes with a served image (the test
    images its fixtures write; its session redis-server's AOF, where a one-entry hash list's
    padding, ``01`` and 63 zero bytes, also occurs in the zero-filled IDAT of the huge PNG).
    A crawl writes under those roots only through the directories its test hands it, which
    the test scans in full.
    """
    own = own_basetemp.resolve()
    for path in system_tmp.rglob("*"):
        try:
            relative = path.relative_to(system_tmp)
            if relative.parts[0].startswith(PYTEST_ROOT_PREFIX):
                continue
            if (
                path.is_file()
                and not path.is_symlink()
                and own not in path.resolve().parents
                and path.stat().st_mtime >= since
            ):
                yield path
        except OSError:
            continue
