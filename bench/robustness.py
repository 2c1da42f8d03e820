"""Recall and false positives of PDQ and pHash, with and without variants, per transform.

Run from the repository root::

    .venv/bin/python bench/robustness.py [--limit N] > robustness.json

Over the benign photo set (``../shared/data/photos``; else scikit-image's sample images; else
generated textures; see ``bench/hashing.py``), held in memory only:

- the *list* holds the canonical hashes ``digest_bytes`` gives each original photo (what
  ``hotline hashes compute`` records);
- each transform (re-encode, resize, crop, border, watermark, grayscale, mirror, rotation,
  thumbnail) makes a copy in memory, encoded as JPEG (quality 90 unless the transform is the
  encoding), and the copy is hashed with ``digest_bytes``;
- per algorithm the distance of a copy to its original's list hash is the minimum over the
  hashes queried: ``pdq``/``phash`` the canonical hash only, ``pdq_variants``/``phash_variants``
  every variant (what the Matcher queries);
- unrelated pairs are every ordered pair of different photos (list hash of one, query hashes of
  the other, minimum over the hashes queried), so their false-positive rate includes the extra
  chances the variants give.

Reports per transform x algorithm the distance distribution and recall at the current
confirm/review thresholds and at a sweep; per algorithm the unrelated-pair distribution and
false-positive rate per threshold, with a binomial estimate of the false-positive rate per
list entry (independent fair bits) for comparison; and a threshold recommendation.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from hashing import decode_rgb, jpeg_bytes, load_photos  # noqa: E402

from matchers.algorithms import (  # noqa: E402
    PDQ_CONFIRM_THRESHOLD,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.digest import ImageDigest, digest_bytes  # noqa: E402

COPY_QUALITY = 90
THUMBNAIL_SIDE = 160
LETTERBOX_FRACTION = 0.125  # bars of 1/8 of the height above and below
#: List entries a false-positive estimate is scaled to (the issue's 10 M entries).
LIST_ENTRIES = 10_000_000
SWEEP = {
    "pdq": [16, 24, 31, 36, 40, 45, 50, 56, 64, 70],
    "phash": [2, 4, 5, 6, 7, 8, 10, 12, 14, 16],
}
CURRENT = {
    "pdq": (PDQ_CONFIRM_THRESHOLD, PDQ_REVIEW_THRESHOLD),
    "phash": (PHASH_CONFIRM_THRESHOLD, PHASH_REVIEW_THRESHOLD),
}
BITS = {"pdq": 256, "phash": 64}
ALGORITHMS = ("pdq", "pdq_variants", "phash", "phash_variants")


def crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    """Remove ``fraction`` of the width and of the height, half on each side."""

    def transform(image: Image.Image) -> Image.Image:
        dx, dy = round(image.width * fraction / 2), round(image.height * fraction / 2)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    return transform


def letterbox(image: Image.Image) -> Image.Image:
    bar = round(image.height * LETTERBOX_FRACTION)
    return ImageOps.expand(image, border=(0, bar, 0, bar), fill=(0, 0, 0))


def watermark(image: Image.Image) -> Image.Image:
    """A semi-opaque logo block in a corner and a line of text across the lower third."""
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    side = max(16, image.width // 6)
    draw.rounded_rectangle(
        (8, 8, 8 + side, 8 + side // 2), radius=side // 8, fill=(255, 255, 255, 170)
    )
    font = ImageFont.load_default(size=max(12, image.height // 12))
    draw.text(
        (image.width // 10, image.height * 2 // 3),
        "example.org  sample",
        font=font,
        fill=(255, 255, 255, 190),
    )
    return Image.alpha_composite(marked, layer).convert("RGB")


def thumbnail(image: Image.Image) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return copy


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


TRANSFORMS: dict[str, tuple[Callable[[Image.Image], Image.Image], int]] = {
    "reencode_q50": (lambda image: image, 50),
    "resize_0.5": (half, COPY_QUALITY),
    "crop_5pct": (crop(0.05), COPY_QUALITY),
    "crop_10pct": (crop(0.10), COPY_QUALITY),
    "border_letterbox": (letterbox, COPY_QUALITY),
    "watermark": (watermark, COPY_QUALITY),
    "grayscale": (lambda image: image.convert("L").convert("RGB"), COPY_QUALITY),
    "mirror": (lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), COPY_QUALITY),
    "rotate_90": (lambda image: image.transpose(Image.Transpose.ROTATE_90), COPY_QUALITY),
    "rotate_5deg": (
        lambda image: image.rotate(5, resample=Image.Resampling.BICUBIC),
        COPY_QUALITY,
    ),
    "thumbnail_160": (thumbnail, 85),
}


def hashes_of(digest: ImageDigest, algorithm: str) -> tuple[str, ...]:
    if algorithm == "pdq":
        return (digest.pdq,) if digest.pdq else ()
    if algorithm == "phash":
        return (digest.phash,) if digest.phash else ()
    return digest.pdq_variants if algorithm == "pdq_variants" else digest.phash_variants


def bits(hexes: list[str]) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8)).reshape(
        len(hexes), -1
    )


def distance_matrix(a: list[str], b: list[str]) -> np.ndarray:
    """Hamming distances, len(a) x len(b)."""
    x = bits(a).astype(np.int32)
    y = bits(b).astype(np.int32)
    return x @ (1 - y).T + (1 - x) @ y.T


def summary(distances: np.ndarray) -> dict[str, float]:
    return {
        "min": int(distances.min()),
        "p05": float(np.percentile(distances, 5)),
        "p50": float(np.percentile(distances, 50)),
        "p95": float(np.percentile(distances, 95)),
        "max": int(distances.max()),
        "mean": round(float(distances.mean()), 2),
    }


def binomial_tail(bits_total: int, threshold: int) -> float:
    """P(distance <= threshold) for two independent uniformly random hashes."""
    return sum(math.comb(bits_total, k) for k in range(threshold + 1)) / 2.0**bits_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="photos to use (default all)")
    args = parser.parse_args()
    source, photos = load_photos(args.limit)
    print(f"{len(photos)} photos from {source}", file=sys.stderr)
    originals = [digest_bytes(data) for data in photos]
    pictures = [decode_rgb(data) for data in photos]
    listed = {family: [getattr(d, family) for d in originals] for family in ("pdq", "phash")}

    report: dict[str, object] = {"source": source, "photos": len(photos), "transforms": {}}
    transforms: dict[str, object] = {}
    for name, (transform, quality) in TRANSFORMS.items():
        print(f"transform {name}", file=sys.stderr)
        copies = [digest_bytes(jpeg_bytes(transform(p), quality)) for p in pictures]
        per_algorithm: dict[str, object] = {}
        for algorithm in ALGORITHMS:
            family = algorithm.split("_")[0]
            confirm, review = CURRENT[family]
            distances = np.array(
                [
                    distance_matrix([listed[family][i]], list(hashes_of(copy, algorithm))).min()
                    for i, copy in enumerate(copies)
                ]
            )
            per_algorithm[algorithm] = {
                "distance": summary(distances),
                "recall_confirm": round(float((distances <= confirm).mean()), 3),
                "recall_review": round(float((distances <= review).mean()), 3),
                "recall_sweep": {
                    str(t): round(float((distances <= t).mean()), 3) for t in SWEEP[family]
                },
            }
        transforms[name] = per_algorithm
    report["transforms"] = transforms

    unrelated: dict[str, object] = {}
    for algorithm in ALGORITHMS:
        family = algorithm.split("_")[0]
        query_hashes = [list(hashes_of(d, algorithm)) for d in originals]
        owners = np.repeat(np.arange(len(originals)), [len(q) for q in query_hashes])
        matrix = distance_matrix(listed[family], [h for q in query_hashes for h in q])
        nearest = np.full((len(originals), len(originals)), 10**6)
        for column, owner in enumerate(owners):
            nearest[:, owner] = np.minimum(nearest[:, owner], matrix[:, column])
        pairs = nearest[~np.eye(len(originals), dtype=bool)]
        queries = float(np.mean([len(q) for q in query_hashes]))
        unrelated[algorithm] = {
            "pairs": int(pairs.size),
            "mean_hashes_queried": round(queries, 2),
            "distance": summary(pairs),
            "fp_rate_sweep": {str(t): round(float((pairs <= t).mean()), 6) for t in SWEEP[family]},
            "binomial_fp_per_image_at_10M_entries": {
                str(t): float(f"{binomial_tail(BITS[family], t) * queries * LIST_ENTRIES:.3g}")
                for t in SWEEP[family]
            },
        }
    report["unrelated"] = unrelated
    report["current_thresholds"] = {
        family: {"confirm": c, "review": r} for family, (c, r) in CURRENT.items()
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
