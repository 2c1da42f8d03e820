"""Archives opened in memory: every member digested like a downloaded body, under bomb guards.

:func:`digest_archive` opens a ZIP, a tar (plain, gzip, bzip2 or xz compressed), a 7z (with
py7zr, its members written into memory only) or a single gzip / bzip2 / xz stream held in
memory, and digests its members one at a time: an image gets
:func:`matchers.digest.digest_bytes`, any other member its exact hashes
(:func:`matchers.digest.exact_digest`), and an archive inside it is opened in turn down to
:attr:`ArchiveLimits.max_depth` (the nested archive is also a member with its own hashes).
A member's bytes exist only between reading it and digesting it; nothing is extracted to a
file, a temp directory or shared memory (rule 1).

Bomb guards (:class:`ArchiveLimits`), each counted in :attr:`ArchiveReport.refused` by reason:

* ``members``: more members than ``max_members``; the rest are not read (a ZIP holding the
  signature of a central directory entry more than twice that many times is not listed at
  all: zipfile would build an object for every entry first).
* ``too_large``: a member larger than ``max_member_bytes``, as declared or as it decompresses
  (read one byte past the cap, never more).
* ``total``: the members together past ``max_total_bytes``; the rest are not read.
* ``ratio``: a ZIP member that would expand more than ``max_ratio`` times (beyond 1 MiB); a
  7z member larger than ``max_ratio`` times the whole archive (a solid archive's members have
  no compressed size of their own).
* ``depth``: an archive nested deeper than ``max_depth`` (hashed as a file, not opened).
* ``corrupt``: an archive or member that cannot be read (a bad header, a CRC error, any
  failure of a parser on hostile bytes).
* ``deadline``: the archive took ``max_seconds``; the members after are not read.
* ``unsupported``: a compression method or format this build cannot read (RAR, zstd; 7z
  methods py7zr lacks).

Encrypted members are counted (:attr:`ArchiveReport.encrypted`) and never guessed at.
A tar member's data is never skipped over: a member that is refused ends the tar, since
skipping it in a compressed stream would decompress it anyway.
"""

from __future__ import annotations

import bz2
import copy
import dataclasses
import hashlib
import io
import lzma
import re
import tarfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final, Protocol

import py7zr
import py7zr.exceptions
from py7zr.io import Py7zIO, WriterFactory

from matchers.algorithms import ALGORITHMS, MAX_IMAGE_PIXELS
from matchers.digest import ImageDigest, digest_bytes, exact_digest
from matchers.sniff import FILE_SNIFF_BYTES, sniff_file, sniff_image
from matchers.video import (
    FrameHashes,
    VideoDigest,
    VideoLimits,
    digest_video,
    sampled_as_video,
)

__all__ = [
    "ARCHIVE_FORMATS",
    "ARCHIVE_FRAME_FACTOR",
    "REFUSALS",
    "ArchiveLimits",
    "ArchiveReport",
    "MemberDigest",
    "digest_archive",
]

#: The archive formats :func:`digest_archive` opens (as :func:`matchers.sniff.sniff_file`
#: names them); other archives (RAR, zstd) are counted as ``unsupported``.
ARCHIVE_FORMATS: Final = frozenset({"zip", "tar", "gzip", "bzip2", "xz", "7z"})
#: The frames hashed over all the videos of one archive: this many times a video's own cap
#: (``VideoLimits.max_frames``); the videos after it get their exact hashes only.
ARCHIVE_FRAME_FACTOR: Final = 4
#: Reasons a member or an archive is not digested.
REFUSALS: Final = (
    "members",
    "too_large",
    "total",
    "ratio",
    "depth",
    "corrupt",
    "unsupported",
    "deadline",
)
#: Separates the members of nested archives in a path: ``outer/inner.zip!/pic.png``.
NESTED_SEPARATOR: Final = "!/"
_RATIO_FLOOR: Final = 1024 * 1024
_MAX_PATH: Final = 512
_XZ_MEMORY_LIMIT: Final = 256 * 1024 * 1024
#: What reading a damaged archive or member raises.
_CORRUPT: Final = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
)
_READ_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on the work one archive may cause (see the module docstring)."""

    max_members: int = 10_000
    max_member_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_ratio: int = 200
    max_depth: int = 2
    #: Wall-clock seconds for the whole archive: members after it are not read, and what was
    #: digested by then is reported (kept below the pool's kill timeout, which loses all).
    max_seconds: float = 240.0

    def __post_init__(self) -> None:
        for name in ("max_members", "max_member_bytes", "max_total_bytes", "max_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")


@dataclass(frozen=True, slots=True)
class MemberDigest:
    """One member: its path inside the archive (nested archives joined by ``!/``), what it
    is (``image``, ``video``, ``audio``, ``archive``, ``file``), its digest and, for a video,
    the hashes of its sampled frames (:func:`matchers.video.digest_video`)."""

    path: str
    media_type: str
    digest: ImageDigest
    frames: tuple[FrameHashes, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "media_type": self.media_type,
            "digest": self.digest.as_dict(),
            "frames": [frame.as_dict() for frame in self.frames],
        }


@dataclass
class ArchiveReport:
    """What opening an archive found: the digested members, how many were encrypted, and
    what was refused, by reason (:data:`REFUSALS`)."""

    members: list[MemberDigest] = field(default_factory=list)
    encrypted: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "members": [m.as_dict() for m in self.members],
            "encrypted": self.encrypted,
            "refused": dict(self.refused),
        }


class _Budget:
    """Members and bytes left for the whole archive, nested ones included."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.members = limits.max_members
        self.bytes = limits.max_total_bytes

    def cap(self) -> int:
        """Bytes the next member may have."""
        return min(self.limits.max_member_bytes, self.bytes)


