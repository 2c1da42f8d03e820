"""Videos sampled and hashed in memory (matchers.video), and matched frame by frame
(Matcher.match_video), on benign videos encoded at test time from generated pictures."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from functools import cache

import av
import numpy as np
import pytest

from hotline.imagegen import encode, encode_video, textured_image
from matchers.digest import digest_bytes
from matchers.index import CONFIRMED, REVIEW, Matcher
from matchers.lists import HashList, ListEntry
from matchers.video import VideoLimits, digest_video, sampled_as_video
from tests.helpers import ROOT

KNOWN_SEED = 7100
SIDE = (320, 240)


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@cache
def _known_pdq() -> str:
    """The known picture's PDQ as a still image (what a list built from it holds)."""
    pdq = digest_bytes(encode(textured_image(KNOWN_SEED), "PNG")).pdq
    assert pdq is not None
    return pdq


@cache
def _clip(
    container: str = "mp4", width: int = SIDE[0], height: int = SIDE[1], bit_rate: int | None = None
) -> bytes:
    """3 s of one picture, 2 s of the known one, 3 s of another, at 10 frames per second."""
    scenes = [
        (textured_image(KNOWN_SEED + 1), 3.0),
        (textured_image(KNOWN_SEED), 2.0),
        (textured_image(KNOWN_SEED + 2), 3.0),
    ]
    return encode_video(
        scenes, container=container, width=width, height=height, fps=10, bit_rate=bit_rate
    )


def _matching_times(data: bytes, radius: int = 31) -> list[float]:
    video = digest_video(data)
    assert video.digest.error is None
    return [
        frame.time
        for frame in video.frames
        if min(_distance(_known_pdq(), h) for h in frame.pdq_variants) <= radius
    ]


@pytest.mark.parametrize("container", ["mp4", "webm", "matroska", "avi", "mpegts"])
def test_one_frame_a_second_is_hashed_and_the_known_picture_is_found_where_it_is_shown(
    container: str,
) -> None:
    data = _clip(container)
    video = digest_video(data)
    assert video.digest.error is None and video.stopped is None
    assert video.digest.sha256 == hashlib.sha256(data).hexdigest()
    assert video.digest.md5 == hashlib.md5(data).hexdigest()
    assert (video.digest.width, video.digest.height) == SIDE
    assert [f.time for f in video.frames if not f.scene] == [float(s) for s in range(8)]
    assert video.decoded_frames == 80
    assert _matching_times(data) == [3.0, 4.0]


def test_a_copy_re_encoded_at_another_size_and_bit_rate_still_matches() -> None:
    data = _clip("webm", 480, 360, bit_rate=150_000)
    assert data != _clip("webm")
    assert _matching_times(data) == [3.0, 4.0]


def test_a_picture_shown_between_two_samples_is_caught_at_its_scene_change() -> None:
    scenes = [
        (textured_image(KNOWN_SEED + 3), 1.2),
        (textured_image(KNOWN_SEED), 0.6),  # from 1.2 s to 1.8 s: no sample falls in it
        (textured_image(KNOWN_SEED + 4), 1.2),
    ]
    data = encode_video(scenes, container="mp4", width=SIDE[0], height=SIDE[1], fps=10)
    video = digest_video(data)
    scene_frames = [f for f in video.frames if f.scene]
    assert [f.time for f in scene_frames] == [1.2]
    assert _matching_times(data) == [1.2]


def test_only_the_lists_algorithms_are_computed_and_exact_only_lists_decode_nothing() -> None:
    data = _clip("mpegts")
    pdq_only = digest_video(data, algorithms=("sha256", "pdq"))
    assert pdq_only.frames and all(not f.phash_variants for f in pdq_only.frames)
    exact_only = digest_video(data, algorithms=("md5", "sha1", "sha256"))
    assert exact_only.frames == () and exact_only.decoded_frames == 0
    assert exact_only.digest.sha1 == hashlib.sha1(data).hexdigest()


def test_a_long_video_is_sampled_more_sparsely_to_stay_within_the_frame_cap() -> None:
    # A quarter of the cap is kept for scene changes: 3 samples spread over the 8 seconds.
    video = digest_video(_clip("mp4"), limits=VideoLimits(max_frames=4))
    assert [f.time for f in video.frames if not f.scene] == [0.0, 2.7, 5.4]
    assert len(video.frames) <= 4
    assert video.stopped is None


