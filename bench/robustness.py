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

``rules`` compares the match rules end to end, through the real ``Matcher``: one list entry
per photo (its PDQ and pHash under one id, as ``hotline hashes build`` stores them), queried
with every copy. Per rule and transform: the share of copies confirmed for their own entry and
the share confirmed or sent to review; over every query (originals and copies) against the
*other* photos' entries: confirmed and review false positives. ``corroboration_estimate``
extrapolates to a 10 M-entry list: the unrelated pairs' canonical PDQ and pHash distances, a
normal fit of each, their correlation, and the expected false corroborations per million
images (both review radii met by chance) under a bivariate normal with the measured
correlation (computed by numerical integration), next to the empirical count.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

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
from matchers.alternates import DEFAULT_FRAMINGS, alternate_hashes  # noqa: E402
from matchers.digest import ImageDigest, digest_bytes  # noqa: E402
from matchers.index import CONFIRMED, Matcher  # noqa: E402
from matchers.lists import HashList, ListEntry, Thresholds  # noqa: E402

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


def corner_crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    """Remove ``fraction`` of the width from the left and of the height from the top."""

    def transform(image: Image.Image) -> Image.Image:
        dx, dy = round(image.width * fraction), round(image.height * fraction)
        return image.crop((dx, dy, image.width, image.height))

    return transform


def letterbox(image: Image.Image) -> Image.Image:
    bar = round(image.height * LETTERBOX_FRACTION)
    return ImageOps.expand(image, border=(0, bar, 0, bar), fill=(0, 0, 0))


