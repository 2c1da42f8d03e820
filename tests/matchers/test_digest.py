"""digest_bytes: golden values, reduced-scale accuracy, image modes, hostile input."""

from __future__ import annotations

import hashlib
import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from matchers.algorithms import PDQ_MIN_DECODE_SIDE, PERCEPTUAL_MAX_SIDE, hamming
from matchers.digest import (
    ImageDigest,
    decode_image,
    digest_bytes,
    digest_file,
    pdq_bits_to_hex,
    pdq_hex_to_bits,
)
from matchers.errors import ImageTooLarge, NotAnImage
from tests.matchers.imagegen import encode, make_bytes, make_rgb

# Reduced-scale PDQ stays within this many bits of full-resolution pdqhash (the issue asks for
# "a few bits"; measured at PDQ_MIN_DECODE_SIDE = 640: at most 6 on generated textures, 10 on
# photos upscaled to 3000 px; see bench/README.md).
FULL_RES_PDQ_BITS = 10
FULL_RES_PHASH_BITS = 4

# Golden values: computed once from the generator and pasted here. If a Pillow, libjpeg,
# libwebp, zlib, numpy or pdqhash upgrade moves them, this fails loudly on purpose: re-check
# the reduced-scale tests below, then re-pin.
GOLDEN = [
    (
        101,
        "PNG",
        "905db01e90fab70cfa14b5557e22f047",
        "52fa7fdad0d248201af0535eebdaf35a0af21c3515a173dacf7a5e5e30a180a1",
        "98c2c23d2f2d43de",
    ),
    (
        102,
        "JPEG",
        "93bf01f0e23df1add65b31cdb8df340e",
        "88918411c2424813978c8ca16ee6118b7fcc998d7ec65f523f7ccc9dffe66666",
        "e833335c1fa5315c",
    ),
    (
        103,
        "WEBP",
        "5d3d765ae2796235ac17f1cb607b9d5b",
        "e0890296c3c80e0702c77fd20f8d5e12ff83e052f81e4efc007634d5bff8ede9",
        "c04b0fd5358f3ca5",
    ),
]


