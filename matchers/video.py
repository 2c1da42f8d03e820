"""Hash the frames of a video held in memory: PDQ (and pHash) of sampled frames, never a file.

A video is opened with PyAV (FFmpeg's libraries) from :class:`io.BytesIO`; no byte of it, and
no decoded frame, is written anywhere. Frames are sampled at :attr:`VideoLimits.sample_fps`
(default one per second) plus every keyframe that differs visibly from the frame kept before
it (encoders start a keyframe at a scene cut, so a picture shown for half a second between two
samples is still seen; every frame of an animated GIF is looked at so). Animated WebP and
PNG, which FFmpeg's demuxers here do not decode, are sampled the same way from Pillow's
frames (:func:`matchers.digest.animation_frames`), every frame a scene-change candidate.
Each frame kept is
reduced in FFmpeg's scaler to hashing scale (the shorter side at least
:data:`~matchers.algorithms.PDQ_MIN_DECODE_SIDE`, as images are) and hashed like a still
image (:func:`matchers.digest.perceptual_hashes`: borders trimmed, PDQ with its eight
dihedral variants, pHash).

Hostile input is bounded (:class:`VideoLimits`): only the demuxers of
:data:`VIDEO_DEMUXERS` are allowed (no playlist or concat demuxer that would open another
file), the frame size in the header is checked before any frame is decoded (and FFmpeg is told
the same limit, for streams that change size), the frames hashed, the pixels decoded and the
wall-clock time are capped. A video too long for the pixel budget is sampled at its keyframes
only (the decoder then skips every other frame). A decode that stops early keeps the frames
hashed so far and says why in :attr:`VideoDigest.stopped`; a container or stream FFmpeg cannot
read sets :attr:`VideoDigest.error` (``corrupt``, ``unsupported``, ``too_large``), and the
exact digests of the bytes are always there.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import av
import av.error
import numpy as np
from PIL import Image

from matchers.algorithms import (
    ALGORITHMS,
    ANIMATION_MAX_FRAMES_INSPECTED,
    PERCEPTUAL_ALGORITHMS,
)
from matchers.digest import (
    DecodedImage,
    ImageDigest,
    animation_frames,
    exact_digest,
    image_size,
    perceptual_hashes,
)
from matchers.errors import DecodeError, ImageError, ImageTooLarge
from matchers.imageops import reduction_factor
from matchers.sniff import FILE_SNIFF_BYTES, sniff_file, sniff_image

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "DECODE_THREADS",
    "SAMPLED_ANIMATIONS",
    "VIDEO_DEMUXERS",
    "FrameHashes",
    "VideoDigest",
    "VideoLimits",
    "digest_video",
    "sampled_as_video",
]

#: FFmpeg demuxers a video may be opened with (MP4/MOV, Matroska/WebM, AVI, MPEG-TS and -PS,
#: FLV, Ogg, and the image-sequence demuxers of animated GIF and WebP). Playlists (HLS, DASH),
#: ``concat`` and the like are not here: they open further files or URLs.
VIDEO_DEMUXERS: Final = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "mpeg",
    "flv",
    "ogg",
    "gif",
    "webp_pipe",
)
#: Bytes and microseconds FFmpeg may read to find the streams (its defaults are 5 MB / 5 s).
_PROBE_BYTES: Final = 5_000_000
_ANALYZE_MICROSECONDS: Final = 5_000_000
#: A keyframe between two samples is kept when its 16x16 thumbnail differs from the last kept
#: frame's by at least this mean absolute luma difference (0-255): a cut, not a flicker.
SCENE_CHANGE_LUMA: Final = 24.0
_THUMB_SIDE: Final = 16
#: Codecs whose every frame is looked at for a scene change, keyframe or not.
_WHOLE_FRAME_CODECS: Final = frozenset({"gif"})
#: Animated image formats (as sniffed) sampled as videos when they have more frames than an
#: image's hashing looks into (:data:`~matchers.algorithms.ANIMATION_MAX_FRAMES_INSPECTED`).
SAMPLED_ANIMATIONS: Final = frozenset({"gif", "webp", "png"})
#: ... of which these are decoded with Pillow: the FFmpeg in PyAV's wheel has no animated
#: WebP decoder, and no APNG demuxer is allowed here.
_PILLOW_ANIMATIONS: Final = frozenset({"webp", "png"})
#: FFmpeg decoder threads per video at most (fewer on a machine with fewer cores): a video
#: costs at most this many times ``VideoLimits.max_seconds`` of CPU time.
DECODE_THREADS: Final = 4
#: What PyAV raises on a container or stream it cannot read.
_ERRORS: Final = (av.error.FFmpegError, ValueError, IndexError, MemoryError, OverflowError)


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """Bounds on the work one video may cost (see the module docstring)."""

    #: Frames sampled per second of video (besides scene changes).
    sample_fps: float = 1.0
    #: Frames hashed per video; a longer video is sampled more sparsely to fit.
    max_frames: int = 600
    #: Pixels of one frame, from the header (8K UHD fits).
    max_frame_pixels: int = 36_000_000
    #: Pixels decoded in all (about 33 minutes of 1080p at 30 fps); a video whose header
    #: promises more is sampled at its keyframes only, and decoding stops when it is spent.
    max_decoded_pixels: int = 120_000_000_000
    #: Wall-clock seconds for one video; the frames hashed by then are kept.
    max_seconds: float = 120.0

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"video limit {name} must be a positive number, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> VideoLimits:
        known = {name: values[name] for name in cls().as_dict() if name in values}
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FrameHashes:
    """The hashes of one frame kept; ``time`` in seconds from the start of the video."""

    time: float
    pdq_variants: tuple[str, ...]
    pdq_quality: int | None
    phash_variants: tuple[str, ...]
    #: Kept for a scene change (a keyframe unlike the frame before), not by the sampling rate.
    scene: bool = False

    def as_image_digest(self) -> ImageDigest:
        """The frame as an image digest with no exact hash (what a matcher queries)."""
        return ImageDigest(
            md5="",
            sha1="",
            sha256="",
            pdq=self.pdq_variants[0] if self.pdq_variants else None,
            pdq_quality=self.pdq_quality,
            phash=self.phash_variants[0] if self.phash_variants else None,
            format="frame",
            width=None,
            height=None,
            frames=1,
            error=None,
            pdq_variants=self.pdq_variants,
            phash_variants=self.phash_variants,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "pdq_variants": list(self.pdq_variants),
            "pdq_quality": self.pdq_quality,
            "phash_variants": list(self.phash_variants),
            "scene": self.scene,
        }

    @classmethod
    def from_dict(cls, value: dict[str, object]) -> FrameHashes:
        time_value = value["time"]
        quality = value.get("pdq_quality")
        if not isinstance(time_value, int | float) or not (
            quality is None or isinstance(quality, int)
        ):
            raise ValueError("frame hashes: bad time or quality")
        return cls(
            time=float(time_value),
            pdq_variants=tuple(str(h) for h in _as_list(value.get("pdq_variants"))),
            pdq_quality=quality,
            phash_variants=tuple(str(h) for h in _as_list(value.get("phash_variants"))),
            scene=bool(value.get("scene", False)),
        )


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("frame hashes: a hash list is not a list")
    return value


@dataclass(frozen=True, slots=True)
class VideoDigest:
    """What is known of one video: the exact digests of its bytes (``digest``; its ``width``,
    ``height`` and ``frames`` are the video's size and the frames decoded) and the hashes of
    the frames kept, in time order."""

    digest: ImageDigest
    frames: tuple[FrameHashes, ...] = ()
    #: Seconds, from the container (None when it does not say).
    duration: float | None = None
    codec: str | None = None
    #: Why sampling ended before the end of the video: ``frame_cap``, ``pixel_budget``,
    #: ``deadline``, ``decode_error`` (frames after a damaged packet); None when it did not.
    stopped: str | None = None
    #: Sampled at keyframes only (the video was too long to decode every frame).
    keyframes_only: bool = False
    decoded_frames: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "digest": self.digest.as_dict(),
            "frames": [frame.as_dict() for frame in self.frames],
            "duration": self.duration,
            "codec": self.codec,
            "stopped": self.stopped,
            "keyframes_only": self.keyframes_only,
            "decoded_frames": self.decoded_frames,
        }


def sampled_as_video(digest: ImageDigest) -> bool:
    """Whether an image is an animation longer than an image's hashing looks into, to be
    sampled as a video as well (:func:`digest_video`)."""
    return (
        digest.format in SAMPLED_ANIMATIONS
        and digest.error is None
        and digest.frames > ANIMATION_MAX_FRAMES_INSPECTED
    )


def digest_video(
    data: bytes,
    *,
    format: str | None = None,
    algorithms: Collection[str] = ALGORITHMS,
    limits: VideoLimits | None = None,
) -> VideoDigest:
    """Exact digests of ``data`` and the perceptual hashes of its sampled frames.

    ``format`` is the sniffed format (:func:`matchers.sniff.sniff_image`, else
    :func:`matchers.sniff.sniff_file`; sniffed here when None), recorded in the digest; FFmpeg
    probes the bytes itself, among :data:`VIDEO_DEMUXERS`, except for the animated images
    Pillow decodes. Without a perceptual algorithm in ``algorithms`` nothing is decoded.
    Never raises on bad input: the digest's ``error`` says what went wrong (see the module
    docstring).
    """
    limits = limits or VideoLimits()
    perceptual = frozenset(algorithms) & frozenset(PERCEPTUAL_ALGORITHMS)
    if format is None:
        format = sniff_image(data)
    if format is None:
        kind = sniff_file(data[:FILE_SNIFF_BYTES])
        format = kind.format if kind is not None else None
    exact = exact_digest(data, format=format, frames=0)
    if not perceptual:
        return VideoDigest(exact)
    sampler = _Sampler(exact, perceptual, limits, time.monotonic())
    if format in _PILLOW_ANIMATIONS:
        return sampler.run_animation(data, format)
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            options={
                "format_whitelist": ",".join(VIDEO_DEMUXERS),
                "probesize": str(_PROBE_BYTES),
                "analyzeduration": str(_ANALYZE_MICROSECONDS),
            },
        )
    except av.error.DemuxerNotFoundError:
        return VideoDigest(_with_error(exact, "unsupported"))
    except _ERRORS:
        return VideoDigest(_with_error(exact, "corrupt"))
    with container:
        return sampler.run(container)


def _with_error(
    digest: ImageDigest,
    error: str | None,
    width: int | None = None,
    height: int | None = None,
    frames: int = 0,
) -> ImageDigest:
    """The exact digest of the video's bytes with what was learnt of its pictures."""
    return dataclasses.replace(digest, error=error, width=width, height=height, frames=frames)