class _Stop(Exception):
    """The archive's budget is spent: stop reading it (the reason is already counted)."""


def digest_archive(
    data: bytes,
    format: str | None = None,
    *,
    algorithms: Collection[str] = ALGORITHMS,
    max_pixels: int = MAX_IMAGE_PIXELS,
    limits: ArchiveLimits | None = None,
    video_limits: VideoLimits | None = None,
) -> ArchiveReport:
    """Digest every member of the archive ``data`` (of ``format``, as
    :func:`matchers.sniff.sniff_file` names it; sniffed when not given) within ``limits``;
    ``algorithms`` and ``max_pixels`` as for :func:`matchers.digest.digest_bytes`. Video
    members are sampled within ``video_limits``, whose ``max_seconds`` is one budget for all
    the videos of the archive, as are :data:`ARCHIVE_FRAME_FACTOR` times its ``max_frames``
    (the videos after either is spent get their exact hashes only). Never
    raises for a bad archive: what could not be read is counted in the report."""
    if format is None:
        kind = sniff_file(data[:FILE_SNIFF_BYTES])
        format = kind.format if kind is not None else ""
    report = ArchiveReport()
    budget = _Budget(limits or ArchiveLimits())
    video_limits = video_limits or VideoLimits()
    now = time.monotonic()
    deadline = now + budget.limits.max_seconds
    video_deadline = min(deadline, now + video_limits.max_seconds)
    frames = ARCHIVE_FRAME_FACTOR * video_limits.max_frames
    walk = _Walk(
        budget, report, algorithms, max_pixels, video_limits, video_deadline, frames, deadline
    )
    walk.open(data, format, "", 1)
    return report


