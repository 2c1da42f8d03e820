"""Hash image bytes in memory: exact digests of the bytes plus PDQ and pHash of the picture.

Bytes are never written anywhere: they are hashed, decoded from :class:`io.BytesIO` and dropped.
Decoding is defensive: the pixel count in the header is checked before any pixel is decoded,
truncated or corrupt data gives a digest with ``error`` set (exact hashes still present), and
JPEGs are decoded at reduced scale (``draft``) so hashing does not stall a crawl.

One decode per image feeds every perceptual hash, and it decodes luma only (PDQ, pHash and
border detection all work on luma): a JPEG decodes its Y plane straight to an "L" picture at
the smallest DCT scale (``draft``: 1/2, 1/4, 1/8) whose shorter side is still at least
:data:`~matchers.algorithms.PDQ_MIN_DECODE_SIDE`; other formats are converted to "L" and
reduced by an integer factor (``Image.reduce``, a box average) to the same floor. PDQ
(:mod:`matchers.pdq`) filters that picture directly, which keeps it within a few bits of
full-resolution ``pdqhash.compute``; pHash takes a 32x32 reduction of it.

Canonical hashes and variants. Uniform borders (letterbox / pillarbox bars, mattes; see
:func:`matchers.imageops.border_box_array`) are trimmed first, and when a border was found the
canonical ``pdq`` / ``phash`` are those of the *trimmed* picture, so a copy with bars added
matches the original, and a copy with bars removed matches a bordered original.
``pdq_variants`` / ``phash_variants`` are every hash a matcher should query, without
duplicates: the eight dihedral hashes of the canonical frame (first = the canonical hash; see
:data:`matchers.imageops.DIHEDRAL_ORDER`; all eight from one DCT), then the hash of the
untrimmed canonical frame when a border was trimmed (what a list hashed elsewhere, without
trimming, recorded), then the canonical hash of each further frame of an animation (at most
:data:`~matchers.algorithms.ANIMATION_MAX_HASHED_FRAMES` frames hashed, spread over at most
:data:`~matchers.algorithms.ANIMATION_MAX_FRAMES_INSPECTED` frames decoded).

Only what can be queried is computed: ``digest_bytes(..., algorithms=...)`` names the
algorithms the loaded lists hold; without ``pdq`` no PDQ is computed (``pdq``,
``pdq_quality`` None, no variants), without ``phash`` no pHash, and without either the image
is not decoded at all (``width`` / ``height`` None). The exact digests are always computed.

PDQ hex form: ``pdqhash.compute`` returns 256 bits; bit ``i`` of that vector is bit ``7 - i % 8``
of byte ``i // 8`` (most significant bit first), i.e. ``np.packbits(bits).hex()``. This is the
same text python-threatexchange produces (``"%0*X" % (64, int("".join(bits), 2))``, lowercased),
so hashes exchanged with ThreatExchange / HMA compare directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Collection, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from matchers.algorithms import (
    ALGORITHMS,
    ANIMATION_MAX_FRAMES_COUNTED,
    ANIMATION_MAX_FRAMES_INSPECTED,
    ANIMATION_MAX_HASHED_FRAMES,
    ANIMATION_PIXEL_BUDGET,
    MAX_IMAGE_PIXELS,
    PERCEPTUAL_ALGORITHMS,
)
from matchers.errors import DecodeError, ImageTooLarge, NotAnImage
from matchers.imageops import (
    Box,
    border_box_array,
    draft_size,
    frame_schedule,
    gif_frame_count,
    luma_array,
    pdq_bits_to_hex,
    pdq_hex_to_bits,
    phash_dihedral_luma,
    phash_luma,
    reduction_factor,
)
from matchers.pdq import pdq_hashes
from matchers.sniff import sniff_image

__all__ = [
    "ERROR_CODES",
    "DecodedImage",
    "ImageDigest",
    "animation_frames",
    "decode_image",
    "digest_bytes",
    "digest_file",
    "exact_digest",
    "pdq_bits_to_hex",
    "pdq_hex_to_bits",
    "perceptual_hashes",
]

#: Short codes that :attr:`ImageDigest.error` can take.
ERROR_CODES: Final = ("too_large", "truncated", "corrupt", "unsupported")

#: Pillow plugin allowed to open each sniffed format (nothing else is tried).
_PIL_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "gif": ("GIF",),
    "webp": ("WEBP",),
    "bmp": ("BMP",),
    "tiff": ("TIFF",),
    "ico": ("ICO",),
    "avif": ("AVIF",),
}
_HIGH_DEPTH_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES: Final = frozenset({"RGBA", "LA", "La", "RGBa", "PA"})
_WHITE: Final = (255, 255, 255)
#: EXIF orientations that need a transpose (1 is upright).
_ORIENTATIONS_TO_FIX: Final = frozenset(range(2, 9))
_UINT16_TO_UINT8: Final = 257.0  # 65535 / 255
_UINT16_MAX: Final = 65535
_UINT8_MAX: Final = 255
#: Exceptions Pillow's decoders raise on bad input (its plugins are not uniform about it).
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)


@dataclass(frozen=True, slots=True)
class ImageDigest:
    """Everything the matcher needs about one image; never the image itself."""

    md5: str
    sha1: str
    sha256: str
    pdq: str | None
    pdq_quality: int | None
    phash: str | None
    format: str | None
    width: int | None
    height: int | None
    frames: int
    error: str | None
    #: Every PDQ hash a matcher should query (first = ``pdq``); empty when ``pdq`` is None.
    pdq_variants: tuple[str, ...] = ()
    #: Every pHash a matcher should query (first = ``phash``); empty when ``phash`` is None.
    phash_variants: tuple[str, ...] = ()

    def hashes(self) -> dict[str, str]:
        """Algorithm name -> lowercase hex, for the hashes that were computed."""
        found = {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256}
        if self.pdq is not None:
            found["pdq"] = self.pdq
        if self.phash is not None:
            found["phash"] = self.phash
        return found

    def as_dict(self) -> dict[str, object]:
        """Plain-value form for JSON, Redis and notices."""
        return {
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "phash": self.phash,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "error": self.error,
            "pdq_variants": list(self.pdq_variants),
            "phash_variants": list(self.phash_variants),
        }


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Upright luma ("L") pictures at hashing scale, plus facts about the original.

    ``luma`` is the first frame; ``more_frames`` the further frames hashed of an animation;
    ``frames_inspected`` how many frames were decoded to get them (bounded, see
    :data:`~matchers.algorithms.ANIMATION_MAX_FRAMES_INSPECTED`); ``frames`` the frame count
    of the file (GIF: counted up to :data:`~matchers.algorithms.ANIMATION_MAX_FRAMES_COUNTED`).
    """

    luma: Image.Image
    width: int
    height: int
    frames: int
    more_frames: tuple[Image.Image, ...] = ()
    frames_inspected: int = 1


