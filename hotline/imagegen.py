"""Seeded, benign, textured images for tests, demos and benchmarks.

Every image is generated from a seed: multi-scale smooth noise, a colour gradient, random
ellipses and polygons and a little fine noise. Different seeds give images whose perceptual
hashes (pHash, PDQ) are far apart, and each image has enough structure for PDQ quality well
above the usual threshold of 50. Flat colours and checkerboards are avoided on purpose: their
perceptual hashes are degenerate.

Nothing here touches the disk: :func:`encode` returns bytes built in memory, and the transforms
return new images. They are the edits a copy of a reference image typically goes through on the
web (re-encoding, resizing, cropping, a watermark, a format change), used to check that
perceptual matching still recognises the copy.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 480

#: Grid sizes (cells across the short side) of the smooth-noise octaves, coarse to fine, and
#: their weights. The coarse octaves dominate, which keeps the low-frequency DCT coefficients
#: that pHash and PDQ look at independent from seed to seed.
NOISE_OCTAVES: tuple[tuple[int, float], ...] = ((2, 1.0), (4, 0.8), (8, 0.6), (16, 0.4))
GRADIENT_WEIGHT = 0.35
SHAPE_COUNT_RANGE = (8, 14)
SHAPE_ALPHA_RANGE = (70, 170)
FINE_NOISE_AMPLITUDE = 10
SMOOTH_DOWNSCALE = 4
MIN_SIDE = 16

DEFAULT_CROP_FRACTION = 0.04
WATERMARK_SIZE_FRACTION = 0.25
WATERMARK_ALPHA = 140

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


def _smooth_noise(
    rng: np.random.Generator, cells: int, width: int, height: int
) -> npt.NDArray[np.float32]:
    """One octave: a small random grid per channel, upsampled bicubically."""
    short = min(width, height)
    grid_w = max(2, round(cells * width / short)) + 1
    grid_h = max(2, round(cells * height / short)) + 1
    channels = []
    for _ in range(3):
        grid = Image.fromarray(rng.random((grid_h, grid_w), dtype=np.float32), mode="F")
        channels.append(np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC)))
    return np.stack(channels, axis=-1) - np.float32(0.5)


def _gradient(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    ramp = xs * np.float32(np.cos(angle)) + ys * np.float32(np.sin(angle))
    colour = rng.uniform(-1.0, 1.0, size=3).astype(np.float32)
    return ramp[..., None] * colour[None, None, :]


def _to_uint8(field: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Stretch each channel to the full 0..255 range."""
    low = field.min(axis=(0, 1))
    high = field.max(axis=(0, 1))
    scaled = (field - low) / np.maximum(high - low, np.float32(1e-6))
    out: npt.NDArray[np.uint8] = (scaled * np.float32(255.0)).astype(np.uint8)
    return out


