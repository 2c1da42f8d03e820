"""Hash worker processes: image bodies hashed on every core, fed through pipes.

:class:`ProcessHashPool` keeps ``workers`` processes running :mod:`crawler.hashworker`. Its
:meth:`~ProcessHashPool.hash` is blocking and thread-safe: :class:`crawler.hashing.ImageHasher`
calls it from one driver thread per worker, so the reactor thread never waits and the GIL is
released while a worker hashes (the driver thread sleeps in ``poll``).

Rule 1: a body goes from this process's memory through the worker's stdin pipe into the
worker's memory, and only hashes come back. No file, no ``/dev/shm``, no shared memory
segment, no pickle: the worker answers in JSON (see :mod:`crawler.hashworker`).

Failures:

* a worker that dies while hashing (a decoder crash, the OOM killer, a stray ``kill``) is
  replaced at once; the body is tried once more on the new worker
  (:data:`CRASH_RETRIES`), then :class:`WorkerCrashed` is raised;
* a worker that takes longer than ``timeout`` on one body is killed and replaced, and
  :class:`WorkerCrashed` is raised (``reason == "timeout"``);
* a worker that cannot even start (it exits or stays silent before saying it is ready) raises
  :class:`HashPoolError`: the pool cannot hash and the crawl must stop and say so.

:func:`bytes_only_digest` is what a crawl keeps of a body no worker could hash: its exact
hashes, so an exact list entry still matches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import resource
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import IO, Any, Final

from crawler.hashworker import FRAME_HEADER, READY, algorithm_flags
from crawler.settings import MATCHER_HASH_TIMEOUT as HASH_TIMEOUT
from matchers import errors as matcher_errors
from matchers.algorithms import ALGORITHMS, MAX_IMAGE_PIXELS
from matchers.archives import REFUSALS, ArchiveLimits, ArchiveReport, MemberDigest
from matchers.digest import ImageDigest, exact_digest
from matchers.sniff import MEDIA_TYPES, sniff_image
from matchers.video import FrameHashes, VideoDigest, VideoLimits

__all__ = [
    "CRASH_RETRIES",
    "HASH_TIMEOUT",
    "MAX_REPLY_BYTES",
    "WORKER_START_TIMEOUT",
    "WORKER_STOP_GRACE",
    "HashPoolError",
    "ProcessHashPool",
    "WorkerCrashed",
    "WorkerFailure",
    "bytes_only_digest",
    "worker_command",
]

logger = logging.getLogger(__name__)

#: Seconds a new worker may take to import its libraries and say it is ready.
WORKER_START_TIMEOUT: Final = 60.0
#: Seconds a worker has to exit after its stdin closed, before it is killed.
WORKER_STOP_GRACE: Final = 5.0
#: How many more times a body is tried after the worker hashing it died.
CRASH_RETRIES: Final = 1
#: The longest answer a worker may send (a digest is a few kilobytes).
MAX_REPLY_BYTES: Final = 1 << 20
#: The longest answer for an archive (a digest per member, up to its member limit).
MAX_ARCHIVE_REPLY_BYTES: Final = 1 << 27
#: How much of a worker's error message is kept (it is logged in the crawl).
MAX_MESSAGE_CHARS: Final = 200
#: How often a caller waiting for a free worker checks whether the pool was closed.
TAKE_RECHECK_S: Final = 1.0
#: Event names passed to ``on_event`` (and counted as ``matcher/pool/<event>`` stats).
EVENT_CRASHED: Final = "worker_crashed"
EVENT_TIMEOUT: Final = "worker_timeout"
EVENT_RESTARTED: Final = "worker_restarts"

_READ_CHUNK: Final = 1 << 16
_THREAD_VARIABLES: Final = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Allocations below this many bytes come from the heap, not from a mapping of their own.
_MALLOC_MMAP_THRESHOLD: Final = 32 * 1024 * 1024
#: Free heap above this many bytes is given back to the system.
_MALLOC_TRIM_THRESHOLD: Final = 128 * 1024 * 1024
_MS: Final = 1000.0
_PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent
#: Errors a worker may report by name; anything else comes back as :class:`MatcherError`.
_MATCHER_ERRORS: Final[dict[str, type[matcher_errors.MatcherError]]] = {
    "NotAnImage": matcher_errors.NotAnImage,
    "ImageError": matcher_errors.ImageError,
    "MatcherError": matcher_errors.MatcherError,
}


class HashPoolError(RuntimeError):
    """A hash worker could not be started: nothing can be hashed."""


class WorkerCrashed(RuntimeError):
    """No worker could hash this body: each died hashing it, or one ran out of time.

    ``reason`` is ``"crashed"`` or ``"timeout"``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class WorkerFailure(RuntimeError):
    """The worker raised something other than a :class:`~matchers.errors.MatcherError` (a
    bug): ``str()`` names the exception type and its message."""


