from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import pytest

from matchers.sniff import FILE_SNIFF_BYTES, FileKind, looks_like_text, sniff_file, sniff_image
from tests.matchers.imagegen import encode, make_rgb


@pytest.mark.parametrize(
    ("pil_format", "expected"),
    [
        ("JPEG", "jpeg"),
        ("PNG", "png"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
        ("ICO", "ico"),
        ("AVIF", "avif"),
    ],
)
def test_formats_generated_in_memory(pil_format: str, expected: str) -> None:
    data = encode(make_rgb(4, 64, 48), pil_format)
    assert sniff_image(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>hello</body></html>",
        b"<html>",
        b"BM but this is text and not a bitmap header at all",
        b"\x00\x00\x01\x00\x00\x00",  # ICO header with zero images
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",  # MP4 video
        b"GIF8",
        b"\xff\xd8",
    ],
)
def test_not_images(data: bytes) -> None:
    assert sniff_image(data) is None


def test_ftyp_brands() -> None:
    assert sniff_image(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "heic"
    assert sniff_image(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf") == "avif"


def test_only_first_32_bytes_matter() -> None:
    assert sniff_image(b"x" * 32 + b"\x89PNG\r\n\x1a\n") is None
    assert sniff_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10_000) == "png"


def _archives() -> list[tuple[bytes, FileKind]]:
    """Real archives and compressed streams of a benign text, written by the standard library
    in memory."""
    text = b"benign text, " * 200
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.txt", text)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
    return [
        (zipped.getvalue(), FileKind("archive", "zip")),
        (tarred.getvalue(), FileKind("archive", "tar")),
        (gzip.compress(text), FileKind("archive", "gzip")),
        (bz2.compress(text), FileKind("archive", "bzip2")),
        (lzma.compress(text), FileKind("archive", "xz")),
    ]


def test_archives_written_by_the_standard_library_are_recognised() -> None:
    for data, kind in _archives():
        assert sniff_file(data) == kind
        assert sniff_image(data) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", FileKind("video", "mp4")),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", FileKind("video", "mov")),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42", FileKind("audio", "m4a")),
        (
            b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\x82\x84webmB\x87",
            FileKind("video", "webm"),
        ),
        (b"\x1aE\xdf\xa3\xa3B\x86\x81\x01B\x82\x88matroska", FileKind("video", "mkv")),
        (b"RIFF\x00\x10\x00\x00AVI LIST", FileKind("video", "avi")),
        (b"RIFF\x00\x10\x00\x00WAVEfmt ", FileKind("audio", "wav")),
        (b"FLV\x01\x05\x00\x00\x00\x09", FileKind("video", "flv")),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00", FileKind("video", "mpeg")),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", FileKind("audio", "mp3")),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", FileKind("archive", "7z")),
        (b"Rar!\x1a\x07\x01\x00", FileKind("archive", "rar")),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", FileKind("file", "pdf")),
        (bytes(range(256)), FileKind("file", "")),
    ],
)
def test_file_signatures(head: bytes, expected: FileKind) -> None:
    assert sniff_file(head + b"\x00" * 600) == expected


def test_transport_streams_are_told_by_their_sync_bytes() -> None:
    packets = b"".join(b"\x47" + bytes([n]) * 187 for n in range(1, 4))
    assert sniff_file(packets) == FileKind("video", "mpegts")
    # A lone 0x47 ('G') is text, not a stream.
    assert sniff_file(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>hello</body></html>",
        "<p>Grüße, naïve café</p>".encode(),
        "<p>Grüße</p>".encode("latin-1"),
        b"\xef\xbb\xbf<html>",  # UTF-8 byte-order mark
        "<html>".encode("utf-16"),  # with its byte-order mark
        b'{"json": [1, 2, 3]}\n',
        b"line one\r\nline two\twith a tab\x0c\n",
    ],
)
def test_text_is_not_a_file(data: bytes) -> None:
    assert looks_like_text(data[:FILE_SNIFF_BYTES]) or not data
    assert sniff_file(data) is None


def test_only_the_first_512_bytes_matter_for_files() -> None:
    assert sniff_file(b"x" * FILE_SNIFF_BYTES + b"PK\x03\x04" + b"\x00" * 100) is None
    assert sniff_file(b"<html>" + b"a" * 600 + b"\x00\x01\x02") is None
