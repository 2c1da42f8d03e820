"""Pixel-level helpers for perceptual hashing: reduction, border trimming, dihedral hashes.

Everything here works on decoded :class:`PIL.Image.Image` objects held in memory; nothing is
written anywhere. :mod:`matchers.digest` does the (defensive) decoding and calls these.

Dihedral order. :data:`DIHEDRAL_ORDER` names the eight transforms in the order of
``pdqhash.compute_dihedral`` (measured against ``pdqhash.compute`` of the transformed pixels):
original, rotated 90° counter-clockwise (``np.rot90``), 180°, 90° clockwise, flipped top-bottom,
flipped left-right, transposed, anti-transposed. :func:`phash_dihedral` uses the same order.
Element ``i`` is the hash of the picture after transform ``i``, so a list entry of an original
is near element ``i`` of a copy that was transformed by the inverse of transform ``i``.

pHash is computed as ``imagehash.phash`` (grayscale, Lanczos to 32x32, 2-D DCT-II, top-left
8x8 block against its median, row-major bits, most significant first), but the DCT is one 8x32
matrix product per axis, and the eight dihedral hashes come from that one 8x8 block: flipping
the pixels negates the odd-frequency coefficients of that axis, transposing them transposes
the block (resizing commutes with flips and transposes). :func:`phash_one` is bit for bit
``imagehash.phash``; the digest path (:func:`phash_dihedral_luma`) reaches 32x32 of a large
picture through an integer ``reduce`` first (see
:data:`~matchers.algorithms.PHASH_REDUCING_GAP`), measured within 2 bits of it at a quarter
of the cost on a 1024x768 picture.

PDQ is :mod:`matchers.pdq` (numpy, pinned to ``pdqhash``); :func:`pdq_one` and
:func:`pdq_dihedral` take an RGB picture and compute luma as ``pdqhash`` does.

Border detection (:func:`border_box_array`) reads only the lines it needs from the luma array:
the two outermost lines of each side decide for a borderless picture.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from matchers.algorithms import (
    PDQ_MIN_DECODE_SIDE,
    PERCEPTUAL_MAX_SIDE,
    PHASH_REDUCING_GAP,
    TRIM_MAX_FRACTION,
    TRIM_MIN_BAND,
    TRIM_MIN_SIDE,
    TRIM_TOLERANCE,
    TRIM_UNIFORM_FRACTION,
)
from matchers.pdq import dihedral_blocks, pdq_hashes

__all__ = [
    "DIHEDRAL_ORDER",
    "border_box",
    "border_box_array",
    "draft_size",
    "frame_schedule",
    "gif_frame_count",
    "luma_array",
    "pdq_bits_to_hex",
    "pdq_dihedral",
    "pdq_hex_to_bits",
    "pdq_one",
    "phash_dihedral",
    "phash_dihedral_luma",
    "phash_luma",
    "phash_one",
    "reduction_factor",
    "trim_borders",
]

DIHEDRAL_ORDER: Final = (
    "original",
    "rotate90_ccw",
    "rotate180",
    "rotate90_cw",
    "flip_top_bottom",
    "flip_left_right",
    "transpose",
    "antitranspose",
)

Gray = npt.NDArray[np.float64]
Box = tuple[int, int, int, int]

#: imagehash.phash: hash_size 8, highfreq_factor 4.
PHASH_SIDE: Final = 8
PHASH_IMAGE_SIDE: Final = 32


def _dct_matrix(rows: int, size: int) -> npt.NDArray[np.float64]:
    """First ``rows`` rows of scipy.fftpack's unnormalized DCT-II of length ``size``."""
    k = np.arange(rows, dtype=np.float64)[:, None]
    n = np.arange(size, dtype=np.float64)[None, :]
    return 2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * size))


_DCT: Final = _dct_matrix(PHASH_SIDE, PHASH_IMAGE_SIDE)
#: A flip negates the coefficients of odd frequency (pHash keeps frequencies 0..7).
_PHASH_FLIP_NEGATES: Final = np.arange(PHASH_SIDE) % 2 == 1
#: pdqhash's luma weights (ITU-R 601), applied to RGB as floats.
_LUMA_WEIGHTS: Final = (0.299, 0.587, 0.114)
_GIF_HEADER: Final = 13  # signature + version (6) + logical screen descriptor (7)
_GIF_IMAGE: Final = 0x2C
_GIF_EXTENSION: Final = 0x21
_GIF_DESCRIPTOR: Final = 9  # left, top, width, height (2 bytes each) + flags
_GIF_COLOUR_TABLE_FLAG: Final = 0x80
_GIF_COLOUR_TABLE_BITS: Final = 0x07


# --- hex form --------------------------------------------------------------------------------


def pdq_bits_to_hex(bits: npt.ArrayLike) -> str:
    """256 PDQ bits (most significant first) -> 64 lowercase hex characters."""
    vector = np.asarray(bits, dtype=np.uint8)
    return np.packbits(vector).tobytes().hex()