def digest_bytes(
    data: bytes,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    algorithms: Collection[str] = ALGORITHMS,
) -> ImageDigest:
    """Hash image bytes held in memory.

    The MD5/SHA-1/SHA-256 of the raw bytes are computed for anything that sniffs as an image,
    so an exact list entry matches even a file Pillow cannot decode. PDQ and pHash (and their
    variants, see the module docstring) come from one reduced-scale decode; when decoding is
    refused or fails they are ``None`` and ``error`` holds a code from :data:`ERROR_CODES`.
    ``algorithms`` (names of :data:`~matchers.algorithms.ALGORITHMS`) limits the perceptual
    hashes to those named; without ``pdq`` and ``phash`` no pixel is decoded: only the header
    is read (size, pixel limit, a header Pillow cannot identify), so damaged pixel data is
    not noticed then.

    Raises:
        NotAnImage: the bytes do not start with a known image signature.
        ValueError: ``algorithms`` names an unknown algorithm.
    """
    perceptual = _perceptual(algorithms)
    image_format = sniff_image(data)
    if image_format is None:
        raise NotAnImage("bytes do not start with a known image signature")
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    sha256 = hashlib.sha256(data).hexdigest()

    def without_pictures(
        code: str | None, width: int | None = None, height: int | None = None
    ) -> ImageDigest:
        return ImageDigest(
            md5, sha1, sha256, None, None, None, image_format, width, height, 1, code
        )

    try:
        if not perceptual:
            width, height = image_size(data, image_format, max_pixels=max_pixels)
            return without_pictures(None, width, height)
        decoded = decode_image(data, image_format, max_pixels=max_pixels)
    except ImageTooLarge as exc:
        return without_pictures("too_large", exc.width, exc.height)
    except DecodeError as exc:
        return without_pictures(exc.code, exc.width, exc.height)
    pdq_variants, quality, phash_variants = perceptual_hashes(decoded, algorithms=perceptual)
    return ImageDigest(
        md5=md5,
        sha1=sha1,
        sha256=sha256,
        pdq=pdq_variants[0] if pdq_variants else None,
        pdq_quality=quality,
        phash=phash_variants[0] if phash_variants else None,
        format=image_format,
        width=decoded.width,
        height=decoded.height,
        frames=decoded.frames,
        error=None,
        pdq_variants=pdq_variants,
        phash_variants=phash_variants,
    )


