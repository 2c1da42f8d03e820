"""A hash worker process: image and archive bodies in on stdin, digests out on stdout.

:class:`crawler.workerpool.ProcessHashPool` starts ``python -m crawler.hashworker --max-pixels
N --archive-limits JSON --video-limits JSON`` once per worker. Both directions carry frames:
an 8-byte big-endian length, then that many bytes. The worker first sends :data:`READY` (its
imports are done). A request frame is one byte naming the perceptual hashes wanted
(:data:`ALGORITHM_BITS`; those the crawl's loaded lists can query, so no other is computed) and
whether the body is an archive to open (:data:`ARCHIVE_FLAG`) or a video to sample
(:data:`VIDEO_FLAG`), then the body. For each request it answers with one JSON object:

* ``{"digest": {...}}`` — :meth:`matchers.digest.ImageDigest.as_dict`;
* ``{"archive": {...}}`` — :meth:`matchers.archives.ArchiveReport.as_dict`, for an archive;
* ``{"video": {...}}`` — :meth:`matchers.video.VideoDigest.as_dict`, for a video;
* ``{"matcher_error": "NotAnImage", "message": "..."}`` — a :class:`~matchers.errors.MatcherError`
  (the bytes are not an image);
* ``{"failure": "TypeName"}`` — any other exception (a bug, reported as one, by its type only:
  its message could quote the body).

JSON, not pickle: the worker decodes hostile images, and a worker a decoder bug took over must
not be able to run code in the crawl by what it answers.

The body lives in this process's memory only, between reading it off the pipe and hashing it;
nothing is written anywhere else (rule 1). The worker ignores SIGINT (Ctrl-C reaches every
process of the terminal's group; the crawl decides when its workers stop) and exits when its
stdin closes, which also happens when the crawl process dies, however it dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import signal
import struct
import sys
from collections.abc import Collection
from typing import BinaryIO, Final

from matchers.algorithms import EXACT_ALGORITHMS, MAX_IMAGE_PIXELS
from matchers.archives import ArchiveLimits, digest_archive
from matchers.digest import digest_bytes
from matchers.errors import MatcherError
from matchers.video import DECODE_THREADS, VideoLimits, digest_video

__all__ = [
    "ALGORITHM_BITS",
    "ARCHIVE_FLAG",
    "FRAME_HEADER",
    "READY",
    "VIDEO_FLAG",
    "algorithm_flags",
    "algorithms_of",
    "body_cpu_limit",
    "main",
    "read_frame",
    "read_request",
    "serve",
    "write_frame",
    "write_request",
]

#: A frame's length prefix.
FRAME_HEADER: Final = struct.Struct(">Q")
#: The first frame a worker sends, once it can hash.
READY: Final = b"ready"
#: A request's first byte: one bit per perceptual algorithm to compute.
ALGORITHM_BITS: Final = {"pdq": 1, "phash": 2}
#: A request's first byte: the body is an archive, to open and digest member by member.
ARCHIVE_FLAG: Final = 0x80
#: A request's first byte: the body is a video, to sample frame by frame.
VIDEO_FLAG: Final = 0x40
_FLAGS_SIZE: Final = 1


def algorithm_flags(
    algorithms: Collection[str], *, archive: bool = False, video: bool = False
) -> int:
    """The request byte for ``algorithms`` (exact ones are always computed and need no bit),
    with :data:`ARCHIVE_FLAG` when ``archive``, :data:`VIDEO_FLAG` when ``video``.

    Raises:
        ValueError: an algorithm this protocol cannot carry.
    """
    flags = 0
    for name in algorithms:
        if name in ALGORITHM_BITS:
            flags |= ALGORITHM_BITS[name]
        elif name not in EXACT_ALGORITHMS:
            raise ValueError(f"unknown algorithm {name!r}")
    if archive and video:
        raise ValueError("a body is an archive or a video, not both")
    if archive:
        flags |= ARCHIVE_FLAG
    if video:
        flags |= VIDEO_FLAG
    return flags


def algorithms_of(flags: int) -> tuple[str, ...]:
    """The algorithms a request byte asks for, exact ones included (:data:`ARCHIVE_FLAG` and
    :data:`VIDEO_FLAG` are not algorithms and are left out).

    Raises:
        ValueError: bits no algorithm (nor a body kind) has.
    """
    known = sum(ALGORITHM_BITS.values()) | ARCHIVE_FLAG | VIDEO_FLAG
    if flags & ~known:
        raise ValueError(f"unknown algorithm bits {flags & ~known:#x}")
    return (*EXACT_ALGORITHMS, *(n for n, bit in ALGORITHM_BITS.items() if flags & bit))


def write_frame(out: BinaryIO, payload: bytes) -> None:
    out.write(FRAME_HEADER.pack(len(payload)))
    out.write(payload)
    out.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame from ``stream``; ``None`` at end of stream (also mid-frame: the peer died)."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (length,) = FRAME_HEADER.unpack(header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def write_request(
    out: BinaryIO,
    body: bytes,
    algorithms: Collection[str],
    *,
    archive: bool = False,
    video: bool = False,
) -> None:
    """One request frame: the algorithms' byte, then ``body``."""
    out.write(FRAME_HEADER.pack(_FLAGS_SIZE + len(body)))
    out.write(bytes([algorithm_flags(algorithms, archive=archive, video=video)]))
    out.write(body)
    out.flush()


