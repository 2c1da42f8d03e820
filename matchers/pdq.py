"""PDQ in numpy: Meta's algorithm, pinned bit for bit to ``pdqhash`` by the tests.

Why not just ``pdqhash.compute``? Three reasons, all measured (``bench/hashing.py``):

- it needs an RGB array and computes luma itself, so every caller pays an RGB decode and a
  float conversion of every pixel; here luma comes straight from the decoder (JPEG's Y plane);
- its tent filter runs over every pixel of the picture, twice per axis, and only then keeps
  64x64 samples; here the filter is evaluated *only at the 64 sample rows and columns* (the
  filter is linear and separable, so each sample is a fixed weighting of a band of ~2 windows
  of input lines): one weighted gather of the lines the samples need, then a small matrix
  product, about as many operations as pixels instead of ~8 per pixel;
- it holds the GIL for the whole C++ hash (~30 ms on a 1024x768 picture), while numpy
  releases it in its gathers, sums and matrix products (this module: ~0.5 ms in all on the
  same picture), which leaves room for the crawler's other hashing threads.

The eight dihedral hashes come from one DCT, as in Meta's C++ reference: flipping the 64x64
buffer negates the odd-frequency DCT coefficients of that axis (PDQ keeps frequencies 1..16,
so the coefficients with an even index), and a transpose swaps the axes.

The algorithm (``pdq/cpp/hashing/pdqhashing.cpp`` of facebook/ThreatExchange):

1. luma ``0.299 R + 0.587 G + 0.114 B`` as floats (here: whatever luma the caller passes);
2. a Jarosz tent filter: two passes of a centred box filter per axis, window
   ``ceil(side / 128)`` (``(side + 127) // 128``), averaging only the samples inside the
   picture near the edges;
3. decimation to 64x64 by taking the filtered value at ``int((i + 0.5) * side / 64)``;
4. quality: the sum of ``|trunc((u - v) * 100 / 255)|`` over neighbouring buffer values,
   divided by 90 and capped at 100;
5. the DCT-II frequencies 1..16 of each axis (a 16x16 block, ``D A D^T``);
6. bit ``16 i + j`` set when coefficient ``(i, j)`` is above the median (the 128th smallest of
   the 256, as Torben's median gives), written from bit 255 down to bit 0 (the hex form of
   python-threatexchange and of :func:`matchers.imageops.pdq_bits_to_hex` of ``pdqhash``'s
   bit vector).

Nothing here holds image bytes: it receives a luma array and returns hex strings.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "PDQ_BUFFER_SIDE",
    "PDQ_DCT_SIDE",
    "PDQ_MIN_HASHABLE_SIDE",
    "dihedral_blocks",
    "pdq_buffer",
    "pdq_from_buffer",
    "pdq_hashes",
]

#: PDQ decimates the filtered luma to this many rows and columns ...
PDQ_BUFFER_SIDE: Final = 64
#: ... and keeps this many DCT frequencies (1..16) of each axis.
PDQ_DCT_SIDE: Final = 16
#: Pictures with a side below this hash to all zeros with quality 0 (Meta's MIN_HASHABLE_DIM).
PDQ_MIN_HASHABLE_SIDE: Final = 5
#: The box window is the side divided by this, rounded up (two passes: a tent of a 64th).
_JAROSZ_WINDOW_DIVISOR: Final = 2 * PDQ_BUFFER_SIDE
#: Quality: each gradient in percent of full scale (255), truncated; their sum divided by
#: this, capped at _QUALITY_MAX.
_QUALITY_PERCENT: Final = np.float32(100.0)
_QUALITY_FULL_SCALE: Final = np.float32(255.0)
_QUALITY_DIVISOR: Final = 90
_QUALITY_MAX: Final = 100
_DIHEDRAL_COUNT: Final = 8
#: The median is the (n + 1) // 2-th smallest coefficient (Torben's median, as the reference).
_MEDIAN_RANK: Final = (PDQ_DCT_SIDE * PDQ_DCT_SIDE + 1) // 2 - 1
#: Tent operators are cached per side length (web images come in few distinct sizes).
_OPERATOR_CACHE_SIZE: Final = 256

Luma = npt.NDArray[np.floating] | npt.NDArray[np.uint8]
Buffer = npt.NDArray[np.float32]


def _dct_matrix() -> npt.NDArray[np.float32]:
    rows = np.arange(1, PDQ_DCT_SIDE + 1, dtype=np.float64)[:, None]
    cols = np.arange(PDQ_BUFFER_SIDE, dtype=np.float64)[None, :]
    scale = np.sqrt(2.0 / PDQ_BUFFER_SIDE)
    angles = (np.pi / 2.0 / PDQ_BUFFER_SIDE) * rows * (2.0 * cols + 1.0)
    return np.asarray(scale * np.cos(angles), dtype=np.float32)


_DCT: Final = _dct_matrix()
#: A flip of the 64x64 buffer negates the coefficients of odd frequency; index i of PDQ's 16
#: coefficients is frequency i + 1, so those with an even index.
_PDQ_FLIP_NEGATES: Final = np.arange(PDQ_DCT_SIDE) % 2 == 0


def dihedral_blocks(
    block: npt.NDArray[np.floating], flip_negates: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.floating], ...]:
    """The 2-D DCT block of each transform of :data:`matchers.imageops.DIHEDRAL_ORDER`,
    from the block of the original (as the reference's ``dct16OriginalTo*``).

    ``flip_negates[k]`` tells whether a flip negates coefficient ``k`` of an axis (the odd
    frequencies). Rows of ``block`` are vertical frequencies, columns horizontal ones."""
    signs = np.where(flip_negates, -1.0, 1.0)
    rows = block * signs[:, None]  # flipped top-bottom
    cols = block * signs[None, :]  # flipped left-right
    both = rows * signs[None, :]  # rotated 180°
    return (
        block,  # original
        cols.T,  # rotated 90° counter-clockwise
        both,  # rotated 180°
        rows.T,  # rotated 90° clockwise
        rows,  # flipped top-bottom
        cols,  # flipped left-right
        block.T,  # transposed
        both.T,  # anti-transposed
    )


@lru_cache(maxsize=_OPERATOR_CACHE_SIZE)
def _tent(side: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """The filter-and-decimate operator of one axis of ``side`` samples, as (indices,
    weights), both ``64 x band``: output ``i`` is ``sum(weights[i] * line[indices[i]])``.

    Built exactly as the reference filters: the transposed box filter applied twice to the
    64 unit vectors of the sample positions (so edge windows average only what they cover).
    """
    window = (side + _JAROSZ_WINDOW_DIVISOR - 1) // _JAROSZ_WINDOW_DIVISOR
    half = (window + 2) // 2
    before, after = window - half, half - 1  # output o averages input o - before .. o + after
    positions = np.arange(side)
    low = np.maximum(positions - before, 0)
    high = np.minimum(positions + after, side - 1)
    counts = (high - low + 1).astype(np.float64)
    # Transpose of the box: input k receives from the outputs o with low[o] <= k <= high[o],
    # i.e. o in k - after .. k + before.
    t_low = np.maximum(positions - after, 0)
    t_high = np.minimum(positions + before, side - 1)

    def box_transposed(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        summed = np.zeros((side + 1, x.shape[1]))
        np.cumsum(x / counts[:, None], axis=0, out=summed[1:])
        return np.asarray(summed[t_high + 1] - summed[t_low])

    samples = ((np.arange(PDQ_BUFFER_SIDE) + 0.5) * side / PDQ_BUFFER_SIDE).astype(np.intp)
    unit = np.zeros((side, PDQ_BUFFER_SIDE))
    unit[samples, np.arange(PDQ_BUFFER_SIDE)] = 1.0
    rows = box_transposed(box_transposed(unit)).T  # 64 x side, each row a tent
    nonzero = rows != 0.0
    first = nonzero.argmax(axis=1)
    last = side - 1 - nonzero[:, ::-1].argmax(axis=1)
    band = int((last - first).max()) + 1
    offsets = first[:, None] + np.arange(band)[None, :]
    inside = offsets <= last[:, None]
    indices = np.minimum(offsets, side - 1)
    weights = np.where(inside, np.take_along_axis(rows, indices, axis=1), 0.0)
    return indices, weights.astype(np.float32)


def pdq_buffer(luma: Luma) -> Buffer:
    """PDQ's 64x64 filtered and decimated buffer of a 2-D luma array (0..255).

    Rows first: the gather touches only the lines the 64 sample rows need (each input line
    about twice); the columns are then a gather of a 64-row array."""
    height, width = luma.shape
    row_indices, row_weights = _tent(height)
    col_indices, col_weights = _tent(width)
    # (64, band, width) lines of the samples, weighted and summed over the band.
    lines = np.asarray(luma[row_indices], dtype=np.float32)
    rows = np.einsum("ib,ibw->iw", row_weights, lines)
    # (64, 64, band) samples of those rows at the sample columns' bands.
    return np.asarray(np.einsum("jb,ijb->ij", col_weights, rows[:, col_indices]), np.float32)


def _quality(buffer: Buffer) -> int:
    """The reference's integer arithmetic: ``int d = ((u - v) * 100) / 255`` in float32."""
    vertical = np.trunc((buffer[:-1] - buffer[1:]) * _QUALITY_PERCENT / _QUALITY_FULL_SCALE)
    horizontal = np.trunc((buffer[:, :-1] - buffer[:, 1:]) * _QUALITY_PERCENT / _QUALITY_FULL_SCALE)
    gradient = int(np.abs(vertical).sum() + np.abs(horizontal).sum())
    return min(_QUALITY_MAX, gradient // _QUALITY_DIVISOR)


def _hexes(blocks: tuple[npt.NDArray[np.floating], ...]) -> tuple[str, ...]:
    """The hex hash of each DCT block, all thresholded at once (one partition, one packbits)."""
    coefficients = np.stack([block.reshape(-1) for block in blocks])
    medians = np.partition(coefficients, _MEDIAN_RANK, axis=1)[:, _MEDIAN_RANK]
    bits = (coefficients > medians[:, None])[:, ::-1]
    return tuple(row.tobytes().hex() for row in np.packbits(bits, axis=1))


def pdq_from_buffer(buffer: Buffer, *, dihedral: bool = True) -> tuple[tuple[str, ...], int]:
    """(hashes, quality) of a 64x64 PDQ buffer: the eight dihedral hashes in the order of
    :data:`matchers.imageops.DIHEDRAL_ORDER`, or only the original when ``dihedral`` is false."""
    block = _DCT @ buffer @ _DCT.T
    quality = _quality(buffer)
    if not dihedral:
        return _hexes((block,)), quality
    return _hexes(dihedral_blocks(block, _PDQ_FLIP_NEGATES)), quality


_ZERO_HASH: Final = "0" * (PDQ_DCT_SIDE * PDQ_DCT_SIDE // 4)


def pdq_hashes(luma: Luma, *, dihedral: bool = True) -> tuple[tuple[str, ...], int]:
    """(hashes, quality) of a 2-D luma array; see :func:`pdq_from_buffer`. Pictures with a
    side below :data:`PDQ_MIN_HASHABLE_SIDE` give zero hashes of quality 0, as the reference."""
    if min(luma.shape) < PDQ_MIN_HASHABLE_SIDE:
        return ((_ZERO_HASH,) * (_DIHEDRAL_COUNT if dihedral else 1)), 0
    return pdq_from_buffer(pdq_buffer(luma), dihedral=dihedral)
