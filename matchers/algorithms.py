"""Hash algorithms, their text form and every threshold and size as one named constant.

A hash is a value with exactly one text form: lowercase hexadecimal, as written in hash-list
CSV files, Redis and notices. :func:`normalize_hash` is the single gate every hash passes.
"""

from __future__ import annotations

from typing import Final

from matchers.errors import InvalidHash

__all__ = [
    "ALGORITHMS",
    "ANIMATION_MAX_FRAMES_COUNTED",
    "ANIMATION_MAX_FRAMES_INSPECTED",
    "ANIMATION_MAX_HASHED_FRAMES",
    "ANIMATION_PIXEL_BUDGET",
    "BITS",
    "EXACT_ALGORITHMS",
    "HEX_LENGTHS",
    "MAX_IMAGE_PIXELS",
    "PDQ_CONFIRM_THRESHOLD",
    "PDQ_MIN_DECODE_SIDE",
    "PDQ_MIN_QUALITY",
    "PDQ_REVIEW_THRESHOLD",
    "PERCEPTUAL_ALGORITHMS",
    "PERCEPTUAL_MAX_SIDE",
    "PHASH_CONFIRM_THRESHOLD",
    "PHASH_REDUCING_GAP",
    "PHASH_REVIEW_THRESHOLD",
    "TRIM_MAX_FRACTION",
    "TRIM_MIN_BAND",
    "TRIM_MIN_SIDE",
    "TRIM_TOLERANCE",
    "TRIM_UNIFORM_FRACTION",
    "hamming",
    "normalize_hash",
]

ALGORITHMS: Final = ("md5", "sha1", "sha256", "pdq", "phash")
EXACT_ALGORITHMS: Final = ("md5", "sha1", "sha256")
PERCEPTUAL_ALGORITHMS: Final = ("pdq", "phash")
HEX_LENGTHS: Final[dict[str, int]] = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "phash": 16}
#: Bit length of every algorithm (4 bits per hex character).
BITS: Final[dict[str, int]] = {name: 4 * length for name, length in HEX_LENGTHS.items()}

#: PDQ distance at or below which a match is confirmed (Meta's PDQ_CONFIDENT_MATCH_THRESHOLD).
PDQ_CONFIRM_THRESHOLD: Final = 31
#: PDQ distance at or below which a near miss goes to analyst review.
PDQ_REVIEW_THRESHOLD: Final = 50
#: PDQ hashes with a lower quality score (0-100) are too weak to match perceptually.
PDQ_MIN_QUALITY: Final = 50
#: pHash (64-bit) distance at or below which a match is confirmed. Chosen from
#: bench/robustness.py over 141 photos: with dihedral variants, unrelated photos came as close
#: as 14 bits, and against a list of millions of 64-bit hashes a looser threshold would send
#: notices for chance matches; at 6, resize, re-encode, mirror, rotation and thumbnails are
#: still all confirmed, and a 5 % crop 75 % of the time (99 % within review).
PHASH_CONFIRM_THRESHOLD: Final = 6
#: pHash distance at or below which a near miss goes to analyst review.
PHASH_REVIEW_THRESHOLD: Final = 10
#: Decompression-bomb limit: images whose header announces more pixels are not decoded.
MAX_IMAGE_PIXELS: Final = 50_000_000
#: Images are hashed at reduced scale, the shorter side kept at least this many pixels: JPEGs
#: are decoded with ``draft`` (1/2, 1/4, 1/8 in the DCT domain), other formats reduced by an
#: integer factor (``Image.reduce``). Against full-resolution ``pdqhash`` (bench/README.md):
#: photos upscaled to 3000 px max 8 bits (512: 10, 320: 12), textures up to 3000 px max 8
#: (320: 14); 800 gains 2 bits. Smaller images are hashed at their own size.
PDQ_MIN_DECODE_SIDE: Final = 640
#: The longer side is capped at this after reduction (only panoramas wider than 3.2:1 reach it).
PERCEPTUAL_MAX_SIDE: Final = 2048
#: pHash's 32x32 Lanczos reduction first reduces by an integer factor per axis (a box
#: average) while at least this many times 32 pixels remain (Pillow's ``reducing_gap``), so
#: pictures below 512 px are resized exactly as ``imagehash.phash`` does. Measured against
#: ``imagehash.phash`` over the 141 benign photos (~500 px) / the same cropped to 1024x768:
#: exact resize 0 bits, 1.4 / 4.4 ms; gap 8: max 2 bits, 1 / 4 photos differ, 1.0 / 1.2 ms;
#: gap 3: max 2 bits, 4 / 8 photos differ, 0.4 / 0.5 ms, but cost 1.4 points of pHash recall
#: on 10 %-cropped copies in bench/robustness.py (gap 8: none).
PHASH_REDUCING_GAP: Final = 8.0