@dataclass
class _Walk:
    """One archive's digestion, nested archives included: what they share."""

    budget: _Budget
    report: ArchiveReport
    algorithms: Collection[str]
    max_pixels: int
    video_limits: VideoLimits
    video_deadline: float
    video_frames: int
    deadline: float
    #: Members already digested, by SHA-256: a body met again (entries of a ZIP pointing at
    #: the same data, a file packed twice) is recorded with the first one's digest.
    seen: dict[str, MemberDigest] = field(default_factory=dict)

    def open(self, data: bytes, format: str, prefix: str, depth: int) -> None:
        if format not in ARCHIVE_FORMATS:
            self.report.refused["unsupported"] += 1
            return
        try:
            if format == "7z":  # members come through py7zr's writers, not an iterator

                def digest(path: str, body: bytes) -> None:
                    self.digest_member(prefix + path, body, depth)

                _seven_zip_members(data, self.budget, self.report, digest, self.deadline)
                return
            for path, body in _members(data, format, self.budget, self.report):
                self.digest_member(prefix + path, body, depth)
                del body
        except _Stop:
            return
        except (Exception, MemoryError):  # any parser failure on hostile bytes: never raised
            self.report.refused["corrupt"] += 1

    def digest_member(self, path: str, body: bytes, depth: int) -> None:
        if time.monotonic() > self.deadline:
            self.report.refused["deadline"] += 1
            raise _Stop
        sha256 = hashlib.sha256(body).hexdigest()
        first = self.seen.get(sha256)
        if first is not None:
            self.report.members.append(dataclasses.replace(first, path=path))
            return
        count = len(self.report.members)
        self._digest_member(path, body, depth)
        if len(self.report.members) > count:
            self.seen[sha256] = self.report.members[count]

    def _digest_member(self, path: str, body: bytes, depth: int) -> None:
        report = self.report
        if sniff_image(body) is not None:
            digest = digest_bytes(body, max_pixels=self.max_pixels, algorithms=self.algorithms)
            # A long animation is sampled as a video as well, as a downloaded one is.
            video = self._video(body, digest.format) if sampled_as_video(digest) else None
            frames = video.frames if video is not None else ()
            report.members.append(MemberDigest(path, "image", digest, frames))
            return
        kind = sniff_file(body[:FILE_SNIFF_BYTES])
        media_type, file_format = (kind.media_type, kind.format) if kind else ("file", "")
        if media_type == "video" and (video := self._video(body, file_format)) is not None:
            report.members.append(MemberDigest(path, "video", video.digest, video.frames))
            return
        report.members.append(
            MemberDigest(path, media_type, exact_digest(body, format=file_format, frames=0))
        )
        if media_type == "archive":
            if depth >= self.budget.limits.max_depth:
                report.refused["depth"] += 1
            else:
                self.open(body, file_format, path + NESTED_SEPARATOR, depth + 1)

    def _video(self, body: bytes, format: str | None) -> VideoDigest | None:
        """The member sampled within what is left of the archive's video time and frames;
        None when either is spent (the member then gets its exact hashes only)."""
        remaining = self.video_deadline - time.monotonic()
        if remaining <= 0 or self.video_frames <= 0:
            return None
        limits = dataclasses.replace(
            self.video_limits,
            max_seconds=min(self.video_limits.max_seconds, remaining),
            max_frames=min(self.video_limits.max_frames, self.video_frames),
        )
        video = digest_video(body, format=format, algorithms=self.algorithms, limits=limits)
        self.video_frames -= len(video.frames)
        return video


def _take(budget: _Budget, report: ArchiveReport, declared: int | None) -> int:
    """Count one member against the budget; the most bytes it may have. Raises ``_Stop``
    when the archive's member or byte budget is spent."""
    if budget.members <= 0:
        report.refused["members"] += 1
        raise _Stop
    if budget.bytes <= 0:
        report.refused["total"] += 1
        raise _Stop
    budget.members -= 1
    if declared is not None and declared > budget.limits.max_member_bytes:
        return -1
    if declared is not None and declared > budget.bytes:
        report.refused["total"] += 1
        raise _Stop
    return budget.cap()


def _read_capped(stream: IO[bytes], cap: int) -> bytes | None:
    """At most ``cap`` bytes of ``stream``, or ``None`` when it has more (one byte past the
    cap is read to know, never more)."""
    parts: list[bytes] = []
    left = cap + 1
    while left > 0:
        chunk = stream.read(min(_READ_CHUNK, left))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    body = b"".join(parts)
    return None if len(body) > cap else body


def _spend(budget: _Budget, body: bytes) -> None:
    budget.bytes -= len(body)


def _members(
    data: bytes, format: str, budget: _Budget, report: ArchiveReport
) -> Iterator[tuple[str, bytes]]:
    if format == "zip":
        yield from _zip_members(data, budget, report)
        return
    if format == "tar" or _is_compressed_tar(data, format):
        yield from _tar_members(data, budget, report, format)
        return
    yield from _stream_member(data, format, budget, report)


def _zip_members(
    data: bytes, budget: _Budget, report: ArchiveReport
) -> Iterator[tuple[str, bytes]]:
    if data.count(_CENTRAL_ENTRY) > _ZIP_LISTING_FACTOR * budget.limits.max_members:
        # zipfile parses the whole central directory into objects before the first member:
        # one that may hold far more entries than may be read is refused unread (counted by
        # the signature each entry starts with, not by what the end records declare).
        report.refused["members"] += 1
        raise _Stop
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.filename.endswith("/"):  # is_dir() raises on an empty name
                continue
            cap = _take(budget, report, info.file_size)
            if info.flag_bits & 0x1:
                report.encrypted += 1
                continue
            if cap < 0:
                report.refused["too_large"] += 1
                continue
            # The ratio bounds what is decompressed, whatever size the header declares.
            by_ratio = max(_RATIO_FLOOR, budget.limits.max_ratio * max(info.compress_size, 1))
            if info.file_size > by_ratio:
                report.refused["ratio"] += 1
                continue
            if info.compress_type == zipfile.ZIP_LZMA:
                report.refused["unsupported"] += 1  # zipfile inflates it unbounded
                continue
            try:
                if info.compress_type == zipfile.ZIP_BZIP2:
                    body = _bzip2_member(archive, info, min(cap, by_ratio))
                else:
                    with archive.open(info) as stream:
                        body = _read_capped(stream, min(cap, by_ratio))
            except NotImplementedError:  # a compression method zipfile does not know
                report.refused["unsupported"] += 1
                continue
            except _CORRUPT:
                report.refused["corrupt"] += 1
                continue
            if body is None:  # past its cap or the ratio, though it declared less
                report.refused["too_large" if cap <= by_ratio else "ratio"] += 1
                continue
            _spend(budget, body)
            yield _clean_path(info.filename), body