def exact_digest(
    data: bytes, *, format: str | None, error: str | None = None, frames: int = 1
) -> ImageDigest:
    """MD5, SHA-1 and SHA-256 of ``data`` and no perceptual hash: what is known of a file that
    is not an image (``format`` as :func:`matchers.sniff.sniff_file` names it, ``frames``
    0), or of an image that could not be hashed (``error`` set). ``hashlib`` releases the GIL
    on large inputs, so a thread may call this while another crawls."""
    return ImageDigest(
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        pdq=None,
        pdq_quality=None,
        phash=None,
        format=format,
        width=None,
        height=None,
        frames=frames,
        error=error,
    )


def _perceptual(algorithms: Collection[str]) -> frozenset[str]:
    """The perceptual algorithms among ``algorithms``, after checking every name."""
    if isinstance(algorithms, str):
        raise ValueError(f"algorithms must be a collection of names, not the string {algorithms!r}")
    unknown = sorted(set(algorithms) - set(ALGORITHMS))
    if unknown:
        expected = ", ".join(ALGORITHMS)
        raise ValueError(f"unknown algorithms {unknown}, expected names from: {expected}")
    return frozenset(algorithms) & frozenset(PERCEPTUAL_ALGORITHMS)


def _crop(pixels: npt.NDArray[np.uint8], box: Box | None) -> npt.NDArray[np.uint8]:
    if box is None:
        return pixels
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


def perceptual_hashes(
    decoded: DecodedImage, *, algorithms: Collection[str] = PERCEPTUAL_ALGORITHMS
) -> tuple[tuple[str, ...], int | None, tuple[str, ...]]:
    """(PDQ variants, PDQ quality of the canonical frame, pHash variants) of a decoded image;
    the first variant of each is the canonical hash (see the module docstring). An algorithm
    not in ``algorithms`` gives no variants (and quality None for PDQ)."""
    want_pdq = "pdq" in algorithms
    want_phash = "phash" in algorithms
    pdq_list: list[str] = []
    phash_list: list[str] = []
    quality: int | None = None
    pixels = luma_array(decoded.luma)
    box = border_box_array(pixels)
    if want_pdq:
        hashes, quality = pdq_hashes(_crop(pixels, box))
        pdq_list.extend(hashes)
        if box is not None:
            pdq_list.append(pdq_hashes(pixels, dihedral=False)[0][0])
    if want_phash:
        phash_list.extend(phash_dihedral_luma(decoded.luma, box))
        if box is not None:
            phash_list.append(phash_luma(decoded.luma))
    for frame in decoded.more_frames:
        frame_pixels = luma_array(frame)
        frame_box = border_box_array(frame_pixels)
        if want_pdq:
            pdq_list.append(pdq_hashes(_crop(frame_pixels, frame_box), dihedral=False)[0][0])
        if want_phash:
            phash_list.append(phash_luma(frame, frame_box))
    return tuple(dict.fromkeys(pdq_list)), quality, tuple(dict.fromkeys(phash_list))


def digest_file(path: str | os.PathLike[str]) -> ImageDigest:
    """Read a file into memory and :func:`digest_bytes` it (for reference directories)."""
    return digest_bytes(Path(path).read_bytes())