def full_resolution_hashes(data: bytes) -> tuple[str, str]:
    """Reference: full decode, no draft, no resize."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    bits, _quality = pdqhash.compute(np.asarray(rgb))
    return pdq_bits_to_hex(bits), str(imagehash.phash(rgb))


def perceptual(digest: ImageDigest) -> tuple[str, str]:
    assert digest.error is None
    assert digest.pdq is not None and digest.phash is not None
    return digest.pdq, digest.phash


def assert_close(a: ImageDigest, b: ImageDigest, pdq_bits: int = 8, phash_bits: int = 4) -> None:
    pdq_a, phash_a = perceptual(a)
    pdq_b, phash_b = perceptual(b)
    assert hamming(pdq_a, pdq_b) <= pdq_bits
    assert hamming(phash_a, phash_b) <= phash_bits


@pytest.mark.parametrize(("seed", "fmt", "md5", "pdq", "phash"), GOLDEN)
def test_golden_values(seed: int, fmt: str, md5: str, pdq: str, phash: str) -> None:
    digest = digest_bytes(make_bytes(seed, fmt))
    assert (digest.md5, digest.pdq, digest.phash) == (md5, pdq, phash)
    assert digest.pdq_quality == 100
    assert digest.format == fmt.lower()
    assert (digest.width, digest.height, digest.frames, digest.error) == (640, 480, 1, None)


def test_golden_fixtures_differ_from_each_other() -> None:
    pdqs = [row[3] for row in GOLDEN]
    phashes = [row[4] for row in GOLDEN]
    assert min(hamming(a, b) for a in pdqs for b in pdqs if a != b) > 64
    assert len(set(phashes)) == len(phashes)


def test_exact_hashes_and_dict_forms() -> None:
    data = make_bytes(7)
    digest = digest_bytes(data)
    assert digest.md5 == hashlib.md5(data).hexdigest()
    assert digest.sha1 == hashlib.sha1(data).hexdigest()
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert set(digest.hashes()) == {"md5", "sha1", "sha256", "pdq", "phash"}
    assert digest.as_dict()["sha256"] == digest.sha256
    assert digest.as_dict()["pdq_quality"] == digest.pdq_quality
    assert digest.as_dict()["pdq_variants"] == list(digest.pdq_variants)
    assert digest.as_dict()["phash_variants"] == list(digest.phash_variants)
    assert len(digest.as_dict()) == 13
    # A still, borderless picture: the eight dihedral hashes, canonical first.
    assert digest.pdq_variants[0] == digest.pdq
    assert digest.phash_variants[0] == digest.phash
    assert len(digest.pdq_variants) == 8
    assert len(set(digest.phash_variants)) == len(digest.phash_variants) <= 8


def test_pdq_hex_bit_order_matches_threatexchange() -> None:
    data = make_bytes(8)
    with Image.open(io.BytesIO(data)) as im:
        bits, _quality = pdqhash.compute(np.asarray(im.convert("RGB")))
    # python-threatexchange: "".join(str(bit)) read as one big-endian binary number.
    bin_str = "".join(str(int(bit)) for bit in bits)
    reference = f"{int(bin_str, 2):064x}"
    assert pdq_bits_to_hex(bits) == reference
    assert pdq_hex_to_bits(reference).tolist() == [int(bit) for bit in bits]
    assert pdq_bits_to_hex(pdq_hex_to_bits(reference)) == reference
    # A single first bit is the most significant bit of the first hex digit.
    first = np.zeros(256, dtype=np.uint8)
    first[0] = 1
    assert pdq_bits_to_hex(first) == "8" + "0" * 63


def test_large_jpeg_reduced_scale_is_close_to_full_resolution(large_jpeg: bytes) -> None:
    digest = digest_bytes(large_jpeg)
    assert (digest.width, digest.height) == (3000, 2000)
    pdq, phash = perceptual(digest)
    ref_pdq, ref_phash = full_resolution_hashes(large_jpeg)
    assert hamming(pdq, ref_pdq) <= FULL_RES_PDQ_BITS
    assert hamming(phash, ref_phash) <= FULL_RES_PHASH_BITS


def test_large_jpeg_decode_is_actually_reduced(large_jpeg: bytes) -> None:
    decoded = decode_image(large_jpeg)
    assert (decoded.width, decoded.height) == (3000, 2000)
    # The Y plane only, from a JPEG draft at 1/2 scale (1/4 would give 750x500, below
    # PDQ_MIN_DECODE_SIDE); PDQ filters it as it is.
    assert decoded.luma.mode == "L"
    assert decoded.luma.size == (1500, 1000)
    assert min(decoded.luma.size) // 2 < PDQ_MIN_DECODE_SIDE <= min(decoded.luma.size)
    assert max(decoded.luma.size) <= PERCEPTUAL_MAX_SIDE


@pytest.mark.parametrize(
    ("seed", "fmt", "size"),
    [
        (31, "PNG", (2400, 1800)),
        (32, "WEBP", (1600, 1200)),
        (33, "JPEG", (1000, 2500)),
        (34, "JPEG", (1100, 700)),
        (35, "BMP", (2048, 1536)),
    ],
)
def test_reduced_scale_close_to_full_resolution(seed: int, fmt: str, size: tuple[int, int]) -> None:
    data = make_bytes(seed, fmt, *size)
    pdq, phash = perceptual(digest_bytes(data))
    ref_pdq, ref_phash = full_resolution_hashes(data)
    assert hamming(pdq, ref_pdq) <= FULL_RES_PDQ_BITS
    assert hamming(phash, ref_phash) <= FULL_RES_PHASH_BITS


def test_small_images_are_hashed_unchanged() -> None:
    data = make_bytes(36, "PNG", 300, 200)
    assert perceptual(digest_bytes(data)) == full_resolution_hashes(data)


def test_digest_file(tmp_path: Path) -> None:
    path = tmp_path / "reference.png"
    data = make_bytes(37)
    path.write_bytes(data)
    assert digest_file(path) == digest_bytes(data)


# --- modes -------------------------------------------------------------------------------


def white_out(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    copy = image.copy()
    copy.paste((255,) * len(copy.getbands()), box)
    return copy


BOX = (100, 80, 400, 300)


def test_rgba_composited_onto_white() -> None:
    base = make_rgb(41)
    rgba = base.convert("RGBA")
    alpha = Image.new("L", base.size, 255)
    alpha.paste(0, BOX)
    rgba.putalpha(alpha)
    digest = digest_bytes(encode(rgba, "PNG"))
    expected = digest_bytes(encode(white_out(base, BOX), "PNG"))
    assert perceptual(digest) == perceptual(expected)
    # The hidden pixels are not white: ignoring alpha would give another hash.
    assert perceptual(digest_bytes(encode(base, "PNG"))) != perceptual(expected)


def test_la_composited_onto_white() -> None:
    gray = make_rgb(42).convert("L")
    la = gray.convert("LA")
    alpha = Image.new("L", gray.size, 255)
    alpha.paste(0, BOX)
    la.putalpha(alpha)
    digest = digest_bytes(encode(la, "PNG"))
    assert perceptual(digest) == perceptual(digest_bytes(encode(white_out(gray, BOX), "PNG")))
    assert perceptual(digest) != perceptual(digest_bytes(encode(gray, "PNG")))


def test_palette_with_transparency_composited_onto_white() -> None:
    quantized = make_rgb(43).quantize(255)
    palette = quantized.getpalette()
    assert palette is not None
    quantized.putpalette([*palette[: 255 * 3], 0, 0, 0])
    quantized.paste(255, BOX)
    data = encode(quantized, "PNG", transparency=255)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "P" and "transparency" in check.info
    opaque = np.asarray(quantized.convert("RGB")).copy()
    opaque[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 255
    expected = digest_bytes(encode(Image.fromarray(opaque), "PNG"))
    assert perceptual(digest_bytes(data)) == perceptual(expected)


def test_cmyk_jpeg_hashes_like_rgb_jpeg() -> None:
    base = make_rgb(44)
    cmyk = digest_bytes(encode(base.convert("CMYK"), "JPEG", quality=95))
    rgb = digest_bytes(encode(base, "JPEG", quality=95))
    assert_close(cmyk, rgb)


def test_sixteen_bit_png_scaled_not_clipped() -> None:
    gray = np.asarray(make_rgb(45).convert("L"))
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)
    assert sixteen.mode == "I;16"
    data = encode(sixteen, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")
    expected = digest_bytes(encode(Image.fromarray(gray), "PNG"))
    assert perceptual(digest_bytes(data)) == perceptual(expected)


def test_float_and_int32_tiff() -> None:
    gray = np.asarray(make_rgb(46).convert("L"))
    expected = perceptual(digest_bytes(encode(Image.fromarray(gray), "PNG")))
    as_float = Image.fromarray(gray.astype(np.float32) / 255.0)
    assert as_float.mode == "F"
    assert_close(
        digest_bytes(encode(as_float, "TIFF")),
        digest_bytes(encode(Image.fromarray(gray), "PNG")),
        2,
        2,
    )
    as_int = Image.fromarray(gray.astype(np.int32) * 257)
    assert as_int.mode == "I"
    assert perceptual(digest_bytes(encode(as_int, "TIFF"))) == expected


def test_one_bit_image() -> None:
    bilevel = make_rgb(47).convert("1")
    digest = digest_bytes(encode(bilevel, "PNG"))
    assert perceptual(digest) == perceptual(digest_bytes(encode(bilevel.convert("L"), "PNG")))


def test_animated_gif_hashes_first_frame() -> None:
    first = make_rgb(48).quantize(256)
    second = make_rgb(49).quantize(256)
    animated = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    still = encode(first, "GIF")
    digest = digest_bytes(animated)
    assert digest.frames == 2
    assert perceptual(digest) == perceptual(digest_bytes(still))
    assert perceptual(digest) != perceptual(digest_bytes(encode(second, "GIF")))
    # The second frame is not canonical, but it is among the hashes a matcher queries.
    second_digest = digest_bytes(encode(second, "GIF"))
    assert second_digest.pdq in digest.pdq_variants
    assert second_digest.phash in digest.phash_variants


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_greyscale_animation_hashes_each_frame_not_the_last_one_decoded(fmt: str) -> None:
    # A greyscale frame needs no conversion: the frames kept must not be the image that
    # seeking to the next frame draws over.
    frames = [make_rgb(60 + i).convert("L") for i in range(3)]
    animated = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    digest = digest_bytes(animated)
    singles = [digest_bytes(encode(frame, fmt)) for frame in frames]
    assert digest.frames == 3
    assert perceptual(digest) == perceptual(singles[0])
    for single in singles[1:]:
        assert single.pdq != singles[0].pdq
        assert single.pdq in digest.pdq_variants
        assert single.phash in digest.phash_variants


def test_exif_rotated_jpeg_hashes_like_upright() -> None:
    upright = make_rgb(50)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # displayed after rotating 90° CW
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    rotated_with_tag = digest_bytes(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    reference = digest_bytes(encode(upright, "JPEG", quality=95))
    assert_close(rotated_with_tag, reference)
    assert (rotated_with_tag.width, rotated_with_tag.height) == (480, 640)
    untagged = digest_bytes(encode(stored, "JPEG", quality=95))
    assert untagged.phash is not None and reference.phash is not None
    assert hamming(untagged.phash, reference.phash) > 12


# --- hostile input -------------------------------------------------------------------------


def test_truncated_jpeg_keeps_exact_hashes() -> None:
    data = make_bytes(51, "JPEG")
    cut = data[: len(data) // 2]
    digest = digest_bytes(cut)
    assert digest.error == "truncated"
    assert digest.pdq is None and digest.phash is None and digest.pdq_quality is None
    assert digest.md5 == digest_bytes(cut).md5 != digest_bytes(data).md5
    assert set(digest.hashes()) == {"md5", "sha1", "sha256"}
    assert (digest.width, digest.height) == (640, 480)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP"])
def test_truncated_other_formats(fmt: str) -> None:
    data = make_bytes(52, fmt)
    digest = digest_bytes(data[: len(data) // 2])
    assert digest.error in {"truncated", "corrupt"}
    assert digest.pdq is None


def test_garbage_after_signature_is_corrupt() -> None:
    rng = np.random.default_rng(53)
    digest = digest_bytes(b"\xff\xd8\xff" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    assert digest.error == "corrupt"
    assert digest.format == "jpeg"


def test_heic_without_decoder_is_unsupported() -> None:
    digest = digest_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    assert digest.error == "unsupported"
    assert digest.sha256


@pytest.mark.parametrize("data", [b"<!DOCTYPE html><html></html>", b"", b"plain text"])
def test_not_an_image_raises(data: bytes) -> None:
    with pytest.raises(NotAnImage) as info:
        digest_bytes(data)
    assert "html" not in str(info.value).lower()


def png_header_only(width: int, height: int) -> bytes:
    """A 1-bit grayscale PNG that announces width x height but carries almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("side", "max_pixels"),
    [
        (40_000, None),  # above Pillow's own error limit
        (10_000, None),  # between Pillow's warning and error limits: no warning may escape
        (40_000, 10**10),  # our limit is looser than Pillow's: Pillow's refusal still wins
        (2_000, 1_000_000),  # below Pillow's limits, above ours
    ],
)
def test_too_large_refused_without_allocating(side: int, max_pixels: int | None) -> None:
    data = png_header_only(side, side)
    tracemalloc.start()
    try:
        if max_pixels is None:
            digest = digest_bytes(data)
        else:
            digest = digest_bytes(data, max_pixels=max_pixels)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.error == "too_large"
    assert digest.pdq is None and digest.phash is None
    assert digest.md5
    assert peak < 5_000_000
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow global untouched