@dataclass(frozen=True, slots=True)
class _Frame:
    """A decoded frame offered to the sampler; its pictures are made only when asked for."""

    #: Seconds from the start of the video.
    when: float
    #: May be a scene change: a keyframe, or any frame of an animation.
    candidate: bool
    #: The frame as a 16x16 luma array (scene changes are told by it).
    thumbnail: Callable[[], np.ndarray]
    #: The frame as luma at hashing scale.
    picture: Callable[[], DecodedImage]


class _Sampler:
    """One pass over a video's frames: decide per decoded frame whether to hash it."""

    def __init__(
        self,
        exact: ImageDigest,
        perceptual: frozenset[str],
        limits: VideoLimits,
        started: float,
    ) -> None:
        self.exact = exact
        self.perceptual = perceptual
        self.limits = limits
        self.deadline = started + limits.max_seconds
        self.frames: list[FrameHashes] = []
        self.decoded = 0
        self.pixels = 0
        self.stopped: str | None = None
        self.last_thumb: np.ndarray | None = None
        self.scene_budget = limits.max_frames // 4

    def run(self, container: InputContainer) -> VideoDigest:
        duration = container.duration / 1_000_000 if container.duration else None
        if not container.streams.video:
            # Audio only, or a container with no picture: the exact digests are all there is.
            return VideoDigest(self.exact, duration=duration)
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a codec FFmpeg has no decoder for
            return VideoDigest(_with_error(self.exact, "unsupported"), duration=duration)
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            return self._result(stream, "corrupt", duration, codec)
        if width * height > self.limits.max_frame_pixels:
            return self._result(stream, "too_large", duration, codec)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = min(DECODE_THREADS, os.cpu_count() or 1)
        # FFmpeg refuses, in the decoder itself, any frame larger than the header's limit.
        stream.codec_context.options = {"max_pixels": str(self.limits.max_frame_pixels)}
        expected_frames = _expected_frames(stream, duration)
        keyframes_only = (
            expected_frames is not None
            and expected_frames * width * height > self.limits.max_decoded_pixels
        )
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        # Scene changes may take a quarter of the frame cap; when the samples would not fit
        # in the rest, they are spread over the whole video instead.
        interval = 1.0 / self.limits.sample_fps
        samples = self.limits.max_frames - self.scene_budget
        if duration is not None and duration / interval > samples:
            interval = duration / max(1, samples)
        error: str | None = None
        try:
            self._sample(self._av_frames(container, stream), interval, keyframes_only)
        except av.error.DecoderNotFoundError:
            error = "unsupported"
        except av.error.ArgumentError:
            error = "too_large" if not self.decoded else None  # max_pixels refused a frame
            self.stopped = self.stopped or ("decode_error" if self.decoded else None)
        except _ERRORS:
            if self.frames:
                self.stopped = "decode_error"
            else:
                error = "corrupt"
        digest = _with_error(self.exact, error, width, height, self.decoded)
        return VideoDigest(
            digest,
            tuple(self.frames),
            duration=duration,
            codec=codec,
            stopped=self.stopped,
            keyframes_only=keyframes_only,
            decoded_frames=self.decoded,
        )

    def run_animation(self, data: bytes, format: str) -> VideoDigest:
        """Sample an animated image Pillow decodes, frame by frame (no keyframes: every
        frame is a scene-change candidate; the pixel budget and the deadline bound it)."""
        codec = format
        try:
            width, height = image_size(data, format, max_pixels=self.limits.max_frame_pixels)
        except ImageError as exc:
            refused = "too_large" if isinstance(exc, ImageTooLarge) else _code(exc)
            return VideoDigest(_with_error(self.exact, refused, exc.width, exc.height), codec=codec)
        error: str | None = None
        frames = animation_frames(data, format, max_pixels=self.limits.max_frame_pixels)
        try:
            self._sample(self._pillow_frames(frames, width, height), 1 / self.limits.sample_fps)
        except ImageError as exc:
            if self.frames:
                self.stopped = "decode_error"
            else:
                error = _code(exc)
        finally:
            frames.close()
        return VideoDigest(
            _with_error(self.exact, error, width, height, self.decoded),
            tuple(self.frames),
            codec=codec,
            stopped=self.stopped,
            decoded_frames=self.decoded,
        )

    def _result(
        self, stream: VideoStream, error: str, duration: float | None, codec: str | None
    ) -> VideoDigest:
        width, height = stream.codec_context.width, stream.codec_context.height
        return VideoDigest(
            _with_error(self.exact, error, width or None, height or None),
            duration=duration,
            codec=codec,
        )

    def _sample(
        self, frames: Iterator[_Frame], interval: float, keyframes_only: bool = False
    ) -> None:
        next_sample = 0.0
        for frame in frames:
            when = frame.when
            sampled = when + 1e-6 >= next_sample or keyframes_only
            scene = False
            thumb: np.ndarray | None = None
            if not sampled and frame.candidate and self.scene_budget > 0:
                thumb = frame.thumbnail()
                scene = self.last_thumb is None or _differs(thumb, self.last_thumb)
                self.scene_budget -= scene
            if not (sampled or scene):
                continue
            if len(self.frames) >= self.limits.max_frames:
                self.stopped = "frame_cap"
                return
            if sampled:
                next_sample = (math.floor(when / interval + 1e-6) + 1) * interval
            self.last_thumb = thumb if thumb is not None else frame.thumbnail()
            self.frames.append(self._hash(frame, scene=scene and not sampled))
            if time.monotonic() > self.deadline:
                self.stopped = "deadline"
                return

    def _within_budget(self, pixels: int) -> bool:
        """Count one decoded frame; False (and ``stopped`` says why) when it overdraws the
        pixel budget."""
        self.decoded += 1
        self.pixels += pixels
        if self.pixels > self.limits.max_decoded_pixels:
            self.stopped = "pixel_budget"
            return False
        return True

    def _av_frames(self, container: InputContainer, stream: VideoStream) -> Iterator[_Frame]:
        """Every frame the decoder gives, within the pixel budget and the deadline."""
        frame_pixels = stream.codec_context.width * stream.codec_context.height
        # A GIF's frames are whole pictures its decoder does not mark as keyframes: each is a
        # candidate scene change (GIFs are small, so looking at every frame costs little).
        every_frame = stream.codec_context.name in _WHOLE_FRAME_CODECS
        for packet in container.demux(stream):
            if time.monotonic() > self.deadline:
                self.stopped = "deadline"
                return
            for frame in packet.decode():
                if not self._within_budget(max(frame_pixels, frame.width * frame.height)):
                    return
                yield _Frame(
                    when=_frame_time(frame, self.decoded, stream),
                    candidate=frame.key_frame or every_frame,
                    thumbnail=functools.partial(_thumbnail, frame),
                    picture=functools.partial(_av_picture, frame),
                )

    def _pillow_frames(
        self, frames: Iterator[tuple[float, Image.Image]], width: int, height: int
    ) -> Iterator[_Frame]:
        """The frames of an animated image, within the pixel budget and the deadline."""
        while time.monotonic() <= self.deadline:
            shown = next(frames, None)
            if shown is None or not self._within_budget(width * height):
                return
            when, luma = shown
            yield _Frame(
                when=when,
                candidate=True,
                thumbnail=functools.partial(_pillow_thumbnail, luma),
                picture=functools.partial(DecodedImage, luma, width, height, 1),
            )
        self.stopped = "deadline"

    def _hash(self, frame: _Frame, *, scene: bool) -> FrameHashes:
        pdq_variants, quality, phash_variants = perceptual_hashes(
            frame.picture(), algorithms=self.perceptual
        )
        return FrameHashes(
            time=round(frame.when, 3),
            pdq_variants=pdq_variants,
            pdq_quality=quality,
            phash_variants=phash_variants,
            scene=scene,
        )