def read_request(stream: BinaryIO) -> tuple[int, bytes] | None:
    """One request from ``stream``: its algorithms' byte and the body, read apart (the body is
    not copied); ``None`` at end of stream, also mid-frame, or for a frame too short to be a
    request."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (length,) = FRAME_HEADER.unpack(header)
    flags = stream.read(_FLAGS_SIZE)
    if length < _FLAGS_SIZE or len(flags) < _FLAGS_SIZE:
        return None
    body = stream.read(length - _FLAGS_SIZE)
    return (flags[0], body) if len(body) == length - _FLAGS_SIZE else None


def _reply(
    body: bytes, flags: int, max_pixels: int, limits: ArchiveLimits, video_limits: VideoLimits
) -> dict[str, object]:
    try:
        algorithms = algorithms_of(flags)
        if flags & ARCHIVE_FLAG and flags & VIDEO_FLAG:
            raise ValueError("a body is an archive or a video, not both")
        if flags & VIDEO_FLAG:
            video = digest_video(body, algorithms=algorithms, limits=video_limits)
            return {"video": video.as_dict()}
        if flags & ARCHIVE_FLAG:
            report = digest_archive(
                body,
                algorithms=algorithms,
                max_pixels=max_pixels,
                limits=limits,
                video_limits=video_limits,
            )
            return {"archive": report.as_dict()}
        return {
            "digest": digest_bytes(body, max_pixels=max_pixels, algorithms=algorithms).as_dict()
        }
    except MatcherError as exc:
        return {"matcher_error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # reported to the crawl by its type only: no data echoed
        return {"failure": type(exc).__name__}


def serve(
    stdin: BinaryIO,
    stdout: BinaryIO,
    max_pixels: int,
    limits: ArchiveLimits | None = None,
    video_limits: VideoLimits | None = None,
) -> None:
    """Answer frames until ``stdin`` ends."""
    limits = limits or ArchiveLimits()
    video_limits = video_limits or VideoLimits()
    write_frame(stdout, READY)
    while (request := read_request(stdin)) is not None:
        flags, body = request
        del request
        signal.setitimer(signal.ITIMER_PROF, body_cpu_limit(flags, video_limits))
        try:
            reply = _reply(body, flags, max_pixels, limits, video_limits)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        del body  # dropped before the answer goes out
        write_frame(stdout, json.dumps(reply, separators=(",", ":")).encode())


_PR_SET_DUMPABLE: Final = 4
#: CPU seconds one body may take before the kernel ends the worker (SIGPROF's default
#: action): a backstop for a decoder that spins after the crawl that would kill it is gone.
#: The crawl's own limit, ``MATCHER_HASH_TIMEOUT``, is normally far below it.
BODY_CPU_LIMIT_S: Final = 600.0


def body_cpu_limit(flags: int, video_limits: VideoLimits) -> float:
    """CPU seconds a request may take before the kernel ends the worker: the backstop, plus,
    for an archive or a video, what its decoder threads may spend within the video time limit
    (CPU time counts every thread: FFmpeg's on a many-core host would reach the backstop
    long before the wall-clock limits)."""
    if flags & (ARCHIVE_FLAG | VIDEO_FLAG):
        return BODY_CPU_LIMIT_S + DECODE_THREADS * video_limits.max_seconds
    return BODY_CPU_LIMIT_S


def _no_core_dumps() -> None:
    """A decoder that crashes must not leave a core file: it would hold the body (rule 1)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the rlimit still holds
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hash image bodies for a crawl (internal)")
    parser.add_argument("--max-pixels", type=int, default=MAX_IMAGE_PIXELS)
    parser.add_argument(
        "--archive-limits",
        type=lambda text: ArchiveLimits(**json.loads(text)),
        default=ArchiveLimits(),
        help="ArchiveLimits fields as a JSON object",
    )
    parser.add_argument(
        "--video-limits",
        type=lambda text: VideoLimits(**json.loads(text)),
        default=VideoLimits(),
        help="VideoLimits fields as a JSON object",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _no_core_dumps()
    # Frames go out on the original stdout only; anything a library prints goes to stderr.
    frames_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with frames_out:
        serve(sys.stdin.buffer, frames_out, args.max_pixels, args.archive_limits, args.video_limits)


if __name__ == "__main__":
    main()