def _draw_shapes(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    width, height = img.size
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    count = int(rng.integers(SHAPE_COUNT_RANGE[0], SHAPE_COUNT_RANGE[1] + 1))
    for _ in range(count):
        colour = (
            int(rng.integers(0, 256)),
            int(rng.integers(0, 256)),
            int(rng.integers(0, 256)),
            int(rng.integers(SHAPE_ALPHA_RANGE[0], SHAPE_ALPHA_RANGE[1] + 1)),
        )
        cx = float(rng.uniform(0, width))
        cy = float(rng.uniform(0, height))
        radius = float(rng.uniform(0.05, 0.25)) * min(width, height)
        if rng.random() < 0.5:
            rx = radius * float(rng.uniform(0.5, 1.5))
            ry = radius * float(rng.uniform(0.5, 1.5))
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        else:
            sides = int(rng.integers(3, 8))
            angles = np.sort(rng.uniform(0.0, 2.0 * np.pi, size=sides))
            radii = radius * rng.uniform(0.6, 1.4, size=sides)
            points = [
                (cx + float(r * np.cos(a)), cy + float(r * np.sin(a)))
                for a, r in zip(angles, radii, strict=True)
            ]
            draw.polygon(points, fill=colour)
    return Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")


def textured_image(
    seed: int, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT
) -> Image.Image:
    """A benign RGB texture, deterministic for ``seed`` and visually distinct across seeds."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"image too small for meaningful hashes: {width}x{height}")
    rng = np.random.default_rng(seed)
    # The smooth part is computed at reduced resolution, then upsampled once: it is smooth anyway.
    small_w = max(MIN_SIDE, width // SMOOTH_DOWNSCALE)
    small_h = max(MIN_SIDE, height // SMOOTH_DOWNSCALE)
    field = GRADIENT_WEIGHT * _gradient(rng, small_w, small_h)
    for cells, weight in NOISE_OCTAVES:
        field += np.float32(weight) * _smooth_noise(rng, cells, small_w, small_h)
    smooth = Image.fromarray(_to_uint8(field), mode="RGB")
    base = smooth.resize((width, height), Image.Resampling.BICUBIC)
    shaped = np.asarray(_draw_shapes(rng, base), dtype=np.int16)
    grain = rng.integers(-FINE_NOISE_AMPLITUDE, FINE_NOISE_AMPLITUDE + 1, size=shaped.shape)
    return Image.fromarray(np.clip(shaped + grain, 0, 255).astype(np.uint8), mode="RGB")


def encode(img: Image.Image, fmt: str, **opts: Any) -> bytes:
    """Encode ``img`` as ``fmt`` (JPEG, PNG, WEBP, GIF) into bytes, in memory only."""
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "JPEG" and img.mode != "RGB":
        img = img.convert("RGB")
    elif fmt == "GIF" and img.mode not in ("P", "L", "1"):
        # A fixed web palette with dithering is fast and keeps the low frequencies that
        # perceptual hashes read; Pillow's default adaptive palette is slow on large textures.
        img = img.convert("RGB").convert(
            "P", palette=Image.Palette.WEB, dither=Image.Dither.FLOYDSTEINBERG
        )
    buf = io.BytesIO()
    img.save(buf, format=fmt, **opts)
    return buf.getvalue()


#: Video encoders :func:`encode_video` knows, by container: (codec, pixel format).
VIDEO_CODECS: dict[str, tuple[str, str]] = {
    "mp4": ("libx264", "yuv420p"),
    "mov": ("libx264", "yuv420p"),
    "webm": ("libvpx-vp9", "yuv420p"),
    "matroska": ("libx264", "yuv420p"),
    "avi": ("mpeg4", "yuv420p"),
    "mpegts": ("libx264", "yuv420p"),
}


def encode_video(
    scenes: list[tuple[Image.Image, float]],
    *,
    container: str = "mp4",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: int = 25,
    bit_rate: int | None = None,
    moving: bool = True,
) -> bytes:
    """A video of ``scenes`` (picture, seconds shown), encoded in memory with PyAV.

    Each picture is scaled to ``width`` x ``height``; with ``moving`` every frame gets its own
    faint grain (a still picture compresses to nothing and is not what a camera gives).
    ``container`` is a key of :data:`VIDEO_CODECS`; ``bit_rate`` (bits/s) overrides the
    encoder's quality default.
    """
    import av  # noqa: PLC0415  (only the video generator needs FFmpeg)

    codec, pixel_format = VIDEO_CODECS[container]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        if not isinstance(stream, av.VideoStream):
            raise TypeError(f"{codec} is not a video encoder")
        stream.width, stream.height, stream.pix_fmt = width, height, pixel_format
        if bit_rate is not None:
            stream.codec_context.bit_rate = bit_rate
        rng = np.random.default_rng(len(scenes))
        for picture, seconds in scenes:
            pixels = np.asarray(picture.convert("RGB").resize((width, height)), dtype=np.int16)
            for _ in range(round(seconds * fps)):
                grain = rng.integers(-4, 5, size=pixels.shape) if moving else 0
                still = np.clip(pixels + grain, 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(still, format="rgb24")
                for packet in stream.encode(frame):
                    output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """Decode bytes (from memory) into a fully loaded RGB image."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.convert("RGB")


def reencode_jpeg(img: Image.Image, quality: int) -> Image.Image:
    """The image after a JPEG round trip at ``quality``."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    return decode(encode(img, "JPEG", quality=quality))


def resized(img: Image.Image, factor: float) -> Image.Image:
    """The image scaled by ``factor`` (0.5 halves each side)."""
    if factor <= 0:
        raise ValueError(f"resize factor must be positive, got {factor}")
    width = max(1, round(img.width * factor))
    height = max(1, round(img.height * factor))
    return img.resize((width, height), Image.Resampling.LANCZOS)


def cropped(img: Image.Image, fraction: float = DEFAULT_CROP_FRACTION) -> Image.Image:
    """The image with ``fraction`` of each dimension cut away, half from each edge."""
    if not 0 <= fraction < 0.5:
        raise ValueError(f"crop fraction must be in [0, 0.5), got {fraction}")
    dx = round(img.width * fraction / 2)
    dy = round(img.height * fraction / 2)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def watermarked(img: Image.Image, text: str) -> Image.Image:
    """The image with a small semi-transparent box and ``text`` in the bottom-right corner."""
    base = img.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = 4
    box_w = min(int(base.width * WATERMARK_SIZE_FRACTION), right - left + 2 * pad)
    box_h = min(int(base.height * WATERMARK_SIZE_FRACTION), bottom - top + 2 * pad)
    x0 = base.width - box_w - pad
    y0 = base.height - box_h - pad
    draw.rectangle((x0, y0, x0 + box_w, y0 + box_h), fill=(255, 255, 255, WATERMARK_ALPHA))
    draw.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=(0, 0, 0, 220))
    return Image.alpha_composite(base, overlay).convert("RGB")