class _WorkerGone(Exception):
    """The worker's pipe ended, or it answered outside the protocol."""


class _WorkerTimedOut(Exception):
    pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_command(
    max_pixels: int = MAX_IMAGE_PIXELS,
    archive_limits: ArchiveLimits | None = None,
    video_limits: VideoLimits | None = None,
) -> list[str]:
    """The command line of one worker: this interpreter, :mod:`crawler.hashworker`."""
    limits = dataclasses.asdict(archive_limits or ArchiveLimits())
    video = (video_limits or VideoLimits()).as_dict()
    return [
        sys.executable,
        "-m",
        "crawler.hashworker",
        "--max-pixels",
        str(max_pixels),
        "--archive-limits",
        json.dumps(limits, separators=(",", ":")),
        "--video-limits",
        json.dumps(video, separators=(",", ":")),
    ]


def _worker_env() -> dict[str, str]:
    """This environment, with this checkout first on ``PYTHONPATH`` (the worker runs the same
    code as the crawl, however the crawl was started), one thread for numpy's linear algebra
    (a worker is one core's worth of hashing; more threads only compete), and glibc's malloc
    told to keep a decode's megabytes on its heap: with its defaults each image's buffers are
    mapped and unmapped again, and the page faults made a digest ~30 % slower in a worker
    than in a long-running process (``bench/crawl.py``'s CPU budget)."""
    env = dict(os.environ)
    for name in _THREAD_VARIABLES:
        env.setdefault(name, "1")
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(_MALLOC_MMAP_THRESHOLD))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(_MALLOC_TRIM_THRESHOLD))
    paths = [str(_PACKAGE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def bytes_only_digest(body: bytes, error: str) -> ImageDigest:
    """The exact hashes of ``body`` and no perceptual hash, ``error`` set: what
    :func:`matchers.digest.digest_bytes` returns for an image it cannot decode."""
    return exact_digest(body, format=sniff_image(body), error=error)


_DIGEST_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(ImageDigest))


def _digest_from(value: object) -> ImageDigest:
    if not isinstance(value, dict) or set(value) != _DIGEST_FIELDS:
        raise _WorkerGone("malformed digest")
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return ImageDigest(**fields)


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _WorkerGone("malformed count")
    return value


def _archive_from(value: object) -> ArchiveReport:
    if not isinstance(value, dict) or set(value) != {"members", "encrypted", "refused"}:
        raise _WorkerGone("malformed archive report")
    members, refused = value["members"], value["refused"]
    if not isinstance(members, list) or not isinstance(refused, dict):
        raise _WorkerGone("malformed archive report")
    report = ArchiveReport(encrypted=_count(value["encrypted"]))
    for reason, count in refused.items():
        if reason not in REFUSALS:
            raise _WorkerGone("malformed archive report")
        report.refused[reason] = _count(count)
    for member in members:
        if (
            not isinstance(member, dict)
            or set(member) != {"path", "media_type", "digest", "frames"}
            or not isinstance(member["frames"], list)
            or not isinstance(member["path"], str)
            or member["media_type"] not in MEDIA_TYPES
        ):
            raise _WorkerGone("malformed archive member")
        try:
            frames = tuple(FrameHashes.from_dict(frame) for frame in member["frames"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _WorkerGone("malformed video frame") from None
        report.members.append(
            MemberDigest(
                member["path"], member["media_type"], _digest_from(member["digest"]), frames
            )
        )
    return report


_VIDEO_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(VideoDigest))


def _video_from(value: object) -> VideoDigest:
    if not isinstance(value, dict) or set(value) != _VIDEO_FIELDS:
        raise _WorkerGone("malformed video digest")
    frames, duration, codec = value["frames"], value["duration"], value["codec"]
    stopped = value["stopped"]
    if (
        not isinstance(frames, list)
        or not (duration is None or isinstance(duration, int | float))
        or not (codec is None or isinstance(codec, str))
        or not (stopped is None or isinstance(stopped, str))
    ):
        raise _WorkerGone("malformed video digest")
    try:
        hashed = tuple(FrameHashes.from_dict(frame) for frame in frames)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _WorkerGone("malformed video frame") from None
    return VideoDigest(
        _digest_from(value["digest"]),
        hashed,
        duration=None if duration is None else float(duration),
        codec=codec,
        stopped=stopped,
        keyframes_only=bool(value["keyframes_only"]),
        decoded_frames=_count(value["decoded_frames"]),
    )


def _parse_reply(payload: bytes) -> ImageDigest | ArchiveReport | VideoDigest | Exception:
    """The digest or archive report a worker sent, or the error it reported (to raise in the
    caller)."""
    try:
        reply = json.loads(payload)
    except (ValueError, RecursionError):
        raise _WorkerGone("answer is not JSON") from None
    if not isinstance(reply, dict):
        raise _WorkerGone("answer is not an object")
    if "digest" in reply:
        return _digest_from(reply["digest"])
    if "archive" in reply:
        return _archive_from(reply["archive"])
    if "video" in reply:
        return _video_from(reply["video"])
    message = str(reply.get("message", ""))[:MAX_MESSAGE_CHARS]
    if "matcher_error" in reply:
        kind = _MATCHER_ERRORS.get(str(reply["matcher_error"]), matcher_errors.MatcherError)
        return kind(message)
    if "failure" in reply:
        return WorkerFailure(str(reply["failure"])[:MAX_MESSAGE_CHARS])
    raise _WorkerGone("unknown answer")


class _Worker:
    """One worker process and its two pipes; used by one driver thread at a time."""

    def __init__(self, command: Sequence[str]) -> None:
        self.proc = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=_worker_env(),
            close_fds=True,
        )
        self.ready = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        if self.proc.stdin is None or self.proc.stdout is None:  # pragma: no cover
            raise _WorkerGone("no pipes")
        return self.proc.stdin, self.proc.stdout

    def _read_exactly(self, count: int, deadline: float | None) -> bytes:
        out = self._pipes()[1].fileno()
        chunks = bytearray()
        poller = select.poll()
        poller.register(out, select.POLLIN | select.POLLHUP | select.POLLERR)
        while len(chunks) < count:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not poller.poll(left * _MS):
                    raise _WorkerTimedOut
            chunk = os.read(out, min(_READ_CHUNK, count - len(chunks)))
            if not chunk:
                raise _WorkerGone("end of pipe")
            chunks += chunk
        return bytes(chunks)

    def read_frame(self, timeout: float | None, max_bytes: int = MAX_REPLY_BYTES) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        (length,) = FRAME_HEADER.unpack(self._read_exactly(FRAME_HEADER.size, deadline))
        if length > max_bytes:
            raise _WorkerGone(f"answer of {length} bytes")
        return self._read_exactly(length, deadline)

    def write_request(self, body: bytes, flags: int) -> None:
        """One request (see :mod:`crawler.hashworker`): the algorithms' byte, then ``body``."""
        stdin = self._pipes()[0]
        try:
            stdin.write(FRAME_HEADER.pack(1 + len(body)) + bytes([flags]))
            view = memoryview(body)
            while view:
                written = stdin.write(view)
                view = view[written or 0 :]
        except (BrokenPipeError, ValueError, OSError):
            raise _WorkerGone("pipe closed") from None

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            greeting = self.read_frame(timeout)
        except (_WorkerGone, _WorkerTimedOut):
            greeting = b""
        if greeting != READY:
            self.kill()
            raise HashPoolError(
                f"a hash worker did not start (exit code {self.proc.returncode}; "
                "its error, if any, is on the crawl's stderr)"
            )
        self.ready = True

    def stop(self, grace: float) -> None:
        """Close the worker's stdin (it exits at end of input), kill it after ``grace`` s."""
        stdin = self.proc.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):  # the worker is gone already: a broken pipe
                stdin.close()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_stdout()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):  # broken pipe: nothing left to flush
                self.proc.stdin.close()
        self._close_stdout()

    def _close_stdout(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ProcessHashPool:
    """``workers`` hash worker processes; :meth:`hash` blocks its caller until one answers.

    ``command`` is a worker's command line (default :func:`worker_command`; tests give a
    stand-in that speaks the same protocol); ``on_event`` is called with
    ``worker_crashed``, ``worker_timeout`` or ``worker_restarts`` from the calling thread.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_pixels: int = MAX_IMAGE_PIXELS,
        timeout: float = HASH_TIMEOUT,
        archive_timeout: float | None = None,
        archive_limits: ArchiveLimits | None = None,
        video_limits: VideoLimits | None = None,
        start_timeout: float = WORKER_START_TIMEOUT,
        command: Sequence[str] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a process pool needs at least one worker, not {workers}")
        self.workers = workers
        self.timeout = timeout
        self.archive_timeout = timeout if archive_timeout is None else archive_timeout
        self.video_limits = video_limits or VideoLimits()
        self.start_timeout = start_timeout
        self.command = (
            list(command)
            if command is not None
            else worker_command(max_pixels, archive_limits, self.video_limits)
        )
        self.on_event = on_event
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self._cpu_at_start: float | None = None

    def start(self) -> None:
        """Start every worker (they import their libraries meanwhile; :meth:`hash` waits)."""
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
            self._cpu_at_start = _children_cpu()
            for _ in range(self.workers):
                self._idle.put(self._spawn_locked())

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def _spawn_locked(self) -> _Worker:
        worker = _Worker(self.command)
        self._all.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and put a new one in its place (none once the pool is closed)."""
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            if self._closed:
                return
            self._idle.put(self._spawn_locked())
        self._event(EVENT_RESTARTED)

    def _event(self, name: str) -> None:
        if self.on_event is not None:
            self.on_event(name)

    def hash(self, body: bytes, algorithms: Collection[str] = ALGORITHMS) -> ImageDigest:
        """Hash ``body`` in a worker, computing only the perceptual hashes in ``algorithms``
        (see :func:`matchers.digest.digest_bytes`); blocking, for any thread.

        Raises:
            matchers.errors.MatcherError: the worker's verdict (``NotAnImage``).
            WorkerFailure: the worker raised something else.
            WorkerCrashed: workers died hashing the body, or ran out of time.
            HashPoolError: a worker could not be started, or the pool is closed.
            ValueError: ``algorithms`` names an unknown algorithm.
        """
        reply = self._request(body, algorithm_flags(algorithms), self.timeout, MAX_REPLY_BYTES)
        if not isinstance(reply, ImageDigest):
            raise WorkerFailure("not a digest")
        return reply

    def open_archive(self, body: bytes, algorithms: Collection[str] = ALGORITHMS) -> ArchiveReport:
        """Digest the members of the archive ``body`` in a worker (see
        :func:`matchers.archives.digest_archive`), within ``archive_timeout``; blocking, for
        any thread. Raises what :meth:`hash` raises."""
        flags = algorithm_flags(algorithms, archive=True)
        reply = self._request(body, flags, self.archive_timeout, MAX_ARCHIVE_REPLY_BYTES)
        if not isinstance(reply, ArchiveReport):
            raise WorkerFailure("not an archive report")
        return reply

    def open_video(self, body: bytes, algorithms: Collection[str] = ALGORITHMS) -> VideoDigest:
        """Sample and hash the frames of the video ``body`` in a worker (see
        :func:`matchers.video.digest_video`), within ``archive_timeout`` (a worker stops by
        itself after ``video_limits.max_seconds``); blocking, for any thread. Raises what
        :meth:`hash` raises."""
        flags = algorithm_flags(algorithms, video=True)
        reply = self._request(body, flags, self.archive_timeout, MAX_ARCHIVE_REPLY_BYTES)
        if not isinstance(reply, VideoDigest):
            raise WorkerFailure("not a video digest")
        return reply

    def _request(
        self, body: bytes, flags: int, timeout: float, max_reply: int
    ) -> ImageDigest | ArchiveReport | VideoDigest:
        self.start()
        attempts = 0
        while True:
            worker = self._take()
            if worker.proc.poll() is not None:  # died while idle: not this body's doing
                logger.warning(
                    "a hash worker (pid %d) died while idle (exit code %s): replaced",
                    worker.pid,
                    worker.proc.returncode,
                )
                self._replace(worker)
                self._event(EVENT_CRASHED)
                continue
            try:
                worker.wait_ready(self.start_timeout)
            except HashPoolError:
                with self._lock:
                    self._all.discard(worker)
                    if not self._closed:  # the next caller tries a fresh one
                        self._idle.put(self._spawn_locked())
                raise
            try:
                worker.write_request(body, flags)
                reply = _parse_reply(worker.read_frame(timeout, max_reply))
            except _WorkerTimedOut:
                logger.warning(
                    "a hash worker (pid %d) took over %g s on one body: killed",
                    worker.pid,
                    timeout,
                )
                self._replace(worker)
                self._event(EVENT_TIMEOUT)
                raise WorkerCrashed("timeout", f"no hash within {timeout:g} s") from None
            except Exception as exc:  # a broken pipe, a malformed answer: the worker goes
                logger.warning(
                    "a hash worker (pid %d) failed while hashing (%s, exit code %s): replaced",
                    worker.pid,
                    exc,
                    worker.proc.poll(),
                )
                self._replace(worker)
                self._event(EVENT_CRASHED)
                attempts += 1
                if attempts > CRASH_RETRIES:
                    raise WorkerCrashed(
                        "crashed", f"hash workers died {attempts} times on this image"
                    ) from None
                continue
            self._idle.put(worker)
            if isinstance(reply, Exception):
                raise reply
            return reply

    def _take(self) -> _Worker:
        # Callers are at most as many as workers (one driver thread each), so a worker is
        # normally free at once; the wait is bounded so that a closed pool is noticed.
        while True:
            with self._lock:
                if self._closed:
                    raise HashPoolError("the hash pool is closed")
            try:
                return self._idle.get(timeout=TAKE_RECHECK_S)
            except queue.Empty:
                continue

    def close(self, grace: float = WORKER_STOP_GRACE) -> float:
        """Stop every worker: stdin closed, killed after ``grace`` s. Idempotent.

        Returns the CPU seconds of every worker this pool ran (from this process's reaped
        children: it assumes no other child of this process ended meanwhile)."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop(grace)
        if self._cpu_at_start is None:
            return 0.0
        return max(0.0, _children_cpu() - self._cpu_at_start)