def watermark(scale: float = 1.0) -> Callable[[Image.Image], Image.Image]:
    """A semi-opaque logo block in a corner and a line of text across the lower third;
    ``scale`` sizes both (1: a logo a sixth of the width, text a twelfth of the height)."""

    def transform(image: Image.Image) -> Image.Image:
        marked = image.convert("RGBA")
        layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        side = max(16, round(image.width * scale / 6))
        draw.rounded_rectangle(
            (8, 8, 8 + side, 8 + side // 2), radius=side // 8, fill=(255, 255, 255, 170)
        )
        font = ImageFont.load_default(size=max(12, round(image.height * scale / 12)))
        draw.text(
            (image.width // 10, image.height * 2 // 3),
            "example.org  sample",
            font=font,
            fill=(255, 255, 255, 190),
        )
        return Image.alpha_composite(marked, layer).convert("RGB")

    return transform


def rotate(degrees: float) -> Callable[[Image.Image], Image.Image]:
    def transform(image: Image.Image) -> Image.Image:
        return image.rotate(degrees, resample=Image.Resampling.BICUBIC)

    return transform


def reupload(image: Image.Image) -> Image.Image:
    """What a re-uploader does in one go: scaled to 3/4, cropped 5 % (encoded at q75 after)."""
    smaller = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    return crop(0.05)(smaller)


def thumbnail(image: Image.Image) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return copy


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


TRANSFORMS: dict[str, tuple[Callable[[Image.Image], Image.Image], int]] = {
    "reencode_q50": (lambda image: image, 50),
    "resize_0.5": (half, COPY_QUALITY),
    "crop_2pct": (crop(0.02), COPY_QUALITY),
    "crop_5pct": (crop(0.05), COPY_QUALITY),
    "crop_10pct": (crop(0.10), COPY_QUALITY),
    "crop_15pct": (crop(0.15), COPY_QUALITY),
    "crop_10pct_corner": (corner_crop(0.10), COPY_QUALITY),
    "border_letterbox": (letterbox, COPY_QUALITY),
    "watermark": (watermark(), COPY_QUALITY),
    "watermark_large": (watermark(2.0), COPY_QUALITY),
    "grayscale": (lambda image: image.convert("L").convert("RGB"), COPY_QUALITY),
    "mirror": (lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), COPY_QUALITY),
    "rotate_90": (lambda image: image.transpose(Image.Transpose.ROTATE_90), COPY_QUALITY),
    "rotate_2deg": (rotate(2), COPY_QUALITY),
    "rotate_5deg": (rotate(5), COPY_QUALITY),
    "rotate_10deg": (rotate(10), COPY_QUALITY),
    "thumbnail_160": (thumbnail, 85),
    "reupload": (reupload, 75),
}
#: The match rules compared end to end (see the module docstring): thresholds, and the
#: alternate framings stored with each entry (``matchers.alternates``).
RULES: dict[str, tuple[Thresholds, tuple[str, ...]]] = {
    "today": (Thresholds(), ()),
    "corroboration": (Thresholds(corroborate=True), ()),
    "alternates_c90": (Thresholds(), ("centre-90",)),
    "alternates_c90_c80": (Thresholds(), ("centre-90", "centre-80")),
    "alternates_c95_c90_c80": (Thresholds(), ("centre-95", "centre-90", "centre-80")),
    "alternates_c90_corners": (
        Thresholds(),
        ("centre-90", "top-left-90", "top-right-90", "bottom-left-90", "bottom-right-90"),
    ),
    "alternates_default": (Thresholds(), DEFAULT_FRAMINGS),
    "both_default": (Thresholds(corroborate=True), DEFAULT_FRAMINGS),
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


def compare_rules(
    photos: list[bytes], originals: list[ImageDigest], copies: dict[str, list[ImageDigest]]
) -> dict[str, object]:
    """Recall per transform and false positives over all queries, per rule (see the module
    docstring); entry ``p<i>`` is photo ``i``."""
    own = [
        {(algorithm, getattr(digest, algorithm)) for algorithm in ("pdq", "phash")}
        for digest in originals
    ]
    queries = {"original": originals, **copies}
    out: dict[str, object] = {}
    for rule, (thresholds, framings) in RULES.items():
        rows = [
            ListEntry(algorithm, value, f"p{i}")
            for i, data in enumerate(photos)
            for algorithm, value in sorted(
                own[i] | set(alternate_hashes(data, framings) if framings else ())
            )
            if value
        ]
        matcher = Matcher([HashList("photos", rows, thresholds)])
        recall: dict[str, object] = {}
        false_confirmed = false_review = queried = 0
        for name, digests in queries.items():
            confirmed = reviewed = corroborated = 0
            for i, digest in enumerate(digests):
                queried += 1
                for match in matcher.match(digest):
                    if match.entry != f"p{i}":
                        if match.verdict == CONFIRMED:
                            false_confirmed += 1
                        else:
                            false_review += 1
                    elif match.verdict == CONFIRMED:
                        confirmed += 1
                        corroborated += match.corroborated_by is not None
                    else:
                        reviewed += 1
            if name != "original":
                recall[name] = {
                    "confirm": round(confirmed / len(digests), 3),
                    "confirm_or_review": round((confirmed + reviewed) / len(digests), 3),
                    "corroborated": round(corroborated / len(digests), 3),
                }
        out[rule] = {
            "framings": list(framings),
            "list_rows": len(rows),
            "recall": recall,
            "unrelated_pairs": queried * (len(originals) - 1),
            "false_confirmed": false_confirmed,
            "false_review": false_review,
        }
    return out


def corroboration_estimate(originals: list[ImageDigest]) -> dict[str, object]:
    """Expected false corroborations (both review radii met by unrelated images) per million
    images against a 10 M-entry list, from the unrelated pairs' canonical distances."""
    pdq = [d.pdq for d in originals if d.pdq and d.phash]
    phash = [d.phash for d in originals if d.pdq and d.phash]
    off_diagonal = ~np.eye(len(pdq), dtype=bool)
    p = distance_matrix(pdq, pdq)[off_diagonal].astype(float)
    h = distance_matrix(phash, phash)[off_diagonal].astype(float)
    rho = float(np.corrcoef(p, h)[0, 1])
    pdq_fit = NormalDist(float(p.mean()), float(p.std()))
    phash_fit = NormalDist(float(h.mean()), float(h.std()))
    pdq_radius, phash_radius = PDQ_REVIEW_THRESHOLD, PHASH_REVIEW_THRESHOLD
    # Continuity-corrected standardised radii.
    a = (pdq_radius + 0.5 - pdq_fit.mean) / pdq_fit.stdev
    b = (phash_radius + 0.5 - phash_fit.mean) / phash_fit.stdev
    joint = bivariate_normal_cdf(a, b, rho)
    per_image = joint * LIST_ENTRIES
    return {
        "pairs": int(p.size),
        "pdq": {"mean": round(pdq_fit.mean, 2), "sd": round(pdq_fit.stdev, 2), "min": int(p.min())},
        "phash": {
            "mean": round(phash_fit.mean, 2),
            "sd": round(phash_fit.stdev, 2),
            "min": int(h.min()),
        },
        "correlation": round(rho, 3),
        "radii": {"pdq": pdq_radius, "phash": phash_radius},
        "empirical_joint_pairs": int(((p <= pdq_radius) & (h <= phash_radius)).sum()),
        "fitted_pdq_tail": float(f"{normal_cdf(a):.3g}"),
        "fitted_phash_tail": float(f"{normal_cdf(b):.3g}"),
        "fitted_joint_per_pair": float(f"{joint:.3g}"),
        "expected_false_corroborations_per_million_images_at_10M_entries": float(
            f"{per_image * 1e6:.3g}"
        ),
    }


def normal_cdf(z: float) -> float:
    """The standard normal CDF, accurate far into the lower tail (erfc, not 1 + erf)."""
    return 0.5 * math.erfc(-z / math.sqrt(2))


def bivariate_normal_cdf(a: float, b: float, rho: float, steps: int = 20_000) -> float:
    """P(X <= a, Y <= b) for standard normals with correlation ``rho``: the integral over
    x <= a of phi(x) * Phi((b - rho x) / sqrt(1 - rho^2)), by the trapezoid rule in log space
    far into the tail (the values are far below float's step near 1)."""
    spread = math.sqrt(1 - rho * rho)
    low = a - 12.0
    xs = np.linspace(low, a, steps)
    log_terms = np.array(
        [
            -0.5 * x * x
            - 0.5 * math.log(2 * math.pi)
            + math.log(max(normal_cdf((b - rho * x) / spread), 1e-300))
            for x in xs
        ]
    )
    peak = float(log_terms.max())
    area = float(np.trapezoid(np.exp(log_terms - peak), xs))
    return math.exp(peak) * area


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
    all_copies: dict[str, list[ImageDigest]] = {}
    for name, (transform, quality) in TRANSFORMS.items():
        print(f"transform {name}", file=sys.stderr)
        copies = [digest_bytes(jpeg_bytes(transform(p), quality)) for p in pictures]
        all_copies[name] = copies
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
    report["rules"] = compare_rules(photos, originals, all_copies)
    report["corroboration_estimate"] = corroboration_estimate(originals)
    report["current_thresholds"] = {
        family: {"confirm": c, "review": r} for family, (c, r) in CURRENT.items()
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