def pdq_hex_to_bits(pdq_hex: str) -> npt.NDArray[np.uint8]:
    """Inverse of :func:`pdq_bits_to_hex`."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(pdq_hex), dtype=np.uint8))


# --- hashes ----------------------------------------------------------------------------------


def _float_luma(rgb: Image.Image) -> npt.NDArray[np.float32]:
    """Luma exactly as ``pdqhash`` computes it from 8-bit RGB (float64 sum, then float32)."""
    pixels = np.asarray(rgb.convert("RGB"), dtype=np.uint8)
    red, green, blue = _LUMA_WEIGHTS
    luma = pixels[..., 0] * red + pixels[..., 1] * green + pixels[..., 2] * blue
    return np.asarray(luma, dtype=np.float32)


def pdq_one(rgb: Image.Image) -> tuple[str, int]:
    """PDQ hex and quality of an RGB picture, as ``pdqhash.compute``."""
    hashes, quality = pdq_hashes(_float_luma(rgb), dihedral=False)
    return hashes[0], quality


def pdq_dihedral(rgb: Image.Image) -> tuple[tuple[str, ...], int]:
    """The eight PDQ hashes of :data:`DIHEDRAL_ORDER` and the quality of an RGB picture, as
    ``pdqhash.compute_dihedral``."""
    return pdq_hashes(_float_luma(rgb))


def _phash_hexes(blocks: tuple[npt.NDArray[np.floating], ...]) -> tuple[str, ...]:
    """The hex pHash of each 8x8 DCT block, all thresholded at once."""
    low = np.stack([block.reshape(-1) for block in blocks])
    bits = low > np.median(low, axis=1)[:, None]
    return tuple(row.tobytes().hex() for row in np.packbits(bits, axis=1))


def _phash_block(gray32: Gray) -> Gray:
    return np.asarray(_DCT @ gray32 @ _DCT.T)


def _gray32(rgb: Image.Image) -> Gray:
    small = rgb.convert("L").resize((PHASH_IMAGE_SIDE, PHASH_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float64)


def phash_one(rgb: Image.Image) -> str:
    """``str(imagehash.phash(rgb))``, bit for bit, computed without scipy."""
    return _phash_hexes((_phash_block(_gray32(rgb)),))[0]


def phash_dihedral(rgb: Image.Image) -> tuple[str, ...]:
    """pHash of the eight transforms of :data:`DIHEDRAL_ORDER` (first = :func:`phash_one`)."""
    blocks = dihedral_blocks(_phash_block(_gray32(rgb)), _PHASH_FLIP_NEGATES)
    return _phash_hexes(blocks)


def _luma32(luma: Image.Image, box: Box | None) -> Gray:
    """32x32 Lanczos reduction of ``box`` of a luma picture, through an integer ``reduce``."""
    region = None if box is None else tuple(float(edge) for edge in box)
    small = luma.resize(
        (PHASH_IMAGE_SIDE, PHASH_IMAGE_SIDE),
        Image.Resampling.LANCZOS,
        box=region,  # type: ignore[arg-type]
        reducing_gap=PHASH_REDUCING_GAP,
    )
    return np.asarray(small, dtype=np.float64)


def phash_luma(luma: Image.Image, box: Box | None = None) -> str:
    """pHash of ``box`` (default: all) of an "L" picture (see the module docstring)."""
    return _phash_hexes((_phash_block(_luma32(luma, box)),))[0]


def phash_dihedral_luma(luma: Image.Image, box: Box | None = None) -> tuple[str, ...]:
    """The eight dihedral pHashes of ``box`` of an "L" picture, from one DCT."""
    blocks = dihedral_blocks(_phash_block(_luma32(luma, box)), _PHASH_FLIP_NEGATES)
    return _phash_hexes(blocks)


def luma_array(luma: Image.Image) -> npt.NDArray[np.uint8]:
    """The pixels of an "L" picture as a 2-D array (no copy when Pillow allows)."""
    return np.asarray(luma, dtype=np.uint8)


# --- size ------------------------------------------------------------------------------------


def _reduced_size(width: int, height: int) -> tuple[int, int]:
    """Target size: shorter side PDQ_MIN_DECODE_SIDE, longer side at most PERCEPTUAL_MAX_SIDE."""
    scale = min(
        1.0, PDQ_MIN_DECODE_SIDE / min(width, height), PERCEPTUAL_MAX_SIDE / max(width, height)
    )
    return max(1, round(width * scale)), max(1, round(height * scale))


def draft_size(width: int, height: int) -> tuple[int, int] | None:
    """The size to request from JPEG ``draft`` (it picks the smallest DCT scale still at
    least this large), or ``None`` when the image is small enough already."""
    target = _reduced_size(width, height)
    if target == (width, height):
        return None
    return target


def reduction_factor(width: int, height: int) -> int:
    """The integer factor for ``Image.reduce`` (a box average) after decoding: the largest
    that keeps the shorter side at least :data:`PDQ_MIN_DECODE_SIDE`, or more when the longer
    side would stay above :data:`PERCEPTUAL_MAX_SIDE`; 1 when nothing needs reducing."""
    keep_short = min(width, height) // PDQ_MIN_DECODE_SIDE
    cap_long = -(-max(width, height) // PERCEPTUAL_MAX_SIDE)
    return max(1, keep_short, cap_long)


# --- borders ---------------------------------------------------------------------------------


def _band(lines: npt.NDArray[np.uint8], limit: int) -> int:
    """How many leading lines (rows of ``lines``) are near the outermost line's median.

    Only the lines looked at are converted: most pictures are decided by the first two."""
    if limit < TRIM_MIN_BAND:
        return 0
    reference = int(np.median(lines[0]))

    def uniform_lines(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
        close = np.abs(block.astype(np.int16) - reference) <= TRIM_TOLERANCE
        return np.asarray(close.mean(axis=1) >= TRIM_UNIFORM_FRACTION)

    # Most pictures have no border: decide on the outermost lines before looking deeper.
    if not uniform_lines(lines[:TRIM_MIN_BAND]).all():
        return 0
    uniform = uniform_lines(lines[:limit])
    ragged = np.flatnonzero(~uniform)
    depth = int(ragged[0]) if ragged.size else limit
    return depth if depth >= TRIM_MIN_BAND else 0


def border_box_array(luma: npt.NDArray[np.uint8]) -> Box | None:
    """The box (left, top, right, bottom) inside uniform borders of a 2-D luma array, or
    ``None`` without borders.

    A band is a run of lines from an edge whose luma stays within :data:`TRIM_TOLERANCE` of
    the outermost line's median for :data:`TRIM_UNIFORM_FRACTION` of its pixels; it is cut
    when at least :data:`TRIM_MIN_BAND` lines wide, at most :data:`TRIM_MAX_FRACTION` of the
    side, and never below :data:`TRIM_MIN_SIDE` pixels left. Textured edges stop it at once.
    """
    height, width = luma.shape
    if min(width, height) < TRIM_MIN_SIDE + 2 * TRIM_MIN_BAND:
        return None
    row_limit = min(int(height * TRIM_MAX_FRACTION), (height - TRIM_MIN_SIDE) // 2)
    col_limit = min(int(width * TRIM_MAX_FRACTION), (width - TRIM_MIN_SIDE) // 2)
    top = _band(luma, row_limit)
    bottom = _band(luma[::-1], row_limit)
    left = _band(luma.T, col_limit)
    right = _band(luma.T[::-1], col_limit)
    if top == bottom == left == right == 0:
        return None
    return left, top, width - right, height - bottom


def border_box(picture: Image.Image) -> Box | None:
    """:func:`border_box_array` of a picture's luma (Pillow's "L" conversion)."""
    return border_box_array(luma_array(picture.convert("L")))


def trim_borders(picture: Image.Image) -> tuple[Image.Image, bool]:
    """``picture`` without its uniform borders (see :func:`border_box`), and whether any was
    cut."""
    box = border_box(picture)
    if box is None:
        return picture, False
    return picture.crop(box), True


# --- animation -------------------------------------------------------------------------------


def frame_schedule(available: int, hashed: int) -> tuple[int, ...]:
    """Indices of at most ``hashed`` frames spread evenly over ``range(available)``; frame 0
    always first and the last available frame always included."""
    if available <= hashed:
        return tuple(range(max(1, available)))
    spread = np.linspace(0, available - 1, hashed)
    return tuple(sorted({round(float(index)) for index in spread}))


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """Position after a chain of GIF data sub-blocks (length byte + data, ended by 0)."""
    end = len(data)
    while pos < end:
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size
    return end + 1


def gif_frame_count(data: bytes, limit: int) -> int:
    """Frames (image descriptors) in a GIF, counted from its block structure without decoding
    any pixel and without looking past the ``limit``-th frame. Malformed structure ends the
    count (the decoder reports the damage). At least 1."""
    if len(data) < _GIF_HEADER:
        return 1
    flags = data[10]
    pos = _GIF_HEADER
    if flags & _GIF_COLOUR_TABLE_FLAG:
        pos += 3 << ((flags & _GIF_COLOUR_TABLE_BITS) + 1)
    frames = 0
    end = len(data)
    while pos < end and frames < limit:
        kind = data[pos]
        if kind == _GIF_IMAGE:
            if pos + 1 + _GIF_DESCRIPTOR >= end:
                break
            local = data[pos + _GIF_DESCRIPTOR]
            pos += 1 + _GIF_DESCRIPTOR
            if local & _GIF_COLOUR_TABLE_FLAG:
                pos += 3 << ((local & _GIF_COLOUR_TABLE_BITS) + 1)
            pos = _skip_sub_blocks(data, pos + 1)  # + LZW minimum code size
            frames += 1
        elif kind == _GIF_EXTENSION:
            pos = _skip_sub_blocks(data, pos + 2)  # + extension label
        else:
            break  # trailer (0x3B) or damage
    return max(1, frames)