def image_size(
    data: bytes, image_format: str, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[int, int]:
    """Width and height from the header of an image in ``image_format`` (as sniffed), with
    no pixel decoded.

    Raises:
        ImageTooLarge: the header announces more than ``max_pixels`` pixels.
        DecodeError: ``unsupported`` format, or ``corrupt``: Pillow cannot read the header.
    """
    with _opened(data, image_format, max_pixels) as im:
        width, height = im.size
    return width, height


def decode_image(
    data: bytes, image_format: str | None = None, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> DecodedImage:
    """Safely decode ``data`` into upright luma pictures for hashing (see :class:`DecodedImage`).

    Large images come back reduced, the shorter side still at least
    :data:`~matchers.algorithms.PDQ_MIN_DECODE_SIDE` (JPEG: the Y plane decoded at a DCT-domain
    ``draft`` scale; others: :func:`~matchers.imageops.reduction_factor`), and the longer side
    brought to about :data:`~matchers.algorithms.PERCEPTUAL_MAX_SIDE` if it was far above (a
    panorama). Animated GIF, PNG and WebP images also
    yield up to :data:`~matchers.algorithms.ANIMATION_MAX_HASHED_FRAMES` further frames; a
    damaged later frame ends the animation quietly (the first frame is what counts).

    Raises:
        NotAnImage: unknown signature.
        ImageTooLarge: the header announces more than ``max_pixels`` pixels (or Pillow's own
            decompression-bomb limit refuses it); no pixel has been decoded.
        DecodeError: ``code`` is ``truncated``, ``corrupt`` or ``unsupported``.
    """
    if image_format is None:
        image_format = sniff_image(data)
        if image_format is None:
            raise NotAnImage("bytes do not start with a known image signature")
    with _opened(data, image_format, max_pixels) as im:
        width, height = im.size
        frames = _frame_count(im, data)
        if im.format in ("JPEG", "MPO"):
            _draft(im, width, height)
        im.load()
        luma = _prepare(im)
        more_frames, inspected = _more_frames(im, frames, width * height)
    return DecodedImage(
        luma=luma,
        width=width,
        height=height,
        frames=frames,
        more_frames=more_frames,
        frames_inspected=inspected,
    )


_ANIMATED_FORMATS: Final = frozenset({"GIF", "PNG", "WEBP"})


def animation_frames(
    data: bytes, image_format: str, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> Generator[tuple[float, Image.Image]]:
    """Every frame of an animated image in ``image_format`` (as sniffed), in order: when it
    is shown (seconds from the first frame, from the frames' durations) and its upright luma
    at hashing scale, as :func:`decode_image` prepares frames.

    Frames are decoded one at a time, each drawn over the one before; only the frame yielded
    is held. The caller bounds how many it takes (:func:`matchers.video.digest_video` samples
    animations longer than an image's frames are looked into this way).

    Raises:
        ImageTooLarge: the canvas is larger than ``max_pixels`` (before any pixel is decoded).
        DecodeError: as :func:`decode_image`; a damaged frame raises when it is reached.
    """
    with _opened(data, image_format, max_pixels) as im:
        shown = 0.0
        for index in range(_frame_count(im, data)):
            if index:
                im.seek(index)
            im.load()
            yield shown, _prepare(im)
            duration = im.info.get("duration")
            if isinstance(duration, int | float) and duration > 0:
                shown += float(duration) / 1000


@contextlib.contextmanager
def _opened(data: bytes, image_format: str, max_pixels: int) -> Iterator[Image.Image]:
    """The image opened by its format's plugin (header only, no pixel decoded), refused when
    its header announces more than ``max_pixels``; what Pillow raises, in the block too,
    becomes :class:`ImageTooLarge` or :class:`DecodeError`."""
    plugins = _PIL_FORMATS.get(image_format)
    if plugins is None:
        raise DecodeError("unsupported", f"no decoder for {image_format} images")
    width: int | None = None
    height: int | None = None
    try:
        with _open(data, plugins) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"{width}x{height} image exceeds the limit of {max_pixels} pixels",
                    width=width,
                    height=height,
                )
            yield im
    except Image.DecompressionBombError:
        raise ImageTooLarge(
            "image exceeds Pillow's decompression-bomb limit", width=width, height=height
        ) from None
    except UnidentifiedImageError:
        raise DecodeError("corrupt", f"{image_format} data could not be identified") from None
    except _DECODE_ERRORS as exc:
        raise _decode_error(exc, image_format, width, height) from None


def _prepare(im: Image.Image) -> Image.Image:
    """The current frame, upright, as luma ("L") at hashing scale."""
    if im.getexif().get(ExifTags.Base.Orientation, 1) in _ORIENTATIONS_TO_FIX:
        im = ImageOps.exif_transpose(im)
    luma = _to_luma(im)
    factor = reduction_factor(*luma.size)
    if factor > 1:
        return luma.reduce(factor)
    # A greyscale frame may come back as the opened image itself, which seeking to the next
    # frame of an animation would draw over: the frame kept must be a picture of its own.
    return luma.copy() if luma is im else luma


def _frame_count(im: Image.Image, data: bytes) -> int:
    """Frames in the file. Pillow's GIF ``n_frames`` walks every frame of the file, so GIF
    frames are counted by :func:`gif_frame_count`, bounded."""
    if im.format == "GIF":
        return gif_frame_count(data, ANIMATION_MAX_FRAMES_COUNTED)
    return int(getattr(im, "n_frames", 1))


def _more_frames(im: Image.Image, frames: int, pixels: int) -> tuple[tuple[Image.Image, ...], int]:
    """Further frames to hash of an animation, and how many frames were decoded in all.

    Frames are reached by decoding every frame before them (GIF and APNG frames are drawn
    over the previous ones), so at most ANIMATION_MAX_FRAMES_INSPECTED frames and
    ANIMATION_PIXEL_BUDGET pixels are decoded."""
    if frames <= 1 or im.format not in _ANIMATED_FORMATS:
        return (), 1
    budget = max(1, ANIMATION_PIXEL_BUDGET // max(1, pixels))
    available = min(frames, ANIMATION_MAX_FRAMES_INSPECTED, budget)
    more: list[Image.Image] = []
    inspected = 1
    for index in frame_schedule(available, ANIMATION_MAX_HASHED_FRAMES)[1:]:
        try:
            im.seek(index)
            im.load()
        except _DECODE_ERRORS:
            break
        inspected = index + 1
        more.append(_prepare(im))
    return tuple(more), inspected


# warnings.catch_warnings() swaps process-wide state and is not thread-safe (Python < 3.14):
# the crawler hashes in a thread pool, so every use of it here is serialized by this lock.
_WARNINGS_LOCK = threading.Lock()


def _open(data: bytes, plugins: list[str] | tuple[str, ...]) -> Image.Image:
    """``Image.open`` (header only, no pixels decoded) without Pillow's decompression-bomb
    warning escaping: the caller checks its own, lower, pixel limit right after. Pillow's
    DecompressionBombError (far above any sane limit) still propagates."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=plugins)


def _decode_error(
    exc: BaseException, image_format: str, width: int | None, height: int | None
) -> DecodeError:
    """Map a Pillow exception to a short code, without echoing any data."""
    if isinstance(exc, EOFError) or "truncated" in str(exc):
        return DecodeError(
            "truncated", f"{image_format} data is truncated", width=width, height=height
        )
    reason = f"{image_format} data is corrupt ({type(exc).__name__})"
    return DecodeError("corrupt", reason, width=width, height=height)


def _draft(im: Image.Image, width: int, height: int) -> None:
    """Ask the JPEG decoder for its Y plane only ("L"; a colour JPEG's chroma is then not
    reconstructed) at a 1/2, 1/4 or 1/8 scale that keeps enough pixels. draft() picks the
    smallest scale whose result is still at least the requested size; CMYK and grayscale
    JPEGs keep their mode."""
    im.draft("L", draft_size(width, height))


def _to_luma(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit luma ("L"), through :func:`_to_rgb` when it is not direct."""
    if im.mode == "L":
        return im
    if im.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_scale_to_uint8(np.asarray(im), im.mode))
    return _to_rgb(im).convert("L")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited onto white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_scale_to_uint8(np.asarray(im), mode)).convert("RGB")
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def _scale_to_uint8(values: npt.NDArray[np.generic], mode: str) -> npt.NDArray[np.uint8]:
    """Scale 16-bit / 32-bit / float samples to 0..255 (Pillow's convert("L") clips instead)."""
    samples = np.nan_to_num(values.astype(np.float64))
    low = float(samples.min()) if samples.size else 0.0
    high = float(samples.max()) if samples.size else 0.0
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= _UINT16_MAX):
        scaled = samples / _UINT16_TO_UINT8
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = samples * _UINT8_MAX
    elif high > low:
        scaled = (samples - low) * (_UINT8_MAX / (high - low))
    else:
        scaled = np.zeros_like(samples)
    return np.clip(np.rint(scaled), 0, _UINT8_MAX).astype(np.uint8)
