"""Images per second of ``matchers.digest.digest_bytes`` against the naive path, one thread.

Run from the repository root::

    .venv/bin/python bench/hashing.py [--large N] [--repeat R] > hashing.json

The naive path is what a script would do: full decode with Pillow, ``pdqhash.compute`` on the
full-resolution array, ``imagehash.phash``, MD5 + SHA-1 + SHA-256. The project's path is
``digest_bytes``: the same checksums, one reduced-scale decode, border trimming, the eight
dihedral PDQ and pHash hashes. Both run on the same encoded images in the same run:

- ``photos``: the benign photo set as JPEG bytes (``../shared/data/photos``; else
  scikit-image's sample images; else generated textures), read into memory, never copied;
- ``large``: the first N of them upscaled to 3000 px on the longer side and re-encoded as JPEG
  (quality 90) in memory, as large web images are.

Each path is timed over the whole set R times (interleaved); the best pass counts. Per-step
costs (milliseconds per image, best pass) come from running the steps of each path separately.
Prints one JSON object on stdout, progress on stderr. Images are held in memory only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import imagehash  # noqa: E402
import pdqhash  # noqa: E402

from matchers.algorithms import PDQ_MIN_DECODE_SIDE  # noqa: E402
from matchers.digest import decode_image, digest_bytes  # noqa: E402
from matchers.imageops import pdq_dihedral, phash_dihedral, trim_borders  # noqa: E402

PHOTOS = REPO_ROOT.parent / "shared" / "data" / "photos"
LARGE_SIDE = 3000
LARGE_QUALITY = 90
SKIMAGE_NAMES = (
    "astronaut",
    "camera",
    "cat",
    "chelsea",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "rocket",
    "text",
)


def jpeg_bytes(image: Image.Image, quality: int = LARGE_QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def load_photos(limit: int | None = None) -> tuple[str, list[bytes]]:
    """(source, encoded benign images): the shared photos, skimage.data, or textures."""
    if PHOTOS.is_dir():
        paths = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in {".jpeg", ".jpg"})
        return "../shared/data/photos", [p.read_bytes() for p in paths[:limit]]
    try:
        from skimage import data as skdata  # noqa: PLC0415
    except ImportError:
        print("no photos and no scikit-image: using generated textures", file=sys.stderr)
        from hotline.imagegen import textured_image  # noqa: PLC0415

        count = limit or 60
        return "hotline.imagegen textures", [
            jpeg_bytes(textured_image(seed, 640, 480)) for seed in range(count)
        ]
    images = []
    for name in SKIMAGE_NAMES[:limit]:
        pixels = np.asarray(getattr(skdata, name)())
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        images.append(jpeg_bytes(Image.fromarray(pixels[..., :3].astype(np.uint8))))
    return "skimage.data", images


def upscaled(data: bytes) -> bytes:
    image = decode_rgb(data)
    scale = LARGE_SIDE / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return jpeg_bytes(image.resize(size, Image.Resampling.BICUBIC))


def checksums(data: bytes) -> None:
    hashlib.md5(data, usedforsecurity=False).hexdigest()
    hashlib.sha1(data, usedforsecurity=False).hexdigest()
    hashlib.sha256(data).hexdigest()


def naive(data: bytes) -> None:
    checksums(data)
    rgb = decode_rgb(data)
    pdqhash.compute(np.asarray(rgb))
    str(imagehash.phash(rgb))


def best_pass(func: Callable[[bytes], object], images: list[bytes], repeat: int) -> float:
    """Best wall time (s) of ``repeat`` passes of ``func`` over ``images``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for data in images:
            func(data)
        best = min(best, time.perf_counter() - start)
    return best


def step_costs(images: list[bytes], repeat: int) -> dict[str, dict[str, float]]:
    """Milliseconds per image of each step, best of ``repeat`` passes."""
    decoded_full = [decode_rgb(d) for d in images]
    arrays = [np.asarray(rgb) for rgb in decoded_full]
    decoded = [decode_image(d) for d in images]
    trimmed = [trim_borders(d.rgb)[0] for d in decoded]

    def per_image(func: Callable[[int], object]) -> float:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            for index in range(len(images)):
                func(index)
            best = min(best, time.perf_counter() - start)
        return round(1000 * best / len(images), 3)

    return {
        "naive": {
            "checksums": per_image(lambda i: checksums(images[i])),
            "decode_full": per_image(lambda i: decode_rgb(images[i])),
            "pdq_full": per_image(lambda i: pdqhash.compute(arrays[i])),
            "phash_full": per_image(lambda i: str(imagehash.phash(decoded_full[i]))),
        },
        "digest": {
            "checksums": per_image(lambda i: checksums(images[i])),
            "decode_reduced": per_image(lambda i: decode_image(images[i])),
            "trim_borders": per_image(lambda i: trim_borders(decoded[i].rgb)),
            "pdq_dihedral": per_image(lambda i: pdq_dihedral(trimmed[i])),
            "phash_dihedral": per_image(lambda i: phash_dihedral(trimmed[i])),
        },
    }


def measure(name: str, images: list[bytes], repeat: int) -> dict[str, object]:
    print(f"{name}: {len(images)} images", file=sys.stderr)
    naive_s = digest_s = float("inf")
    for _ in range(repeat):  # interleaved, so drift in machine load hits both paths
        naive_s = min(naive_s, best_pass(naive, images, 1))
        digest_s = min(digest_s, best_pass(digest_bytes, images, 1))
    sizes = [decode_image(d) for d in images]
    return {
        "images": len(images),
        "mean_bytes": round(sum(map(len, images)) / len(images)),
        "mean_pixels": round(sum(d.width * d.height for d in sizes) / len(sizes)),
        "mean_hashed_pixels": round(sum(d.rgb.width * d.rgb.height for d in sizes) / len(sizes)),
        "naive_images_per_s": round(len(images) / naive_s, 1),
        "digest_images_per_s": round(len(images) / digest_s, 1),
        "ratio": round(naive_s / digest_s, 2),
        "steps_ms_per_image": step_costs(images, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=40, help="images in the large set")
    parser.add_argument("--repeat", type=int, default=3, help="passes per path (best counts)")
    args = parser.parse_args()
    source, photos = load_photos()
    print(f"building {args.large} large images in memory", file=sys.stderr)
    large = [upscaled(data) for data in photos[: args.large]]
    report = {
        "source": source,
        "threads": 1,
        "pdq_min_decode_side": PDQ_MIN_DECODE_SIDE,
        "python": platform.python_version(),
        "target_ratio": 2.5,
        "sets": {
            "photos": measure("photos", photos, args.repeat),
            "large": measure(f"large ({LARGE_SIDE} px)", large, args.repeat),
        },
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
