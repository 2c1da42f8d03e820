"""Alternate framings of a reference image: the hashes a cropped copy of it would have.

Re-uploaders crop. A copy cropped by 10 % is out of reach of the reference's own PDQ and pHash
(``bench/robustness.py``: 12 % confirmed), but close to the hashes of the reference cropped the
same way. ``hotline hashes build`` therefore stores, under each reference's entry id, the
canonical PDQ and pHash of a few standard re-framings (:data:`DEFAULT_FRAMINGS`): a cropped
copy meets a hash of its own framing, and the match is the entry's (one match, one notice).

Framings are cut from the luma picture at hashing scale (what :func:`matchers.digest.
decode_image` gives), then hashed as any image is (borders trimmed, canonical hash only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from matchers.algorithms import PDQ_MIN_QUALITY
from matchers.digest import DecodedImage, decode_image, perceptual_hashes

__all__ = ["DEFAULT_FRAMINGS", "FRAMINGS", "alternate_hashes"]

#: Named framings: (left, top, right, bottom) of the kept part, as fractions of the picture.
FRAMINGS: Final[dict[str, tuple[float, float, float, float]]] = {
    "centre-95": (0.025, 0.025, 0.975, 0.975),
    "centre-90": (0.05, 0.05, 0.95, 0.95),
    "centre-85": (0.075, 0.075, 0.925, 0.925),
    "centre-80": (0.10, 0.10, 0.90, 0.90),
    "top-left-90": (0.0, 0.0, 0.90, 0.90),
    "top-right-90": (0.10, 0.0, 1.0, 0.90),
    "bottom-left-90": (0.0, 0.10, 0.90, 1.0),
    "bottom-right-90": (0.10, 0.10, 1.0, 1.0),
}
#: The framings ``hashes build`` stores by default (chosen with ``bench/robustness.py``; see
#: the README for the figures).
DEFAULT_FRAMINGS: Final = ("centre-95", "centre-90")


def alternate_hashes(
    data: bytes,
    framings: Sequence[str] = DEFAULT_FRAMINGS,
    *,
    min_quality: int = PDQ_MIN_QUALITY,
) -> list[tuple[str, str]]:
    """``(algorithm, hash)`` of each framing of the image ``data``: its canonical pHash, and
    its PDQ when the PDQ's quality reaches ``min_quality``; in framing order, each hash once.

    Raises what :func:`matchers.digest.decode_image` raises (the caller has hashed the image
    already, so it decodes).

    Raises:
        KeyError: a framing not in :data:`FRAMINGS`.
    """
    boxes = [FRAMINGS[name] for name in framings]
    picture = decode_image(data).luma
    width, height = picture.size
    found: dict[tuple[str, str], None] = {}
    for left, top, right, bottom in boxes:
        part = picture.crop(
            (round(left * width), round(top * height), round(right * width), round(bottom * height))
        )
        decoded = DecodedImage(luma=part, width=part.width, height=part.height, frames=1)
        pdq, quality, phash = perceptual_hashes(decoded)
        if pdq and (quality or 0) >= min_quality:
            found[("pdq", pdq[0])] = None
        if phash:
            found[("phash", phash[0])] = None
    return list(found)
