"""Seeded generator of benign, textured test images (never real photos).

An image is smooth random noise at several scales + a colour gradient + a few random ellipses
and rectangles + a little pixel noise. Different seeds give perceptually unrelated images
(see ``test_imagegen.py``); flat or periodic images (checkerboards) are avoided on purpose
because their perceptual hashes are degenerate.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def _smooth_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sum of random fields upsampled from coarse grids (float32, roughly 0..1, shape h x w x 3)."""
    total = np.zeros((height, width, 3), dtype=np.float32)
    for cells, weight in ((3, 0.35), (8, 0.3), (21, 0.2), (53, 0.15)):
        coarse = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        layer = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        total += weight * (np.asarray(layer, dtype=np.float32) / 255.0)
    return total


def make_rgb(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """A deterministic textured RGB image."""
    rng = np.random.default_rng(seed)
    field = _smooth_noise(rng, width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.random() * 2 * np.pi
    gradient = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1.0) / 2.0
    tint = rng.random(3).astype(np.float32)
    pixels = 0.6 * field + 0.4 * gradient[..., None] * tint[None, None, :]
    image = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 8))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1 + 1, y1 + 1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-6, 7, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode to bytes in memory."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def make_bytes(seed: int, fmt: str = "PNG", width: int = 640, height: int = 480) -> bytes:
    """Encoded bytes of :func:`make_rgb` (JPEG at quality 90)."""
    image = make_rgb(seed, width, height)
    if fmt == "JPEG":
        return encode(image, fmt, quality=90)
    return encode(image, fmt)
