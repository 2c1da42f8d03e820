"""Robust hashing: dihedral variants, border trimming, animated frames, the pHash twin."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import GifImagePlugin, Image, ImageOps

from matchers.algorithms import (
    ANIMATION_MAX_FRAMES_COUNTED,
    ANIMATION_MAX_FRAMES_INSPECTED,
    ANIMATION_MAX_HASHED_FRAMES,
    PDQ_CONFIRM_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    TRIM_MAX_FRACTION,
    hamming,
)
from matchers.digest import ImageDigest, decode_image, digest_bytes
from matchers.imageops import (
    DIHEDRAL_ORDER,
    border_box,
    border_box_array,
    frame_schedule,
    gif_frame_count,
    pdq_bits_to_hex,
    pdq_dihedral,
    pdq_one,
    phash_dihedral,
    phash_dihedral_luma,
    phash_luma,
    phash_one,
    reduction_factor,
    trim_borders,
)
from tests.matchers.imagegen import encode, make_rgb

SEEDS = (301, 302, 303, 304)


def nearest(reference: str, variants: tuple[str, ...]) -> int:
    return min(hamming(reference, variant) for variant in variants)


def canonical(digest: ImageDigest) -> tuple[str, str]:
    assert digest.error is None and digest.pdq is not None and digest.phash is not None
    return digest.pdq, digest.phash


# --- dihedral variants -----------------------------------------------------------------------

TRANSFORMS = {
    "mirror": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip": Image.Transpose.FLIP_TOP_BOTTOM,
    "rotate90": Image.Transpose.ROTATE_90,
    "rotate180": Image.Transpose.ROTATE_180,
    "rotate270": Image.Transpose.ROTATE_270,
    "transpose": Image.Transpose.TRANSPOSE,
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_transformed_copy_has_a_variant_within_confirm_threshold(seed: int, transform: str) -> None:
    original = make_rgb(seed)
    pdq, phash = canonical(digest_bytes(encode(original, "PNG")))
    copy = digest_bytes(encode(original.transpose(TRANSFORMS[transform]), "JPEG", quality=85))
    assert nearest(pdq, copy.pdq_variants) <= PDQ_CONFIRM_THRESHOLD
    assert nearest(phash, copy.phash_variants) <= PHASH_CONFIRM_THRESHOLD
    # Without the variants the copy would be missed: the test can fail.
    copy_pdq, copy_phash = canonical(copy)
    assert hamming(pdq, copy_pdq) > 2 * PDQ_CONFIRM_THRESHOLD
    assert hamming(phash, copy_phash) > PHASH_CONFIRM_THRESHOLD


@pytest.mark.parametrize("seed", SEEDS)
def test_dihedral_order_matches_hash_of_transformed_pixels(seed: int) -> None:
    picture = make_rgb(seed, 320, 240)
    pixels = np.asarray(picture)
    turns = {
        "original": pixels,
        "rotate90_ccw": np.rot90(pixels, 1),
        "rotate180": np.rot90(pixels, 2),
        "rotate90_cw": np.rot90(pixels, -1),
        "flip_top_bottom": pixels[::-1],
        "flip_left_right": pixels[:, ::-1],
        "transpose": pixels.transpose(1, 0, 2),
        "antitranspose": np.rot90(pixels, 2).transpose(1, 0, 2),
    }
    assert tuple(turns) == DIHEDRAL_ORDER
    pdqs, _quality = pdq_dihedral(picture)
    phashes = phash_dihedral(picture)
    for index, name in enumerate(DIHEDRAL_ORDER):
        turned = Image.fromarray(np.ascontiguousarray(turns[name]))
        # pdqhash's dihedral hashes come from one pass and differ from a fresh hash of the
        # transformed pixels by up to ~20 bits (its sampling grid is not symmetric).
        assert hamming(pdqs[index], pdq_one(turned)[0]) <= PDQ_CONFIRM_THRESHOLD, name
        assert hamming(phashes[index], str(imagehash.phash(turned))) <= 2, name
        others = [pdqs[other] for other in range(8) if other != index]
        assert min(hamming(pdqs[index], other) for other in others) > 64


@pytest.mark.parametrize("seed", [*SEEDS, 305, 306, 307])
def test_phash_twin_equals_imagehash(seed: int) -> None:
    picture = make_rgb(seed, 500, 375)
    assert phash_one(picture) == str(imagehash.phash(picture))
    assert phash_dihedral(picture)[0] == phash_one(picture)
    pdqs, quality = pdq_dihedral(picture)
    bits, reference_quality = pdqhash.compute(np.asarray(picture))
    assert pdqs[0] == pdq_one(picture)[0] == pdq_bits_to_hex(bits)
    assert quality == reference_quality


# --- border trimming -------------------------------------------------------------------------


def with_bars(picture: Image.Image, sides: tuple[int, int, int, int], colour: int) -> Image.Image:
    """Pad by (left, top, right, bottom) pixels of one grey level."""
    return ImageOps.expand(picture, border=sides, fill=(colour, colour, colour))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("sides", "colour"),
    [
        ((0, 80, 0, 80), 0),  # letterbox, black
        ((100, 0, 100, 0), 255),  # pillarbox, white
        ((30, 30, 30, 30), 16),  # matte on every side, near black
        ((0, 0, 0, 120), 128),  # one grey band
    ],
)
def test_bordered_copy_matches_after_trimming(
    seed: int, sides: tuple[int, int, int, int], colour: int
) -> None:
    original = make_rgb(seed)
    pdq, phash = canonical(digest_bytes(encode(original, "PNG")))
    bordered = digest_bytes(encode(with_bars(original, sides, colour), "JPEG", quality=80))
    copy_pdq, copy_phash = canonical(bordered)
    assert hamming(pdq, copy_pdq) <= 16
    assert hamming(phash, copy_phash) <= 4
    # The untrimmed picture is the last-but-frames variant and is far from the original.
    untrimmed_pdq = bordered.pdq_variants[-1]
    assert hamming(pdq, untrimmed_pdq) > hamming(pdq, copy_pdq)
    assert len(bordered.pdq_variants) == 9


@pytest.mark.parametrize("seed", range(311, 341))
def test_trimming_never_cuts_textured_content(seed: int) -> None:
    picture = make_rgb(seed)
    assert border_box(picture) is None
    assert trim_borders(picture) == (picture, False)


def test_trimming_is_bounded_per_side() -> None:
    small = make_rgb(342, 100, 80)
    canvas = with_bars(small, (300, 200, 300, 200), 0)  # 700x480, content is 2.4 % of it
    left, top, right, bottom = border_box(canvas) or (0, 0, 0, 0)
    width, height = canvas.size
    assert left == width - right == int(width * TRIM_MAX_FRACTION)
    assert top == height - bottom == int(height * TRIM_MAX_FRACTION)


def test_flat_picture_keeps_a_minimum_size() -> None:
    flat = Image.new("RGB", (40, 40), (90, 90, 90))
    box = border_box(flat)
    assert box is not None
    left, top, right, bottom = box
    assert right - left >= 32 and bottom - top >= 32
    assert border_box(Image.new("RGB", (20, 20), (90, 90, 90))) is None


def test_noisy_band_is_not_a_border() -> None:
    picture = make_rgb(343)
    rng = np.random.default_rng(343)
    pixels = np.asarray(picture).copy()
    pixels[:60] = rng.integers(0, 40, (60, pixels.shape[1], 3))  # dark but not uniform
    assert border_box(Image.fromarray(pixels)) is None


# --- animations --------------------------------------------------------------------------------


def animation(fmt: str, frames: list[Image.Image]) -> bytes:
    first, *rest = frames
    params: dict[str, object] = {"save_all": True, "append_images": rest, "duration": 80}
    if fmt == "WEBP":
        params["lossless"] = True
    return encode(first, fmt, **params)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_third_frame_is_among_the_variants(fmt: str) -> None:
    frames = [make_rgb(seed, 320, 240) for seed in (351, 352, 353, 354, 355)]
    if fmt == "GIF":
        frames = [frame.quantize(256).convert("RGB") for frame in frames]
    digest = digest_bytes(animation(fmt, frames))
    assert digest.frames == 5
    first = digest_bytes(encode(frames[0], "PNG"))
    third = digest_bytes(encode(frames[2], "PNG"))
    assert canonical(digest) == canonical(first)
    third_pdq, third_phash = canonical(third)
    assert third_pdq in digest.pdq_variants
    assert third_phash in digest.phash_variants
    assert hamming(third_pdq, canonical(first)[0]) > 64


def gif_with_frames(count: int) -> bytes:
    """A 16x16 GIF with ``count`` frames, built by repeating one encoded frame's blocks."""
    frames = [make_rgb(seed, 16, 16).quantize(64) for seed in (361, 362)]
    two = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20)
    second = two.rindex(b"\x21\xf9\x04")  # graphic control extension of the second frame
    assert two.endswith(b"\x3b")
    return two[:second] + two[second:-1] * (count - 1) + b"\x3b"