def _code(exc: ImageError) -> str:
    """The digest's error code for an image error of an animation."""
    return exc.code if isinstance(exc, DecodeError) else "corrupt"


def _av_picture(frame: VideoFrame) -> DecodedImage:
    """The frame's luma reduced in FFmpeg's scaler to hashing scale."""
    factor = reduction_factor(frame.width, frame.height)
    width = max(1, frame.width // factor)
    height = max(1, frame.height // factor)
    luma = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    picture = Image.fromarray(luma.to_ndarray(), mode="L")
    return DecodedImage(luma=picture, width=frame.width, height=frame.height, frames=1)


def _expected_frames(stream: VideoStream, duration: float | None) -> int | None:
    """Frames the header promises: its frame count, else duration x average rate."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if duration is None or not rate:
        return None
    return int(duration * float(rate)) + 1


def _frame_time(frame: VideoFrame, index: int, stream: VideoStream) -> float:
    """Seconds from the stream's first frame (an MPEG-TS stream does not start at 0)."""
    if frame.time is not None and math.isfinite(frame.time):
        start = 0.0
        if stream.start_time and stream.time_base:
            start = float(stream.start_time * stream.time_base)
        return max(0.0, float(frame.time) - float(start))
    rate = stream.average_rate or stream.guessed_rate
    return (index - 1) / float(rate) if rate else float(index - 1)


def _thumbnail(frame: VideoFrame) -> np.ndarray:
    small = frame.reformat(
        width=_THUMB_SIDE, height=_THUMB_SIDE, format="gray", interpolation="AREA"
    )
    return small.to_ndarray().astype(np.int16)


def _pillow_thumbnail(luma: Image.Image) -> np.ndarray:
    small = luma.resize((_THUMB_SIDE, _THUMB_SIDE), Image.Resampling.BOX)
    return np.asarray(small).astype(np.int16)


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) >= SCENE_CHANGE_LUMA