@pytest.mark.parametrize("side", [2_000, 10_000])
def test_decode_image_raises_too_large_with_size(side: int) -> None:
    with pytest.raises(ImageTooLarge) as info:
        decode_image(png_header_only(side, side), max_pixels=1000)
    assert (info.value.width, info.value.height) == (side, side)
    assert digest_bytes(png_header_only(side, side)[:200], max_pixels=1000).width == side


def test_pillow_bomb_refusal_has_no_size() -> None:
    # Pillow refuses 40000x40000 inside Image.open, before the size is visible to us.
    digest = digest_bytes(png_header_only(40_000, 40_000))
    assert (digest.error, digest.width, digest.height) == ("too_large", None, None)


@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_draft_decode_of_cmyk_and_grayscale_jpeg(mode: str) -> None:
    data = encode(make_rgb(54, 1600, 1200).convert(mode), "JPEG", quality=92)
    decoded = decode_image(data)
    # 1/2 scale would be 800x600, below PDQ_MIN_DECODE_SIDE: decoded at full scale.
    assert (decoded.luma.mode, decoded.luma.size) == ("L", (1600, 1200))
    pdq, phash = perceptual(digest_bytes(data))
    ref_pdq, ref_phash = full_resolution_hashes(data)
    assert hamming(pdq, ref_pdq) <= FULL_RES_PDQ_BITS
    assert hamming(phash, ref_phash) <= FULL_RES_PHASH_BITS


