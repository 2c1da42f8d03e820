"""Recognise image formats by their magic numbers (never by file name or Content-Type)."""

from __future__ import annotations

from typing import Final

__all__ = ["SNIFF_BYTES", "sniff_image"]

#: Only this many leading bytes are ever looked at.
SNIFF_BYTES: Final = 32

_BMP_DIB_HEADER_SIZES: Final = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)


def sniff_image(data: bytes) -> str | None:
    """Return the image format named by the leading bytes of ``data``, or ``None``.

    Formats: ``jpeg``, ``png``, ``gif``, ``webp``, ``bmp``, ``tiff``, ``ico``, ``avif``,
    ``heic``. Anything else (HTML, text, empty input, video) gives ``None``.
    """
    head = bytes(data[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in _BMP_DIB_HEADER_SIZES:
            return "bmp"
        return None
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "ico"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    return None


def _sniff_ftyp(head: bytes) -> str | None:
    """ISO base media file: decide between AVIF and HEIC from the major/compatible brands."""
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, len(head) - 3, 4)}
    if major in _AVIF_BRANDS or compatible & _AVIF_BRANDS:
        return "avif"
    if major in _HEIF_BRANDS or compatible & _HEIF_BRANDS:
        return "heic"
    return None