#: Border trimming: a uniform band on any side is cut off before perceptual hashing, but never
#: more than this fraction of the side ...
TRIM_MAX_FRACTION: Final = 0.3
#: ... nor so that fewer than this many pixels remain (at hashing scale) ...
TRIM_MIN_SIDE: Final = 32
#: ... and only when the band is at least this many pixels wide (at hashing scale).
TRIM_MIN_BAND: Final = 2
#: A line belongs to a band when this fraction of its pixels is within ``TRIM_TOLERANCE`` luma
#: levels (0-255) of the outermost line's median. JPEG noise in flat bars stays well below 8;
#: 16 already trims smooth generated textures, 8 trims none of 149 (but does trim flat sky and
#: studio backgrounds in 21 of 141 photos, which is why the untrimmed hash stays a variant).
TRIM_UNIFORM_FRACTION: Final = 0.98
TRIM_TOLERANCE: Final = 8

#: Animated images (GIF, APNG, animated WebP): at most this many frames are hashed, spread
#: evenly over the frames inspected; the first frame is the canonical one.
ANIMATION_MAX_HASHED_FRAMES: Final = 8
#: Frames are decoded in sequence (GIF frames build on each other), so at most this many are
#: decoded per image ...
ANIMATION_MAX_FRAMES_INSPECTED: Final = 64
#: ... and at most this many pixels in total (a 4000x4000 GIF gets 2 frames inspected).
ANIMATION_PIXEL_BUDGET: Final = 32_000_000
#: GIF frame counting (a scan of the block structure, no decoding) stops here.
ANIMATION_MAX_FRAMES_COUNTED: Final = 10_000

_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_UPPER_HEX_DIGITS: Final = frozenset("ABCDEF")


def normalize_hash(algorithm: str, text: str, *, lenient: bool = False) -> str:
    """Return ``text`` as the canonical lowercase hex form of an ``algorithm`` hash.

    Surrounding whitespace is accepted. Uppercase hex is refused (the list format says
    lowercase) unless ``lenient`` is true, in which case it is lowercased.

    Raises:
        InvalidHash: unknown algorithm, empty text, non-hex characters, uppercase hex (strict
            mode) or the wrong number of characters.
    """
    if algorithm not in HEX_LENGTHS:
        expected = ", ".join(ALGORITHMS)
        raise InvalidHash(f"unknown algorithm {algorithm!r}, expected one of: {expected}")
    value = text.strip()
    if not value:
        raise InvalidHash(f"empty hash for {algorithm}")
    if lenient:
        value = value.lower()
    chars = set(value)
    if not chars <= _HEX_DIGITS:
        if chars <= _HEX_DIGITS | _UPPER_HEX_DIGITS:
            raise InvalidHash(f"{algorithm} hash must be lowercase hex")
        bad = "".join(sorted(chars - _HEX_DIGITS - _UPPER_HEX_DIGITS))
        raise InvalidHash(f"{algorithm} hash is not hex (unexpected characters {bad!r})")
    expected_length = HEX_LENGTHS[algorithm]
    if len(value) != expected_length:
        raise InvalidHash(
            f"expected {expected_length} lowercase hex characters for {algorithm}, got {len(value)}"
        )
    return value


def hamming(a_hex: str, b_hex: str) -> int:
    """Hamming distance between two hex hashes of the same length.

    Raises:
        InvalidHash: the lengths differ or a text is not hex.
    """
    if len(a_hex) != len(b_hex):
        raise InvalidHash(f"cannot compare hashes of {len(a_hex)} and {len(b_hex)} hex characters")
    try:
        return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()
    except ValueError:
        raise InvalidHash("hamming distance needs hex strings") from None