def _tar_members(
    data: bytes, budget: _Budget, report: ArchiveReport, format: str
) -> Iterator[tuple[str, bytes]]:
    # Streaming mode ("r|"): members in order, never a seek back. A compressed tar is
    # decompressed here, as tarfile reads it, by a reader that counts every byte it gives
    # (member data, headers, GNU long names, pax records, skipped members' data alike).
    fileobj: IO[bytes]
    by_ratio = max(_RATIO_FLOOR, budget.limits.max_ratio * len(data))
    by_budget = budget.bytes + _TAR_OVERHEAD * budget.limits.max_members + _RATIO_FLOOR
    if format in _STREAM_FORMATS:
        reader = _Inflating(data, format, min(by_ratio, by_budget))
        fileobj = io.BufferedReader(reader, _READ_CHUNK)
    else:
        fileobj = io.BytesIO(data)
    try:
        yield from _tar_entries(fileobj, budget, report)
    except _OverLimit:
        report.refused["ratio" if by_ratio < by_budget else "total"] += 1
        raise _Stop from None


def _tar_entries(
    fileobj: IO[bytes], budget: _Budget, report: ArchiveReport
) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=fileobj, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            cap = _take(budget, report, member.size)
            if cap < 0:
                report.refused["too_large"] += 1
                raise _Stop  # skipping it would decompress it
            stream = archive.extractfile(member)
            if stream is None:  # pragma: no cover - isfile() members always have data
                continue
            body = _read_capped(stream, cap)
            if body is None:  # pragma: no cover - a tar member's size is its header's
                report.refused["too_large"] += 1
                raise _Stop
            _spend(budget, body)
            yield _clean_path(member.name), body


#: A ZIP whose central directory declares more than this many times ``max_members`` entries
#: is not listed at all.
_ZIP_LISTING_FACTOR: Final = 2
#: What starts every entry of a ZIP's central directory: zipfile lists one per occurrence at
#: most, whatever the end records declare.
_CENTRAL_ENTRY: Final = b"PK\x01\x02"


def _bzip2_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """A bzip2 ZIP member, decompressed here at most one byte past ``cap`` (zipfile would
    inflate each chunk it reads without a bound, trusting the declared size), CRC checked;
    None when it is larger.

    Raises:
        zipfile.BadZipFile: the data does not match its CRC.
    """
    raw = copy.copy(info)  # the stored bytes as they are: no decompression, no CRC
    raw.compress_type = zipfile.ZIP_STORED
    raw.file_size = info.compress_size
    raw.CRC = None  # type: ignore[assignment]
    with archive.open(raw) as stream:
        compressed = stream.read(info.compress_size)
    body = bz2.BZ2Decompressor().decompress(compressed, cap + 1)
    if len(body) > cap:
        return None
    if zlib.crc32(body) != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC in member {info.filename!r}")
    return body


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


def _decompressor(format: str) -> _Decompressor:
    if format == "gzip":
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    if format == "bzip2":
        return bz2.BZ2Decompressor()
    # An xz header may ask for a dictionary of gigabytes: refused (as corrupt) past this.
    return lzma.LZMADecompressor(memlimit=_XZ_MEMORY_LIMIT)


_STREAM_FORMATS: Final = ("gzip", "bzip2", "xz")
_STREAM_MAGIC: Final = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}
#: Bytes of a tar beyond its members' data: a 512-byte header and up to 511 of padding each.
_TAR_OVERHEAD: Final = 1024


class _OverLimit(Exception):
    """A compressed stream decompressed past what the archive may expand to."""


