"""Video benchmark: sampling a 720p video at one frame a second against hashing every frame.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/video.py [--seconds S] [--fps F] [--runs R]

Prints one JSON object on stdout; progress goes to stderr.

A benign 1280x720 H.264 MP4 of S seconds (default 60) at F frames per second (default 30) is
encoded in memory with PyAV from generated pictures (a new picture every 5 s, each frame with
its own faint grain, so the encoder has real work). Each way of hashing it runs R times in a
fresh process (spawned, so each measures its own peak memory):

* ``sampled``: :func:`matchers.video.digest_video` with the default limits, what a crawl does
  (one frame a second plus scene changes, PDQ with variants and pHash per frame kept);
* ``every_frame``: the same code told to sample at the video's own frame rate (every frame
  decoded is hashed), the naive reference of the ratio;
* ``decode_only``: every frame decoded and dropped, nothing hashed: the decoder's floor.

For each: wall seconds (median of the runs), frames hashed, frames decoded per second, seconds
of work per minute of video, and the child's peak RSS above what it held before the call
(``VmHWM`` after, reset to the resident size before the call, less that size). The video is
only ever in memory; nothing is written to disk.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

WIDTH, HEIGHT = 1280, 720
SCENE_SECONDS = 5.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_video(seconds: int, fps: int) -> bytes:
    from hotline.imagegen import encode_video, textured_image  # noqa: PLC0415

    scenes = [
        (textured_image(9000 + n, 640, 360), SCENE_SECONDS)
        for n in range(max(1, round(seconds / SCENE_SECONDS)))
    ]
    return encode_video(scenes, container="mp4", width=WIDTH, height=HEIGHT, fps=fps)


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux 4.0 and later).
    ``ru_maxrss`` would not do: it carries the parent's peak over fork and exec."""
    Path("/proc/self/clear_refs").write_text("5")


def _run(mode: str, data: bytes, fps: int, out: Any) -> None:
    import av  # noqa: PLC0415

    from matchers.video import VideoLimits, digest_video  # noqa: PLC0415

    before = _status_kib("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    if mode == "decode_only":
        decoded = 0
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in container.decode(stream):
                decoded += 1
        hashed = 0
    else:
        limits = (
            VideoLimits()
            if mode == "sampled"
            else VideoLimits(sample_fps=float(fps), max_frames=10**7)
        )
        video = digest_video(data, limits=limits)
        if video.digest.error or video.stopped:
            raise RuntimeError(f"{mode}: {video.digest.error or video.stopped}")
        decoded, hashed = video.decoded_frames, len(video.frames)
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    out.send({"seconds": elapsed, "decoded": decoded, "hashed": hashed, "rss_kib": peak - before})


def measure(mode: str, data: bytes, fps: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run, args=(mode, data, fps, send))
    child.start()
    result: dict[str, Any] = receive.recv()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _log(f"encoding {args.seconds} s of {WIDTH}x{HEIGHT} at {args.fps} fps ...")
    started = time.perf_counter()
    data = make_video(args.seconds, args.fps)
    _log(f"encoded {len(data)} bytes in {time.perf_counter() - started:.1f} s")
    report: dict[str, Any] = {
        "video": {
            "width": WIDTH,
            "height": HEIGHT,
            "seconds": args.seconds,
            "fps": args.fps,
            "bytes": len(data),
        },
        "runs": args.runs,
        "modes": {},
    }
    for mode in ("sampled", "every_frame", "decode_only"):
        runs = []
        for run in range(args.runs):
            runs.append(measure(mode, data, args.fps))
            _log(f"{mode} run {run + 1}: {runs[-1]['seconds']:.2f} s")
        seconds = statistics.median(r["seconds"] for r in runs)
        report["modes"][mode] = {
            "seconds": round(seconds, 3),
            "frames_hashed": runs[0]["hashed"],
            "frames_decoded": runs[0]["decoded"],
            "decoded_frames_per_s": round(runs[0]["decoded"] / seconds, 1),
            "hashed_frames_per_s": round(runs[0]["hashed"] / seconds, 1),
            "seconds_per_video_minute": round(seconds * 60 / args.seconds, 3),
            "peak_rss_mib": round(max(r["rss_kib"] for r in runs) / 1024, 1),
        }
    modes = report["modes"]
    report["every_frame_over_sampled"] = round(
        modes["every_frame"]["seconds"] / modes["sampled"]["seconds"], 2
    )
    report["sampled_over_decode_only"] = round(
        modes["sampled"]["seconds"] / modes["decode_only"]["seconds"], 2
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