# --- only what can be queried ------------------------------------------------------------------


def test_algorithms_limit_the_perceptual_hashes() -> None:
    data = make_bytes(55, "JPEG")
    full = digest_bytes(data)
    pdq_only = digest_bytes(data, algorithms=("md5", "sha256", "pdq"))
    assert (pdq_only.pdq, pdq_only.pdq_quality, pdq_only.pdq_variants) == (
        full.pdq,
        full.pdq_quality,
        full.pdq_variants,
    )
    assert (pdq_only.phash, pdq_only.phash_variants) == (None, ())
    assert set(pdq_only.hashes()) == {"md5", "sha1", "sha256", "pdq"}
    phash_only = digest_bytes(data, algorithms=frozenset({"phash"}))
    assert (phash_only.phash, phash_only.phash_variants) == (full.phash, full.phash_variants)
    assert (phash_only.pdq, phash_only.pdq_quality, phash_only.pdq_variants) == (None, None, ())
    assert (phash_only.width, phash_only.height) == (full.width, full.height) == (640, 480)


def test_exact_algorithms_only_read_the_header_and_decode_no_pixel() -> None:
    exact = ("md5", "sha1", "sha256")
    # The header's size and the pixel limit still count without a perceptual algorithm.
    data = png_header_only(2_000, 2_000)
    refused = digest_bytes(data, max_pixels=1000, algorithms=exact)
    assert (refused.error, refused.width, refused.height) == ("too_large", 2_000, 2_000)
    assert (refused.pdq, refused.phash) == (None, None)
    assert refused.md5 == hashlib.md5(data).hexdigest()
    assert refused.sha256 == hashlib.sha256(data).hexdigest()
    sized = digest_bytes(data, algorithms=exact)
    assert (sized.error, sized.width, sized.height, sized.pdq) == (None, 2_000, 2_000, None)
    # A header Pillow cannot read is corrupt either way.
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(40)
    assert digest_bytes(garbage, algorithms=exact).error == "corrupt"
    # Damaged pixel data is only noticed by decoding it.
    whole = make_bytes(56, "JPEG")
    damaged = whole[: len(whole) * 2 // 3]
    assert digest_bytes(damaged, algorithms=()).error is None
    assert digest_bytes(damaged).error in {"truncated", "corrupt"}


def test_algorithms_given_as_one_string_is_refused() -> None:
    with pytest.raises(ValueError, match="collection of names"):
        digest_bytes(make_bytes(57), algorithms="pdq")


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="sha512"):
        digest_bytes(make_bytes(57), algorithms=("sha512", "pdq"))


def test_luma_decode_of_colour_jpeg_is_close_to_rgb_luma() -> None:
    # The Y plane of a colour JPEG is what PDQ's RGB luma recomputes, up to rounding.
    data = make_bytes(58, "JPEG", 1024, 768)
    pdq, phash = perceptual(digest_bytes(data))
    ref_pdq, ref_phash = full_resolution_hashes(data)
    assert hamming(pdq, ref_pdq) <= FULL_RES_PDQ_BITS
    assert hamming(phash, ref_phash) <= FULL_RES_PHASH_BITS
    decoded = decode_image(data)
    with Image.open(io.BytesIO(data)) as im:
        rgb_luma = np.asarray(im.convert("RGB").convert("L"), dtype=np.int16)
    difference = np.abs(np.asarray(decoded.luma, dtype=np.int16) - rgb_luma)
    # Equal but for a few pixels at sharp colour edges (chroma upsampling, rounding).
    assert difference.mean() < 0.01
    assert difference.max() <= 8