def test_a_video_too_long_to_decode_whole_is_sampled_at_its_keyframes_only() -> None:
    data = _clip("mp4")
    with av.open(io.BytesIO(data), mode="r") as container:
        keyframes = len([p for p in container.demux(video=0) if p.is_keyframe and p.size])
    video = digest_video(data, limits=VideoLimits(max_decoded_pixels=SIDE[0] * SIDE[1] * 40))
    assert video.keyframes_only
    assert video.decoded_frames == keyframes == len(video.frames)
    assert 1 <= keyframes < 80


@pytest.mark.parametrize(
    ("limits", "stopped", "frames"),
    [
        (VideoLimits(max_frames=3, sample_fps=10), None, 3),  # spread over the video
        (VideoLimits(max_seconds=1e-9), "deadline", 0),
        (VideoLimits(max_decoded_pixels=SIDE[0] * SIDE[1] * 100, sample_fps=10), None, 80),
    ],
)
def test_sampling_stops_at_its_caps_and_keeps_the_frames_hashed(
    limits: VideoLimits, stopped: str | None, frames: int
) -> None:
    video = digest_video(_clip("mpegts"), limits=limits)
    assert video.digest.error is None
    assert (video.stopped, len(video.frames)) == (stopped, frames)


def test_the_pixel_budget_ends_decoding_even_at_keyframes() -> None:
    data = _clip("mpegts")
    with av.open(io.BytesIO(data), mode="r") as container:
        keyframes = len([p for p in container.demux(video=0) if p.is_keyframe and p.size])
    assert keyframes >= 3
    budget = SIDE[0] * SIDE[1] * 2
    video = digest_video(data, limits=VideoLimits(max_decoded_pixels=budget))
    assert video.keyframes_only
    assert video.stopped == "pixel_budget"
    assert (video.decoded_frames, len(video.frames)) == (3, 2)  # the third is over budget


def test_frames_larger_than_the_limit_are_not_decoded_and_the_bytes_still_hashed() -> None:
    data = _clip("mp4")
    video = digest_video(data, limits=VideoLimits(max_frame_pixels=SIDE[0] * SIDE[1] - 1))
    assert (video.digest.error, video.frames, video.decoded_frames) == ("too_large", (), 0)
    assert (video.digest.width, video.digest.height) == SIDE
    assert video.digest.sha256 == hashlib.sha256(data).hexdigest()


def test_broken_and_unknown_videos_are_decode_errors_with_their_exact_hashes() -> None:
    garbage = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 40
    mkv = _clip("matroska")
    unknown_codec = mkv.replace(b"V_MPEG4/ISO/AVC", b"V_ZZZZZ/ISO/ZZZ")
    assert unknown_codec != mkv
    playlist = b"#EXTM3U\n#EXTINF:10,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    # A playlist would open other files: no allowed demuxer reads it.
    cases = ((garbage, "corrupt"), (unknown_codec, "unsupported"), (playlist, "corrupt"))
    for data, error in cases:
        video = digest_video(data)
        assert (video.digest.error, video.frames) == (error, ())
        assert video.digest.sha256 == hashlib.sha256(data).hexdigest()