def test_gif_frame_count_agrees_with_pillow() -> None:
    for count in (1, 2, 3, 17):
        data = gif_with_frames(count) if count > 1 else encode(make_rgb(363, 16, 16), "GIF")
        with Image.open(io.BytesIO(data)) as im:
            assert isinstance(im, GifImagePlugin.GifImageFile)
            assert gif_frame_count(data, 1000) == im.n_frames == count
    assert gif_frame_count(gif_with_frames(17), 5) == 5
    assert gif_frame_count(b"GIF89a", 10) == 1


def test_huge_gif_is_bounded() -> None:
    data = gif_with_frames(100_000)
    decoded = decode_image(data)
    assert decoded.frames == ANIMATION_MAX_FRAMES_COUNTED
    assert decoded.frames_inspected == ANIMATION_MAX_FRAMES_INSPECTED
    assert len(decoded.more_frames) == ANIMATION_MAX_HASHED_FRAMES - 1
    digest = digest_bytes(data)
    assert 1 < len(digest.pdq_variants) <= 8 + ANIMATION_MAX_HASHED_FRAMES - 1


def test_big_animation_is_bounded_by_pixels() -> None:
    frames = [make_rgb(seed, 1600, 1200) for seed in (371, 372, 373)]
    frames = [frames[index % 3] for index in range(40)]
    decoded = decode_image(animation("WEBP", frames))
    assert decoded.frames == 40
    # 32 M pixels of budget / 1.92 M pixels a frame: 16 frames at most.
    assert decoded.frames_inspected <= 16
    assert len(decoded.more_frames) == ANIMATION_MAX_HASHED_FRAMES - 1