class _Inflating(io.RawIOBase):
    """The decompressed bytes of a gzip, bzip2 or xz file held in memory, each of its
    streams in turn (a multi-member gzip, a multi-stream bzip2 or xz), made on demand and
    never more than ``limit`` bytes in all (``_OverLimit`` past it); trailing bytes that
    start no new stream are ignored, as gzip does. xz keeps its decoder memory limit."""

    def __init__(self, data: bytes, format: str, limit: int) -> None:
        self.input = memoryview(data)
        self.position = 0
        self.format = format
        self.limit = limit
        self.produced = 0
        self.decompressor: Any = _decompressor(format)
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self.done:
            out = self._step(len(view))
            if out:
                self.produced += len(out)
                if self.produced > self.limit:
                    raise _OverLimit
                view[: len(out)] = out
                return len(out)
        return 0

    def _feed(self) -> bytes:
        chunk = bytes(self.input[self.position : self.position + _READ_CHUNK])
        self.position += len(chunk)
        return chunk

    def _step(self, size: int) -> bytes:
        decompressor = self.decompressor
        if decompressor.eof:
            rest = bytes(decompressor.unused_data) + bytes(self.input[self.position :])
            if not rest.startswith(_STREAM_MAGIC[self.format]):
                self.done = True
                return b""
            self.input, self.position = memoryview(rest), 0
            self.decompressor = decompressor = _decompressor(self.format)
        if hasattr(decompressor, "unconsumed_tail"):  # zlib keeps what max_length left over
            feed = decompressor.unconsumed_tail or self._feed()
            if not feed:
                self.done = True  # no more input and no end of stream: truncated
                return b""
        else:
            feed = self._feed() if decompressor.needs_input else b""
            if decompressor.needs_input and not feed:
                self.done = True
                return b""
        return bytes(decompressor.decompress(feed, size))


def _decompress_head(data: bytes, format: str, size: int) -> bytes:
    """The first ``size`` bytes of a compressed stream (less if it is shorter)."""
    decompressor = _decompressor(format)
    return decompressor.decompress(data, size)