def test_a_truncated_stream_keeps_the_frames_before_the_cut() -> None:
    data = _clip("mpegts")
    video = digest_video(data[: len(data) // 2])
    assert video.digest.error is None
    assert 1 <= len(video.frames) < 8
    assert [f.time for f in video.frames] == [float(s) for s in range(len(video.frames))]


def test_a_video_without_pictures_gives_its_exact_hashes_only() -> None:
    out = io.BytesIO()
    with av.open(out, mode="w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    video = digest_video(out.getvalue())
    assert (video.digest.error, video.frames, video.codec) == (None, (), None)


def test_an_animated_gif_is_a_video_to_the_sampler() -> None:
    frames = [textured_image(KNOWN_SEED + n).resize((160, 120)) for n in (5, 0, 6)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=1000, loop=0)
    video = digest_video(out.getvalue())
    assert [f.time for f in video.frames] == [0.0, 1.0, 2.0]
    assert _matching_times(out.getvalue()) == [1.0]


@cache
def _animation(image_format: str) -> bytes:
    """70 frames of 0.1 s at 160x120, the known picture from 5.0 s to 5.3 s (three frames
    that Pillow's encoders merge into one of 0.3 s), five others in turn around it."""
    pictures = [textured_image(KNOWN_SEED + n).resize((160, 120)) for n in (0, 5, 6, 7, 8, 9)]
    frames = [pictures[0] if 50 <= n < 53 else pictures[1 + n % 5] for n in range(70)]
    out = io.BytesIO()
    frames[0].save(out, image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.mark.parametrize(("image_format", "sniffed"), [("WEBP", "webp"), ("PNG", "png")])
def test_animated_webp_and_png_longer_than_an_image_looks_into_are_sampled_with_pillow(
    image_format: str, sniffed: str
) -> None:
    data = _animation(image_format)
    image = digest_bytes(data)
    assert (image.format, image.frames) == (sniffed, 68)
    assert sampled_as_video(image)
    video = digest_video(data)
    assert (video.digest.error, video.stopped, video.codec) == (None, None, sniffed)
    assert (video.digest.width, video.digest.height, video.decoded_frames) == (160, 120, 68)
    # Every frame differs from the one before (each a scene change), the samples on the second.
    assert [f.time for f in video.frames if not f.scene] == [float(s) for s in range(7)]
    assert len(video.frames) == 68
    assert _matching_times(data) == [5.0]
    short = io.BytesIO()
    pictures = [textured_image(KNOWN_SEED + n).resize((64, 48)) for n in (1, 2)]
    pictures[0].save(short, image_format, save_all=True, append_images=pictures[1:], duration=100)
    assert not sampled_as_video(digest_bytes(short.getvalue()))


@pytest.mark.parametrize(
    ("limits", "error", "stopped", "frames", "decoded"),
    [
        # Six samples and two scene changes (a quarter of the cap); the sample at 6 s is over.
        (VideoLimits(max_frames=8), None, "frame_cap", 8, 59),
        (VideoLimits(max_frame_pixels=160 * 120 - 1), "too_large", None, 0, 0),
        (VideoLimits(max_decoded_pixels=160 * 120 * 20), None, "pixel_budget", 20, 21),
        (VideoLimits(max_seconds=1e-9), None, "deadline", 0, 0),
    ],
)
def test_an_animation_sampled_with_pillow_stops_at_each_cap(
    limits: VideoLimits, error: str | None, stopped: str | None, frames: int, decoded: int
) -> None:
    video = digest_video(_animation("WEBP"), limits=limits)
    assert (video.digest.error, video.stopped) == (error, stopped)
    assert (len(video.frames), video.decoded_frames) == (frames, decoded)
    assert (video.digest.width, video.digest.height) == (160, 120)


def test_a_damaged_animation_keeps_the_frames_before_the_damage_or_is_corrupt() -> None:
    png = _animation("PNG")
    video = digest_video(png[: len(png) // 2])
    assert (video.digest.error, video.stopped) == (None, "decode_error")
    assert 1 <= len(video.frames) < 68
    assert video.digest.sha256 == hashlib.sha256(png[: len(png) // 2]).hexdigest()
    webp = _animation("WEBP")  # libwebp's animation decoder needs the whole file
    video = digest_video(webp[:-10])
    assert (video.digest.error, video.frames) == ("corrupt", ())
    assert video.digest.sha256 == hashlib.sha256(webp[:-10]).hexdigest()


# -- matching ------------------------------------------------------------------------------


def _frame_entries(data: bytes, entry_id: str) -> list[ListEntry]:
    """A video entry as a vPDQ import makes one: the PDQ of every sampled frame."""
    return [
        ListEntry("pdq", frame.pdq_variants[0], "vpdq:" + entry_id)
        for frame in digest_video(data).frames
    ]


def test_a_known_picture_in_a_video_is_confirmed_with_the_times_it_is_shown() -> None:
    data = _clip("mp4")
    video = digest_video(data)
    matcher = Matcher([HashList("k", [ListEntry("pdq", _known_pdq(), "pic")])])
    matches, allowed = matcher.match_video(video.digest, video.frames)
    assert not allowed
    assert [(m.entry, m.verdict, m.algorithm, m.times, m.frames, m.share) for m in matches] == [
        ("pic", CONFIRMED, "pdq", (3.0, 4.0), 2, None)
    ]
    distances = [
        min(_distance(_known_pdq(), h) for h in f.pdq_variants)
        for f in video.frames
        if f.time in (3.0, 4.0)
    ]
    assert matches[0].distance == min(distances)


def test_a_video_entry_is_confirmed_by_most_of_its_frames_and_reviewed_by_a_few() -> None:
    crawled = digest_video(_clip("mp4"))
    same_video = _frame_entries(_clip("webm", 480, 360, bit_rate=150_000), "whole")
    shares_one_scene = _frame_entries(
        encode_video(
            [(textured_image(KNOWN_SEED), 2.0), (textured_image(KNOWN_SEED + 9), 6.0)],
            width=SIDE[0],
            height=SIDE[1],
            fps=10,
        ),
        "clip",
    )
    matcher = Matcher([HashList("v", same_video + shares_one_scene)])
    found = matcher.match_video(crawled.digest, crawled.frames)[0]
    matches = {m.entry.removeprefix("vpdq:"): m for m in found}
    assert set(matches) == {"whole", "clip"}
    assert (matches["whole"].verdict, matches["whole"].share) == (CONFIRMED, 100.0)
    assert matches["whole"].times == tuple(float(s) for s in range(8))
    clip = matches["clip"]
    assert (clip.verdict, clip.times, clip.frames) == (REVIEW, (3.0, 4.0), 2)
    assert clip.share == 25.0  # 2 of the crawled video's 8 frames, 2 of the entry's 8


def test_an_image_item_of_several_hashes_is_confirmed_by_one_frame_as_an_image_is() -> None:
    crawled = digest_video(_clip("mp4"))
    other = digest_bytes(encode(textured_image(KNOWN_SEED + 30), "PNG")).pdq
    assert other is not None
    item = [ListEntry("pdq", _known_pdq(), "case-7"), ListEntry("pdq", other, "case-7")]
    matches = Matcher([HashList("k", item)]).match_video(crawled.digest, crawled.frames)[0]
    assert [(m.entry, m.verdict, m.share, m.times) for m in matches] == [
        ("case-7", CONFIRMED, None, (3.0, 4.0))
    ]


def test_the_video_bytes_match_exact_entries_and_an_allowed_frame_is_skipped() -> None:
    data = _clip("mp4")
    video = digest_video(data)
    known = HashList(
        "k",
        [
            ListEntry("sha256", hashlib.sha256(data).hexdigest(), "file"),
            ListEntry("pdq", _known_pdq(), "pic"),
        ],
    )
    allow = HashList("ok", [ListEntry("pdq", _known_pdq(), "harmless")], kind="allow")
    matches, allowed = Matcher([known], [allow]).match_video(video.digest, video.frames)
    assert not allowed
    assert [(m.entry, m.algorithm, m.times) for m in matches] == [("file", "sha256", ())]
    allow_file = HashList(
        "ok", [ListEntry("md5", hashlib.md5(data).hexdigest(), "harmless")], kind="allow"
    )
    assert Matcher([known], [allow_file]).match_video(video.digest, video.frames) == ([], True)


_PEAK_PROBE = """
import sys
from pathlib import Path
from matchers.video import VideoLimits, digest_video, sampled_as_video
from tests.helpers import ROOT

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

data = sys.stdin.buffer.read()
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
video = digest_video(data, limits=VideoLimits(sample_fps=5))
print(len(video.frames), status("VmHWM") - before)
"""


def _peak_kib(data: bytes) -> tuple[int, int]:
    """(frames hashed, peak RSS above the start in KiB) of sampling ``data`` in a fresh
    process (VmHWM, reset before the call: ru_maxrss would carry this process's peak)."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE],
        input=data,
        capture_output=True,
        check=True,
        timeout=120,
        cwd=ROOT,
    )
    frames, peak = result.stdout.split()
    return int(frames), int(peak)


def test_memory_does_not_grow_with_the_length_of_the_video() -> None:
    pictures = [textured_image(KNOWN_SEED + 20 + n, 320, 240) for n in range(12)]
    short = encode_video([(pictures[0], 2.0)], width=640, height=480, fps=10, moving=False)
    long = encode_video(
        [(p, 2.0) for p in pictures], width=640, height=480, fps=10, moving=False
    )  # 12 times as long, a new picture every 2 s
    short_frames, short_peak = _peak_kib(short)
    long_frames, long_peak = _peak_kib(long)
    assert (short_frames, long_frames) == (10, 120)
    # Frames are hashed and dropped: 110 more of them (300 KiB of luma each at 640x480, 900
    # KiB in RGB) would add over 32 MiB if they were kept; the bound leaves room for
    # allocator noise only.
    assert long_peak < short_peak + 16 * 1024
