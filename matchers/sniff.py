"""Recognise images and other files by their magic numbers (never by file name or Content-Type).

:func:`sniff_image` names an image format from the first :data:`SNIFF_BYTES` bytes.
:func:`sniff_file` sorts any other body into a :class:`FileKind` (video, audio, archive, file)
from the first :data:`FILE_SNIFF_BYTES` bytes, or ``None`` for text (a page, a stylesheet,
JSON): what a crawl hashes as a file rather than parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "FILE_SNIFF_BYTES",
    "MEDIA_TYPES",
    "SNIFF_BYTES",
    "FileKind",
    "looks_like_text",
    "sniff_file",
    "sniff_image",
]

#: Only this many leading bytes are ever looked at for an image.
SNIFF_BYTES: Final = 32
#: Only this many leading bytes are ever looked at for any other file (a tar header's
#: ``ustar`` magic sits at offset 257).
FILE_SNIFF_BYTES: Final = 512
#: What a downloaded body can be, as hits record it (``media_type``).
MEDIA_TYPES: Final = ("image", "video", "audio", "archive", "file")

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


@dataclass(frozen=True, slots=True)
class FileKind:
    """A body that is not an image: its ``media_type`` (one of :data:`MEDIA_TYPES` but
    ``image``) and its format (``mp4``, ``zip``, ``pdf``..., ``""`` when unknown)."""

    media_type: str
    format: str


_VIDEO_FTYP: Final = {b"qt  ": "mov", b"3gp4": "3gp", b"3gp5": "3gp", b"3gp6": "3gp"}
_AUDIO_FTYP: Final = frozenset({b"M4A ", b"M4B ", b"M4P "})
_PREFIXES: Final = (
    (b"PK\x03\x04", FileKind("archive", "zip")),
    (b"PK\x05\x06", FileKind("archive", "zip")),  # an empty archive
    (b"PK\x07\x08", FileKind("archive", "zip")),  # spanned
    (b"\x1f\x8b", FileKind("archive", "gzip")),
    (b"\xfd7zXZ\x00", FileKind("archive", "xz")),
    (b"7z\xbc\xaf\x27\x1c", FileKind("archive", "7z")),
    (b"Rar!\x1a\x07", FileKind("archive", "rar")),
    (b"\x28\xb5\x2f\xfd", FileKind("archive", "zstd")),
    (b"%PDF-", FileKind("file", "pdf")),
    (b"\x1a\x45\xdf\xa3", FileKind("video", "mkv")),  # EBML; webm told apart below
    (b"FLV\x01", FileKind("video", "flv")),
    (b"\x00\x00\x01\xba", FileKind("video", "mpeg")),
    (b"\x00\x00\x01\xb3", FileKind("video", "mpeg")),
    (b"OggS", FileKind("audio", "ogg")),
    (b"fLaC", FileKind("audio", "flac")),
    (b"ID3", FileKind("audio", "mp3")),
)
_TS_PACKET: Final = 188


def sniff_file(data: bytes) -> FileKind | None:
    """What a body that is not an image is, from its first :data:`FILE_SNIFF_BYTES` bytes:
    a known video, audio, archive or document format, ``FileKind("file", "")`` for any other
    binary body, ``None`` for text (see :func:`looks_like_text`) and for an empty body.

    An image is not this function's business: call :func:`sniff_image` first.
    """
    head = bytes(data[:FILE_SNIFF_BYTES])
    if not head:
        return None
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            if kind.format == "mkv" and b"webm" in head[:64]:
                return FileKind("video", "webm")
            if kind.format == "ogg" and b"theora" in head[:128]:
                return FileKind("video", "ogg")
            return kind
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_FTYP:
            return FileKind("audio", "m4a")
        return FileKind("video", _VIDEO_FTYP.get(brand, "mp4"))
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return FileKind("video", "avi") if head[8:12] == b"AVI " else FileKind("audio", "wav")
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return FileKind("archive", "bzip2")
    if head[257:262] == b"ustar":
        return FileKind("archive", "tar")
    if (
        head[0] == 0x47
        and len(head) > _TS_PACKET * 2
        and (head[_TS_PACKET] == head[_TS_PACKET * 2] == 0x47)
    ):
        return FileKind("video", "mpegts")
    if head.startswith((b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")):
        return FileKind("audio", "mp3")
    if looks_like_text(head):
        return None
    return FileKind("file", "")


_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_CONTROL: Final = frozenset(range(32)) - {9, 10, 12, 13, 27}


def looks_like_text(head: bytes) -> bool:
    """Whether leading bytes read as text: a byte-order mark, or no NUL and hardly any other
    control byte (a page in any 8-bit or UTF-8 encoding; a truncated last character is
    fine)."""
    if head.startswith(_BOMS):
        return True
    if b"\x00" in head:
        return False
    control = sum(1 for b in head if b in _CONTROL)
    return control * 100 <= len(head)