class _SevenZipRefused(Exception):
    """Ends a 7z extraction: ``reason`` is counted in the report (a member past its declared
    size, the whole archive past its ratio, the deadline)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _SevenZipPass:
    """What one extraction shares: every decompressed byte counts against ``limit`` (kept
    members and those py7zr decompresses on the way alike) and the clock against
    ``deadline``."""

    limit: int
    deadline: float
    produced: int = 0

    def count(self, size: int) -> None:
        self.produced += size
        if self.produced > self.limit:
            raise _SevenZipRefused("ratio")
        if time.monotonic() > self.deadline:
            raise _SevenZipRefused("deadline")


class _SevenZipWriter(Py7zIO):
    """Receives one 7z member in memory and hands it on when py7zr closes it (the member is
    complete), or only counts it (``cap`` None: a member refused before extraction that
    py7zr must decompress anyway); nothing is written anywhere else."""

    def __init__(
        self,
        name: str,
        cap: int | None,
        shared: _SevenZipPass,
        done: Callable[[str, bytes], None],
    ) -> None:
        self.name = name
        self.cap = cap
        self.shared = shared
        self.done = done
        self.buffer = io.BytesIO()
        self.length = 0

    def write(self, s: bytes | bytearray) -> int:
        self.shared.count(len(s))
        self.length += len(s)
        if self.cap is None:
            return len(s)
        if self.length > self.cap:
            raise _SevenZipRefused("too_large")
        return self.buffer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return self.buffer.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.buffer.seek(offset, whence)

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.length

    def close(self) -> None:
        if self.cap is None:
            return
        body = self.buffer.getvalue()
        self.buffer = io.BytesIO()
        self.done(self.name, body)


class _SevenZipWriters(WriterFactory):
    """One writer per member py7zr creates, in the archive's order (py7zr renames a repeated
    name, ``a.png_0``: the order, not the name, says which member it is)."""

    def __init__(
        self,
        members: list[tuple[str, int | None]],
        shared: _SevenZipPass,
        done: Callable[[str, bytes], None],
    ) -> None:
        self.members = iter(members)
        self.shared = shared
        self.done = done

    def create(self, filename: str) -> Py7zIO:
        name, cap = next(self.members, (filename, None))
        return _SevenZipWriter(name, cap, self.shared, self.done)


def _unsafe_7z_name(name: str) -> bool:
    """A name py7zr refuses to extract (an absolute path, ``..``, a drive): it would end the
    whole extraction, so the member is counted as corrupt and left out instead."""
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name) is not None
    )


def _seven_zip_members(
    data: bytes,
    budget: _Budget,
    report: ArchiveReport,
    digest: Callable[[str, bytes], None],
    deadline: float,
) -> None:
    """Hand each member of a 7z archive to ``digest`` as py7zr completes it (a solid archive
    is one compressed stream, so members come in its order, not one by one on demand). The
    declared sizes are checked first; every member py7zr decompresses is counted against the
    ratio of the whole archive and the deadline, and a member that decompresses past its
    size ends the archive, as a refused tar member does. Raises ``_Stop`` when the budgets
    are spent."""
    try:
        archive = py7zr.SevenZipFile(io.BytesIO(data), mode="r")
    except py7zr.PasswordRequired:  # encrypted headers: not even the names can be read
        report.encrypted += 1
        return
    with archive:
        infos = [i for i in archive.list() if not (i.is_directory or i.is_symlink)]
        if archive.needs_password():
            report.encrypted += len(infos)
            return
        by_ratio = max(_RATIO_FLOOR, budget.limits.max_ratio * max(len(data), 1))
        members: list[tuple[str, int | None]] = []
        stopped = False
        for info in infos:
            if _unsafe_7z_name(info.filename):
                report.refused["corrupt"] += 1
                continue
            cap: int | None = None
            if not stopped:
                try:
                    cap = _take(budget, report, info.uncompressed)
                except _Stop:
                    stopped = True
            if cap is not None and cap < 0:
                report.refused["too_large"] += 1
                cap = None
            elif cap is not None and info.uncompressed > by_ratio:
                report.refused["ratio"] += 1
                cap = None
            members.append((info.filename, cap))
        wanted = [(name, cap) for name, cap in members if cap is not None]
        if wanted:
            last = max(i for i, (_, cap) in enumerate(members) if cap is not None)
            members = members[: last + 1]  # nothing after the last member digested

            def done(name: str, body: bytes) -> None:
                _spend(budget, body)
                digest(_clean_path(name), body)

            shared = _SevenZipPass(by_ratio, deadline)
            targets = list(dict.fromkeys(name for name, _ in members))
            try:
                archive.extract(targets=targets, factory=_SevenZipWriters(members, shared, done))
            except _SevenZipRefused as refused:
                report.refused[refused.reason] += 1
                raise _Stop from None
            except py7zr.exceptions.UnsupportedCompressionMethodError:
                report.refused["unsupported"] += 1
                return
        if stopped:
            raise _Stop


def _is_compressed_tar(data: bytes, format: str) -> bool:
    if format not in ("gzip", "bzip2", "xz"):
        return False
    try:
        head = _decompress_head(data, format, 512)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return False
    return head[257:262] == b"ustar"


def _gzip_name(data: bytes) -> str:
    """The original file name a gzip header carries (``FNAME``), or ``""``."""
    if len(data) < 10 or not data[3] & 0x08:
        return ""
    start = 10
    if data[3] & 0x04:  # FEXTRA: a length, then that many bytes
        if len(data) < 12:
            return ""
        start = 12 + int.from_bytes(data[10:12], "little")
    end = data.find(b"\x00", start, start + 1024)
    return data[start:end].decode("latin-1") if end != -1 else ""


def _stream_member(
    data: bytes, format: str, budget: _Budget, report: ArchiveReport
) -> Iterator[tuple[str, bytes]]:
    """A single compressed file (every stream of it): one member, decompressed one byte past
    the smaller of its cap and the ratio's bound at most."""
    cap = _take(budget, report, None)
    by_ratio = max(_RATIO_FLOOR, budget.limits.max_ratio * len(data))
    reader = io.BufferedReader(_Inflating(data, format, cap + by_ratio + 1), _READ_CHUNK)
    body = _read_capped(reader, min(cap, by_ratio))
    if body is None:
        report.refused["too_large" if cap <= by_ratio else "ratio"] += 1
        raise _Stop
    _spend(budget, body)
    yield _clean_path(_gzip_name(data) if format == "gzip" else ""), body


def _clean_path(path: str) -> str:
    """A member path fit for a record, a notice and a log line: no control characters, at
    most :data:`_MAX_PATH` characters (it is a label only, never a file system path)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in path)
    return cleaned if len(cleaned) <= _MAX_PATH else cleaned[: _MAX_PATH - 1] + "…"
