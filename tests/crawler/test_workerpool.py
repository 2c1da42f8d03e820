"""The hash worker processes, without a crawler: digests, errors, crashes, hangs, shutdown.

Real worker processes (``python -m crawler.hashworker``) for what they compute; the stand-in
of ``tests/crawler/fake_hash_worker.py`` for misbehaviour on demand.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.hashworker import (
    ARCHIVE_FLAG,
    BODY_CPU_LIMIT_S,
    FRAME_HEADER,
    READY,
    VIDEO_FLAG,
    algorithm_flags,
    algorithms_of,
    body_cpu_limit,
    read_frame,
    read_request,
    serve,
    write_request,
)
from crawler.workerpool import (
    CRASH_RETRIES,
    EVENT_CRASHED,
    EVENT_RESTARTED,
    EVENT_TIMEOUT,
    WORKER_START_TIMEOUT,
    HashPoolError,
    ProcessHashPool,
    WorkerCrashed,
    WorkerFailure,
    bytes_only_digest,
)
from hotline.imagegen import encode, encode_video, textured_image
from matchers.digest import digest_bytes
from matchers.errors import NotAnImage
from matchers.video import DECODE_THREADS, VideoLimits, digest_video
from tests.crawler import fake_hash_worker as fake
from tests.helpers import wait_for

FAKE_WORKER = [sys.executable, "-m", "tests.crawler.fake_hash_worker"]
#: Seconds the stand-in gets per body: it answers at once, or never (HANG).
FAKE_TIMEOUT = 2.0
ROOT = Path(__file__).resolve().parents[2]


def _images() -> list[bytes]:
    jpeg = encode(textured_image(11, 320, 240), "JPEG", quality=85)
    return [
        jpeg,
        encode(textured_image(12, 200, 300), "PNG"),
        encode(textured_image(13, 128, 128), "GIF"),
        jpeg[: len(jpeg) // 2],  # truncated: a decode error, hashed by its bytes
    ]


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def real_pool(events: list[str]) -> Iterator[ProcessHashPool]:
    pool = ProcessHashPool(2, on_event=events.append)
    yield pool
    pool.close()


@pytest.fixture
def fake_pool(events: list[str]) -> Iterator[ProcessHashPool]:
    pool = ProcessHashPool(1, timeout=FAKE_TIMEOUT, command=FAKE_WORKER, on_event=events.append)
    yield pool
    pool.close()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_compute_what_digest_bytes_computes(real_pool: ProcessHashPool) -> None:
    images = _images()
    digests = [real_pool.hash(body) for body in images]
    assert digests == [digest_bytes(body) for body in images]
    assert digests[-1].error == "truncated" and digests[-1].pdq is None
    assert len({d.pdq for d in digests[:3]}) == 3
    assert len(real_pool.pids()) == 2


@pytest.mark.parametrize("perceptual", [(), ("pdq",), ("phash",), ("pdq", "phash")], ids=str)
def test_workers_compute_only_the_algorithms_asked_for(
    real_pool: ProcessHashPool, perceptual: tuple[str, ...]
) -> None:
    images = _images()
    algorithms = ("md5", "sha1", "sha256", *perceptual)
    digests = [real_pool.hash(body, algorithms) for body in images]
    assert digests == [digest_bytes(body, algorithms=algorithms) for body in images]
    for digest in digests[:3]:
        assert (digest.pdq is not None) == ("pdq" in perceptual)
        assert (digest.phash is not None) == ("phash" in perceptual)
        assert digest.sha256 and digest.width
    # Without a perceptual hash nothing is decoded: the truncated pixels go unnoticed.
    assert digests[-1].error == (None if not perceptual else "truncated")


def test_an_unknown_algorithm_is_refused_before_any_worker_is_used(
    real_pool: ProcessHashPool,
) -> None:
    with pytest.raises(ValueError, match="colour"):
        real_pool.hash(_images()[0], ("sha256", "colour"))
    assert real_pool.pids() == []  # refused before the pool even started


def test_the_request_byte_carries_the_perceptual_algorithms() -> None:
    exact = ("md5", "sha1", "sha256")
    assert algorithm_flags(exact) == 0
    for perceptual in [(), ("pdq",), ("phash",), ("pdq", "phash")]:
        flags = algorithm_flags((*exact, *perceptual))
        assert algorithms_of(flags) == (*exact, *perceptual)
    assert algorithm_flags(["phash", "pdq"]) == algorithm_flags(["pdq", "phash"]) != 0
    with pytest.raises(ValueError, match="unknown algorithm bits"):
        algorithms_of(0x20)
    assert algorithms_of(algorithm_flags(exact, video=True)) == exact
    with pytest.raises(ValueError, match="an archive or a video"):
        algorithm_flags(exact, archive=True, video=True)
    # The archive flag rides along and is no algorithm.
    flags = algorithm_flags(("md5", "pdq"), archive=True)
    assert flags & ARCHIVE_FLAG and algorithms_of(flags) == (*exact, "pdq")


def test_not_an_image_is_raised_as_in_process(real_pool: ProcessHashPool) -> None:
    with pytest.raises(NotAnImage):
        real_pool.hash(b"<html>not an image</html>")
    assert real_pool.hash(_images()[0]) == digest_bytes(_images()[0])  # the worker lives on


def test_a_killed_worker_is_replaced(real_pool: ProcessHashPool, events: list[str]) -> None:
    body = _images()[0]
    real_pool.hash(body)
    before = real_pool.pids()
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(_alive(pid) for pid in before), "the killed workers to die")
    assert real_pool.hash(body) == digest_bytes(body)
    after = real_pool.pids()
    assert len(after) == 2 and not set(after) & set(before)
    assert events.count(EVENT_CRASHED) == 2  # found dead: the body was not tried on them
    assert events.count(EVENT_RESTARTED) == events.count(EVENT_CRASHED)


def test_a_body_that_kills_its_worker_is_retried_once_then_given_up(
    fake_pool: ProcessHashPool, events: list[str]
) -> None:
    with pytest.raises(WorkerCrashed) as raised:
        fake_pool.hash(fake.CRASH)
    assert raised.value.reason == "crashed"
    assert events.count(EVENT_CRASHED) == CRASH_RETRIES + 1
    assert events.count(EVENT_RESTARTED) == CRASH_RETRIES + 1
    assert fake_pool.hash(b"fine").sha256 == bytes_only_digest(b"fine", "x").sha256


def test_a_worker_that_answers_garbage_counts_as_crashed(
    fake_pool: ProcessHashPool, events: list[str]
) -> None:
    with pytest.raises(WorkerCrashed):
        fake_pool.hash(fake.GARBAGE)
    assert events.count(EVENT_CRASHED) == CRASH_RETRIES + 1
    assert fake_pool.hash(b"fine").error == fake.ERROR


def test_an_answer_nested_too_deep_counts_as_crashed_and_no_worker_is_lost(
    fake_pool: ProcessHashPool, events: list[str]
) -> None:
    for _ in range(3):  # more than the pool's one worker: a lost worker would hang here
        with pytest.raises(WorkerCrashed):
            fake_pool.hash(fake.NESTED)
    assert events.count(EVENT_CRASHED) == 3 * (CRASH_RETRIES + 1)
    assert fake_pool.hash(b"fine").error == fake.ERROR


def test_a_worker_exception_is_reported_by_type_with_a_short_message(
    fake_pool: ProcessHashPool, events: list[str]
) -> None:
    with pytest.raises(WorkerFailure) as raised:
        fake_pool.hash(fake.FAILURE)
    assert str(raised.value) == "MemoryError"
    assert events == []  # the worker answered: it is kept
    assert fake_pool.hash(b"fine").error == fake.ERROR


def test_workers_leave_no_core_dump(real_pool: ProcessHashPool) -> None:
    real_pool.hash(_images()[0])
    # A worker sets its limits before it says it is ready; the other one may still be
    # importing (it has hashed nothing yet): wait for its greeting (all are idle now).
    for worker in list(real_pool._all):
        worker.wait_ready(WORKER_START_TIMEOUT)
    for pid in real_pool.pids():
        limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
        core = next(line for line in limits if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core


def test_a_hanging_worker_is_killed_after_the_timeout(
    fake_pool: ProcessHashPool, events: list[str]
) -> None:
    fake_pool.start()
    (hanging,) = fake_pool.pids()
    with pytest.raises(WorkerCrashed) as raised:
        fake_pool.hash(fake.HANG)
    assert raised.value.reason == "timeout"
    assert events == [EVENT_RESTARTED, EVENT_TIMEOUT]
    assert not _alive(hanging)
    assert fake_pool.hash(b"fine").error == fake.ERROR


def test_a_worker_that_cannot_start_fails_the_pool_clearly() -> None:
    pool = ProcessHashPool(1, command=[*FAKE_WORKER, "--no-start"])
    try:
        with pytest.raises(HashPoolError, match=f"exit code {fake.START_EXIT}"):
            pool.hash(b"anything")
    finally:
        pool.close()


def test_close_stops_every_worker_and_refuses_more_work(real_pool: ProcessHashPool) -> None:
    real_pool.hash(_images()[0])
    pids = real_pool.pids()
    assert real_pool.close() > 0  # the workers' CPU seconds
    assert real_pool.pids() == []
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(HashPoolError, match="closed"):
        real_pool.hash(_images()[0])
    real_pool.close()  # idempotent


def test_workers_exit_when_their_crawl_process_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to clean up: the workers see their stdin end and exit."""
    script = textwrap.dedent(
        """
        import sys
        from crawler.workerpool import ProcessHashPool
        from hotline.imagegen import encode, textured_image
        pool = ProcessHashPool(2)
        pool.hash(encode(textured_image(1, 64, 64), "PNG"))
        print(*pool.pids(), flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as owner:
        try:
            assert owner.stdout is not None
            pids = [int(p) for p in owner.stdout.readline().split()]
            assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        finally:
            owner.kill()
            owner.wait()
    wait_for(lambda: not any(_alive(pid) for pid in pids), "the orphaned workers to exit")


def test_a_video_is_sampled_in_a_worker_with_the_pools_limits(events: list[str]) -> None:
    scenes = [(textured_image(31), 2.0), (textured_image(32), 2.0)]
    video = encode_video(scenes, container="mpegts", width=160, height=120, fps=10)
    limits = VideoLimits(max_frames=3)
    pool = ProcessHashPool(1, video_limits=limits, on_event=events.append)
    try:
        sampled = pool.open_video(video, ("sha256", "pdq"))
    finally:
        pool.close()
    here = digest_video(video, algorithms=("sha256", "pdq"), limits=limits)
    assert sampled == here
    assert len(sampled.frames) == 3 and all(not f.phash_variants for f in sampled.frames)
    assert events == []


def test_the_worker_loop_answers_each_frame_then_ends_with_its_input() -> None:
    images = _images()
    stdin = io.BytesIO()
    for body in [*images, b"not an image"]:
        write_request(stdin, body, ("sha256", "pdq", "phash"))
    stdin.write(FRAME_HEADER.pack(2) + b"\x20x")  # bits no algorithm has
    stdin.seek(0)
    stdout = io.BytesIO()
    serve(stdin, stdout, max_pixels=10_000_000)
    stdout.seek(0)
    assert read_frame(stdout) == READY
    answers = [read_frame(stdout) for _ in range(len(images) + 2)]
    assert read_frame(stdout) is None
    assert all(a is not None and a.startswith(b'{"digest"') for a in answers[:-2])
    assert answers[-2] is not None and b'"matcher_error":"NotAnImage"' in answers[-2]
    assert answers[-1] == b'{"failure":"ValueError"}'
    # Only hashes come back: no answer holds a 64-byte window of its body.
    for body, answer in zip(images, answers, strict=False):
        assert answer is not None and body[100:164] not in answer


def test_a_request_is_read_whole_or_not_at_all() -> None:
    stream = io.BytesIO()
    write_request(stream, b"\x89PNG body", ("pdq",))
    whole = stream.getvalue()
    assert read_request(io.BytesIO(whole)) == (algorithm_flags(("pdq",)), b"\x89PNG body")
    for cut in range(len(whole)):  # the crawl died mid-frame: the worker just ends
        assert read_request(io.BytesIO(whole[:cut])) is None
    assert read_request(io.BytesIO(FRAME_HEADER.pack(0))) is None  # no algorithms byte


@pytest.mark.parametrize("max_seconds", [1.0, 120.0, 900.0])
def test_the_cpu_backstop_leaves_room_for_every_decoder_thread_of_a_video(
    max_seconds: float,
) -> None:
    """CPU time counts all of FFmpeg's threads: a video decoded for its whole time limit on
    every thread it may use must not reach the kernel's backstop; an image keeps it as is."""
    limits = VideoLimits(max_seconds=max_seconds)
    for flags in (VIDEO_FLAG, ARCHIVE_FLAG, VIDEO_FLAG | algorithm_flags(["pdq"])):
        assert body_cpu_limit(flags, limits) >= DECODE_THREADS * max_seconds + BODY_CPU_LIMIT_S
    assert body_cpu_limit(algorithm_flags(["pdq", "phash"]), limits) == BODY_CPU_LIMIT_S