def test_frame_schedule() -> None:
    assert frame_schedule(1, 8) == (0,)
    assert frame_schedule(5, 8) == (0, 1, 2, 3, 4)
    assert frame_schedule(64, 8) == (0, 9, 18, 27, 36, 45, 54, 63)
    spread = frame_schedule(1000, 8)
    assert len(spread) == 8 and spread[0] == 0 and spread[-1] == 999


# --- luma path ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "size"), [(381, (500, 375)), (382, (375, 500)), (383, (96, 64))])
def test_luma_phash_equals_imagehash_below_the_reducing_gap(
    seed: int, size: tuple[int, int]
) -> None:
    picture = make_rgb(seed, *size)
    luma = picture.convert("L")
    assert phash_luma(luma) == str(imagehash.phash(picture))
    assert phash_dihedral_luma(luma) == phash_dihedral(picture)
    box = (10, 20, size[0] - 5, size[1] - 15)
    assert phash_luma(luma, box) == str(imagehash.phash(picture.crop(box)))


def test_luma_phash_of_a_large_picture_is_close_to_imagehash() -> None:
    picture = make_rgb(384, 1600, 1200)
    assert hamming(phash_luma(picture.convert("L")), str(imagehash.phash(picture))) <= 2


def test_dihedral_phash_from_one_dct_equals_hash_of_each_transform() -> None:
    # 32x32 pixels turned are the pixels of the turned 32x32 picture: exact equality.
    gray = np.asarray(make_rgb(385, 32, 32).convert("L"))
    turns = [
        gray,
        np.rot90(gray, 1),
        np.rot90(gray, 2),
        np.rot90(gray, -1),
        gray[::-1],
        gray[:, ::-1],
        gray.T,
        np.rot90(gray, 2).T,
    ]
    expected = tuple(phash_luma(Image.fromarray(np.ascontiguousarray(t))) for t in turns)
    assert phash_dihedral_luma(Image.fromarray(gray)) == expected
    assert len(set(expected)) == len(expected)


def test_border_box_array_agrees_with_border_box() -> None:
    picture = with_bars(make_rgb(386), (0, 60, 0, 60), 0)
    luma = np.asarray(picture.convert("L"))
    assert border_box_array(luma) == border_box(picture) == (0, 60, 640, 540)
    assert border_box_array(np.asarray(make_rgb(387).convert("L"))) is None


@pytest.mark.parametrize(
    ("size", "factor"),
    [
        ((500, 375), 1),
        ((1024, 768), 1),
        ((1279, 1279), 1),
        ((1280, 1280), 2),
        ((2400, 1800), 2),
        ((6000, 4000), 6),
        ((10000, 700), 5),  # a panorama: the longer side brought near PERCEPTUAL_MAX_SIDE
    ],
)
def test_reduction_factor(size: tuple[int, int], factor: int) -> None:
    assert reduction_factor(*size) == factor
