"""Images per second of ``matchers.digest.digest_bytes`` against the naive path, one thread.

Run from the repository root::

    .venv/bin/python bench/hashing.py [--large N] [--repeat R] [--no-steps] > hashing.json

The naive path is what a script would do: full decode with Pillow, ``pdqhash.compute`` on the
full-resolution array, ``imagehash.phash``, MD5 + SHA-1 + SHA-256. The project's path is
``digest_bytes``: the same checksums, one reduced-scale luma decode, border detection, the eight
dihedral PDQ and pHash hashes. Both run on the same encoded images in the same run:

- ``photos``: the benign photo set as JPEG bytes (``../shared/data/photos``, ~500 px; else
  scikit-image's sample images; else generated textures), read into memory, never copied;
- ``xga``: every photo scaled to cover 1024x768, centre-cropped to it and re-encoded as JPEG
  (quality 90) in memory, the size of a typical web image;
- ``large``: the first N photos upscaled to 3000 px on the longer side and re-encoded as JPEG
  (quality 90) in memory, as large web images are.

Each path is timed over the whole set R times (interleaved); the best pass counts. With the
``algorithms`` keyword (see ``digest_bytes``), ``digest_pdq_only`` is the rate when only lists
of exact hashes and PDQ are loaded. Per-step costs of the digest path (milliseconds per image,
best pass; skipped with ``--no-steps``) come from running its steps separately: decode,
border detection, PDQ (eight dihedral hashes), pHash (eight dihedral hashes), checksums.
Prints one JSON object on stdout, progress on stderr. Images are held in memory only.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
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
from matchers.digest import digest_bytes  # noqa: E402

PHOTOS = REPO_ROOT.parent / "shared" / "data" / "photos"
LARGE_SIDE = 3000
LARGE_QUALITY = 90
XGA_SIZE = (1024, 768)
#: What the digest path must reach against the naive one (issue 13), per set.
TARGET_RATIOS = {"photos": 1.2, "xga": 4.0}
PDQ_ONLY = ("md5", "sha1", "sha256", "pdq")
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


def load_photos(limit: int | None = None, directory: Path = PHOTOS) -> tuple[str, list[bytes]]:
    """(source, encoded benign images): the shared photos, skimage.data, or textures."""
    if directory.is_dir():
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in {".jpeg", ".jpg"})
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


def xga(data: bytes) -> bytes:
    """The photo scaled to cover XGA_SIZE and centre-cropped to it, as JPEG."""
    image = decode_rgb(data)
    scale = max(XGA_SIZE[0] / image.width, XGA_SIZE[1] / image.height)
    size = (
        max(XGA_SIZE[0], round(image.width * scale)),
        max(XGA_SIZE[1], round(image.height * scale)),
    )
    scaled = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - XGA_SIZE[0]) // 2, (size[1] - XGA_SIZE[1]) // 2
    return jpeg_bytes(scaled.crop((left, top, left + XGA_SIZE[0], top + XGA_SIZE[1])))


def checksums(data: bytes) -> None:
    hashlib.md5(data, usedforsecurity=False).hexdigest()
    hashlib.sha1(data, usedforsecurity=False).hexdigest()
    hashlib.sha256(data).hexdigest()


def naive(data: bytes) -> None:
    checksums(data)
    rgb = decode_rgb(data)
    pdqhash.compute(np.asarray(rgb))
    str(imagehash.phash(rgb))


def digest_pdq_only(data: bytes) -> None:
    digest_bytes(data, algorithms=PDQ_ONLY)  # type: ignore[call-arg]


def supports_algorithms() -> bool:
    return "algorithms" in inspect.signature(digest_bytes).parameters


def best_pass(func: Callable[[bytes], object], images: list[bytes], repeat: int) -> float:
    """Best wall time (s) of ``repeat`` passes of ``func`` over ``images``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for data in images:
            func(data)
        best = min(best, time.perf_counter() - start)
    return best


def step_costs(images: list[bytes], repeat: int) -> dict[str, float]:
    """Milliseconds per image of each step of the digest path, best of ``repeat`` passes."""
    from matchers.digest import decode_image  # noqa: PLC0415
    from matchers.imageops import border_box_array, luma_array, phash_dihedral_luma  # noqa: PLC0415
    from matchers.pdq import pdq_hashes  # noqa: PLC0415

    decoded = [decode_image(d) for d in images]
    arrays = [luma_array(d.luma) for d in decoded]
    boxes = [border_box_array(a) for a in arrays]
    crops = [
        a if box is None else a[box[1] : box[3], box[0] : box[2]]
        for a, box in zip(arrays, boxes, strict=True)
    ]

    def per_image(func: Callable[[int], object]) -> float:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            for index in range(len(images)):
                func(index)
            best = min(best, time.perf_counter() - start)
        return round(1000 * best / len(images), 3)

    return {
        "checksums": per_image(lambda i: checksums(images[i])),
        "decode": per_image(lambda i: decode_image(images[i])),
        "borders": per_image(lambda i: border_box_array(arrays[i])),
        "pdq_dihedral": per_image(lambda i: pdq_hashes(crops[i])),
        "phash_dihedral": per_image(lambda i: phash_dihedral_luma(decoded[i].luma, boxes[i])),
    }


def measure(name: str, images: list[bytes], repeat: int, steps: bool) -> dict[str, object]:
    print(f"{name}: {len(images)} images", file=sys.stderr)
    paths: dict[str, Callable[[bytes], object]] = {"naive": naive, "digest": digest_bytes}
    if supports_algorithms():
        paths["digest_pdq_only"] = digest_pdq_only
    seconds = dict.fromkeys(paths, float("inf"))
    for _ in range(repeat):  # interleaved, so drift in machine load hits every path
        for path, func in paths.items():
            seconds[path] = min(seconds[path], best_pass(func, images, 1))
    sizes = [decode_rgb(d).size for d in images]
    result: dict[str, object] = {
        "images": len(images),
        "mean_bytes": round(sum(map(len, images)) / len(images)),
        "mean_pixels": round(sum(w * h for w, h in sizes) / len(sizes)),
    }
    for path, spent in seconds.items():
        result[f"{path}_ms_per_image"] = round(1000 * spent / len(images), 3)
        result[f"{path}_images_per_s"] = round(len(images) / spent, 1)
    result["ratio"] = round(seconds["naive"] / seconds["digest"], 2)
    if "digest_pdq_only" in seconds:
        result["ratio_pdq_only"] = round(seconds["naive"] / seconds["digest_pdq_only"], 2)
    if steps:
        result["digest_steps_ms_per_image"] = step_costs(images, repeat)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=20, help="images in the large set")
    parser.add_argument("--repeat", type=int, default=3, help="passes per path (best counts)")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="benign photo directory")
    parser.add_argument("--no-steps", action="store_true", help="skip the per-step costs")
    args = parser.parse_args()
    source, photos = load_photos(directory=args.photos)
    print("building the 1024x768 and large images in memory", file=sys.stderr)
    sets = {
        "photos": photos,
        "xga": [xga(data) for data in photos],
        "large": [upscaled(data) for data in photos[: args.large]],
    }
    report = {
        "source": source,
        "threads": 1,
        "pdq_min_decode_side": PDQ_MIN_DECODE_SIDE,
        "python": platform.python_version(),
        "target_ratios": TARGET_RATIOS,
        "sets": {
            name: measure(name, images, args.repeat, not args.no_steps)
            for name, images in sets.items()
        },
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
