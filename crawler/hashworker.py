"""A hash worker process: image bodies in on stdin, digests out on stdout, nothing else.

:class:`crawler.workerpool.ProcessHashPool` starts ``python -m crawler.hashworker
--max-pixels N`` once per worker. Both directions carry frames: an 8-byte big-endian length,
then that many bytes. The worker first sends :data:`READY` (its imports are done), then for
each body it reads it answers with one JSON object:

* ``{"digest": {...}}`` — :meth:`matchers.digest.ImageDigest.as_dict`;
* ``{"matcher_error": "NotAnImage", "message": "..."}`` — a :class:`~matchers.errors.MatcherError`
  (the bytes are not an image);
* ``{"failure": "TypeName", "message": "..."}`` — any other exception (a bug, reported as one).

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
from typing import BinaryIO, Final

from matchers.algorithms import MAX_IMAGE_PIXELS
from matchers.digest import digest_bytes
from matchers.errors import MatcherError

__all__ = ["FRAME_HEADER", "READY", "main", "read_frame", "serve", "write_frame"]

#: A frame's length prefix.
FRAME_HEADER: Final = struct.Struct(">Q")
#: The first frame a worker sends, once it can hash.
READY: Final = b"ready"


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


def _reply(body: bytes, max_pixels: int) -> dict[str, object]:
    try:
        return {"digest": digest_bytes(body, max_pixels=max_pixels).as_dict()}
    except MatcherError as exc:
        return {"matcher_error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # reported to the crawl by its type only: no data echoed
        return {"failure": type(exc).__name__}


def serve(stdin: BinaryIO, stdout: BinaryIO, max_pixels: int) -> None:
    """Answer frames until ``stdin`` ends."""
    write_frame(stdout, READY)
    while (body := read_frame(stdin)) is not None:
        signal.setitimer(signal.ITIMER_PROF, BODY_CPU_LIMIT_S)
        try:
            reply = _reply(body, max_pixels)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        del body  # dropped before the answer goes out
        write_frame(stdout, json.dumps(reply, separators=(",", ":")).encode())


_PR_SET_DUMPABLE: Final = 4
#: CPU seconds one body may take before the kernel ends the worker (SIGPROF's default
#: action): a backstop for a decoder that spins after the crawl that would kill it is gone.
#: The crawl's own limit, ``MATCHER_HASH_TIMEOUT``, is normally far below it.
BODY_CPU_LIMIT_S: Final = 600.0


def _no_core_dumps() -> None:
    """A decoder that crashes must not leave a core file: it would hold the body (rule 1)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the rlimit still holds
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hash image bodies for a crawl (internal)")
    parser.add_argument("--max-pixels", type=int, default=MAX_IMAGE_PIXELS)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _no_core_dumps()
    # Frames go out on the original stdout only; anything a library prints goes to stderr.
    frames_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with frames_out:
        serve(sys.stdin.buffer, frames_out, args.max_pixels)


if __name__ == "__main__":
    main()
