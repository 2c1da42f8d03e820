from __future__ import annotations

import pytest

from matchers.sniff import sniff_image
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
