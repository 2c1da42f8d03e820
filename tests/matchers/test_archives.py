"""Archives opened in memory: members digested, nesting followed, bombs refused, never a raise.

Every archive is written here, in memory, by the standard library, from generated images."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import py7zr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.imagegen import encode_video, textured_image
from matchers import archives
from matchers.archives import ArchiveLimits, ArchiveReport, digest_archive
from matchers.digest import digest_bytes
from matchers.sniff import sniff_file
from matchers.video import VideoLimits, digest_video
from tests.matchers.imagegen import encode, make_rgb

PNG = encode(make_rgb(71, 96, 80), "PNG")
JPEG = encode(make_rgb(72, 120, 90), "JPEG")
TEXT = b"a benign note\n" * 50


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _open(data: bytes, limits: ArchiveLimits | None = None) -> ArchiveReport:
    kind = sniff_file(data)
    assert kind is not None and kind.media_type == "archive"
    return digest_archive(data, kind.format, limits=limits)


def _paths(report: ArchiveReport) -> dict[str, tuple[str, str]]:
    return {m.path: (m.media_type, m.digest.sha256) for m in report.members}


def test_a_zip_s_members_are_digested_like_downloaded_bodies() -> None:
    report = _open(_zip({"pics/a.png": PNG, "pics/b.jpg": JPEG, "notes/readme.txt": TEXT}))
    assert _paths(report) == {
        "pics/a.png": ("image", hashlib.sha256(PNG).hexdigest()),
        "pics/b.jpg": ("image", hashlib.sha256(JPEG).hexdigest()),
        "notes/readme.txt": ("file", hashlib.sha256(TEXT).hexdigest()),
    }
    image = next(m for m in report.members if m.path == "pics/a.png").digest
    assert image.pdq == digest_bytes(PNG).pdq and image.pdq_variants
    assert (report.encrypted, dict(report.refused)) == (0, {})


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tars_plain_and_compressed_are_read_in_one_pass(mode: str) -> None:
    report = _open(_tar({"a.png": PNG, "b/readme.txt": TEXT}, mode))
    assert set(_paths(report)) == {"a.png", "b/readme.txt"}
    assert dict(report.refused) == {}


def test_nested_archives_are_opened_to_depth_two_and_then_hashed_only() -> None:
    inner = _zip({"deep.png": PNG})
    middle = _tar({"inner.zip": inner, "m.jpg": JPEG})
    outer = _zip({"middle.tar.gz": middle})
    report = _open(outer)
    assert set(_paths(report)) == {
        "middle.tar.gz",
        "middle.tar.gz!/inner.zip",
        "middle.tar.gz!/m.jpg",
    }
    assert dict(report.refused) == {"depth": 1}  # inner.zip is a member, not opened
    report = _open(outer, ArchiveLimits(max_depth=3))
    assert _paths(report)["middle.tar.gz!/inner.zip!/deep.png"][0] == "image"
    assert dict(report.refused) == {}


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_a_single_compressed_file_is_one_member(compress: Callable[[bytes], bytes]) -> None:
    report = _open(compress(PNG))
    assert [(m.path, m.media_type, m.digest.sha256) for m in report.members] == [
        ("", "image", hashlib.sha256(PNG).hexdigest())
    ]


def test_a_gzip_stream_is_named_by_its_header() -> None:
    out = io.BytesIO()
    with gzip.GzipFile(filename="holiday\n.png", mode="wb", fileobj=out) as stream:
        stream.write(PNG)
    [member] = _open(out.getvalue()).members
    assert member.path == "holiday?.png"  # control characters never reach a record


def test_zip_bombs_of_every_kind_are_refused_and_counted() -> None:
    zeros = b"\x00" * (8 * 1024 * 1024)  # deflates to ~8 kB: a ratio of ~1000
    report = _open(_zip({"a.png": PNG, "zeros.bin": zeros}))
    assert set(_paths(report)) == {"a.png"} and dict(report.refused) == {"ratio": 1}
    big = bytes(range(256)) * 4096  # 1 MiB that hardly compresses
    report = _open(_zip({"big.bin": big, "a.png": PNG}), ArchiveLimits(max_member_bytes=500_000))
    assert set(_paths(report)) == {"a.png"} and dict(report.refused) == {"too_large": 1}
    many = _zip({f"n{i}.txt": TEXT for i in range(15)})  # within twice the limit: listed
    report = _open(many, ArchiveLimits(max_members=10))
    assert len(report.members) == 10 and dict(report.refused) == {"members": 1}
    report = _open(many, ArchiveLimits(max_total_bytes=len(TEXT) * 5))
    assert len(report.members) == 5 and dict(report.refused) == {"total": 1}


def test_tar_and_stream_bombs_stop_the_archive_without_decompressing_it() -> None:
    zeros = b"\x00" * (4 * 1024 * 1024)
    report = _open(
        _tar({"a.png": PNG, "zeros": zeros, "b.png": PNG}),
        ArchiveLimits(max_member_bytes=1024 * 1024),
    )
    # The member after the refused one is not reached: skipping would decompress it.
    assert set(_paths(report)) == {"a.png"} and dict(report.refused) == {"too_large": 1}
    report = _open(gzip.compress(zeros), ArchiveLimits(max_member_bytes=1024 * 1024))
    assert report.members == [] and dict(report.refused) == {"too_large": 1}
    report = _open(gzip.compress(zeros))  # under the cap, but a ratio of ~1000
    assert report.members == [] and dict(report.refused) == {"ratio": 1}


def test_encrypted_members_are_counted_never_read() -> None:
    data = bytearray(_zip({"secret.png": PNG, "open.png": JPEG}, zipfile.ZIP_STORED))
    # Set the "encrypted" flag of the first member, in its local and its central header.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 0x01
    data[central + 8] |= 0x01
    report = _open(bytes(data))
    assert set(_paths(report)) == {"open.png"} and report.encrypted == 1


def test_damaged_and_unsupported_archives_are_counted() -> None:
    whole = _zip({"a.png": PNG, "b.png": JPEG})
    assert dict(_open(whole[: len(whole) // 2]).refused) == {"corrupt": 1}
    assert dict(_open(b"\x1f\x8b\x08\x00" + b"\xff" * 100).refused) == {"corrupt": 1}
    seven = b"7z\xbc\xaf\x27\x1c" + b"\x00" * 100
    assert dict(_open(seven).refused) == {"corrupt": 1}
    rar = b"Rar!\x1a\x07\x01\x00" + b"\x00" * 100
    assert dict(_open(rar).refused) == {"unsupported": 1}


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="max_members"):
        ArchiveLimits(max_members=0)
    with pytest.raises(ValueError, match="max_depth"):
        ArchiveLimits(max_depth=0)


def _7z(members: dict[str, bytes], **options: Any) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", **options) as archive:
        for name, body in members.items():
            archive.writestr(body, name)
    return out.getvalue()


def test_7z_members_are_digested_in_memory_and_nothing_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _7z({"pics/a.png": PNG, "notes.txt": TEXT, "in.zip": _zip({"deep/b.jpg": JPEG})})
    report = _open(data)
    assert _paths(report) == {
        "pics/a.png": ("image", hashlib.sha256(PNG).hexdigest()),
        "notes.txt": ("file", hashlib.sha256(TEXT).hexdigest()),
        "in.zip": ("archive", report.members[2].digest.sha256),
        "in.zip!/deep/b.jpg": ("image", hashlib.sha256(JPEG).hexdigest()),
    }
    assert report.members[0].digest == digest_bytes(PNG)
    assert (report.encrypted, dict(report.refused)) == (0, {})
    assert list(tmp_path.iterdir()) == []


def test_encrypted_7z_archives_are_counted_never_guessed() -> None:
    content = _7z({"a.png": PNG, "b.txt": TEXT}, password="benign")
    assert (_open(content).members, _open(content).encrypted) == ([], 2)
    headers = _7z({"a.png": PNG}, password="benign", header_encryption=True)
    assert (_open(headers).members, _open(headers).encrypted) == ([], 1)


def test_7z_bomb_guards_hold() -> None:
    zeros = b"\x00" * (8 * 1024 * 1024)
    bomb = _7z({"a.png": PNG, "zeros.bin": zeros, "t.txt": TEXT})
    assert len(bomb) * 200 < len(zeros)
    report = _open(bomb)
    # Refused by its declared size, and then again on the way to t.txt in the solid block:
    # reaching t.txt means decompressing the bomb, which ends the archive.
    assert set(_paths(report)) == {"a.png"}
    assert dict(report.refused) == {"ratio": 2}
    small = ArchiveLimits(max_member_bytes=len(PNG) - 1)
    capped = digest_archive(_7z({"a.png": PNG, "t.txt": TEXT}), limits=small)
    assert (set(_paths(capped)), dict(capped.refused)) == ({"t.txt"}, {"too_large": 1})
    few = digest_archive(_7z({"a": TEXT, "b": TEXT + b"!", "c": PNG}), limits=ArchiveLimits(2))
    assert (set(_paths(few)), dict(few.refused)) == ({"a", "b"}, {"members": 1})


_SEEDS = [
    _zip({"a.png": PNG, "t.txt": TEXT}),
    _tar({"a.png": PNG, "z.zip": _zip({"b": TEXT})}),
    _7z({"a.png": PNG, "t.txt": TEXT}),
]


@settings(max_examples=150, deadline=None)
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10**6),
)
def test_damaged_archives_never_raise(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for at, value in edits:
        data[at % len(data)] = value
    data = data[: max(8, cut % (len(data) + 1))]
    kind = sniff_file(bytes(data))
    if kind is None or kind.media_type != "archive":
        return
    report = digest_archive(bytes(data), kind.format, limits=ArchiveLimits(max_member_bytes=10**6))
    assert all(m.digest.sha256 for m in report.members)


def test_an_xz_stream_asking_for_too_much_memory_is_refused() -> None:
    data = bytearray(lzma.compress(TEXT, format=lzma.FORMAT_XZ))
    # The block header after the 12-byte stream header: its LZMA2 dictionary property says
    # 4 GiB (40), which the decoder would set aside before the first byte comes out.
    start = 12
    size = (data[start] + 1) * 4
    header = data[start : start + size]
    assert header[2:4] == b"\x21\x01"  # the LZMA2 filter, one property byte
    header[4] = 40
    header[-4:] = zlib.crc32(header[:-4]).to_bytes(4, "little")
    data[start : start + size] = header
    assert dict(_open(bytes(data)).refused) == {"corrupt": 1}


def test_an_entry_without_a_name_does_not_hide_the_others() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.png", PNG)
        archive.writestr(zipfile.ZipInfo(""), TEXT)
    report = _open(out.getvalue())
    assert set(_paths(report)) == {"a.png", ""}  # a label only; nothing raised


def test_videos_in_an_archive_are_sampled_within_one_time_budget_for_all() -> None:
    clip = encode_video([(textured_image(7700), 2.0)], container="mpegts", width=160, height=120)
    data = _tar({"a/clip.ts": clip, "b/again.ts": clip})
    report = digest_archive(data)
    expected = digest_video(clip).frames
    assert len(expected) == 2
    assert [(m.path, m.media_type, m.frames) for m in report.members] == [
        ("a/clip.ts", "video", expected),
        ("b/again.ts", "video", expected),
    ]
    spent = digest_archive(data, video_limits=VideoLimits(max_seconds=1e-9))
    assert [(m.media_type, m.frames) for m in spent.members] == [("video", ())] * 2
    # Frames too: four times a video's cap for the whole archive, none after it is spent.
    clips = [
        encode_video([(textured_image(7701 + n), 1.0)], container="mpegts", width=64, height=48)
        for n in range(5)
    ]
    five = _tar({f"{n}.ts": body for n, body in enumerate(clips)})
    capped = digest_archive(five, video_limits=VideoLimits(max_frames=1))
    assert [len(m.frames) for m in capped.members] == [1, 1, 1, 1, 0]
    assert [m.media_type for m in capped.members] == ["video"] * 5
    assert {m.digest.sha256 for m in spent.members} == {hashlib.sha256(clip).hexdigest()}


def test_a_long_animation_in_an_archive_is_sampled_as_a_downloaded_one_is() -> None:
    pictures = [textured_image(7710 + n % 3).resize((64, 48)) for n in range(70)]
    out = io.BytesIO()
    pictures[0].save(out, "WEBP", save_all=True, append_images=pictures[1:], duration=100)
    animation = out.getvalue()
    assert digest_bytes(animation).frames == 70
    report = digest_archive(_zip({"anim.webp": animation, "still.png": PNG}))
    assert [(m.path, m.media_type) for m in report.members] == [
        ("anim.webp", "image"),
        ("still.png", "image"),
    ]
    assert report.members[0].frames == digest_video(animation).frames != ()
    assert report.members[0].digest == digest_bytes(animation)
    assert report.members[1].frames == ()


def test_a_tar_header_cannot_make_the_reader_decompress_past_the_archive_s_bounds() -> None:
    # A pax record (like a GNU long name) is header data tarfile reads whole, before any
    # member's size is checked: 8 MiB of it here, in a few kilobytes of gzip.
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        first = tarfile.TarInfo("a.png")
        first.size = len(PNG)
        archive.addfile(first, io.BytesIO(PNG))
        second = tarfile.TarInfo("b.txt")
        second.size = len(TEXT)
        second.pax_headers = {"comment": "x" * (8 * 1024 * 1024)}
        archive.addfile(second, io.BytesIO(TEXT))
    data = out.getvalue()
    assert len(data) * 200 < 8 * 1024 * 1024
    report = _open(data)
    assert set(_paths(report)) == {"a.png"}
    assert dict(report.refused) == {"ratio": 1}
    budget = ArchiveLimits(max_members=4, max_total_bytes=2 * 1024 * 1024, max_ratio=10_000)
    assert dict(_open(data, budget).refused) == {"total": 1}


def test_every_stream_of_a_multi_stream_file_is_read() -> None:
    assert _open(gzip.compress(TEXT[:50]) + gzip.compress(TEXT[50:])).members[0].digest == (
        digest_archive(gzip.compress(TEXT)).members[0].digest
    )
    whole = _tar({"a.png": PNG, "t.txt": TEXT}, mode="w")
    half = len(whole) // 2
    for pack in (gzip.compress, bz2.compress, lzma.compress):
        report = _open(pack(whole[:half]) + pack(whole[half:]))
        assert _paths(report) == {
            "a.png": ("image", hashlib.sha256(PNG).hexdigest()),
            "t.txt": ("file", hashlib.sha256(TEXT).hexdigest()),
        }
    joined = bz2.compress(TEXT[:10]) + bz2.compress(TEXT[10:])
    assert _open(joined).members[0].digest.sha256 == hashlib.sha256(TEXT).hexdigest()


def test_a_zip_declaring_far_more_members_than_allowed_is_not_listed() -> None:
    data = _zip({f"{n}.txt": TEXT for n in range(50)}, zipfile.ZIP_STORED)
    assert set(_open(data, ArchiveLimits(max_members=30)).refused) == {"members"}
    assert len(_open(data, ArchiveLimits(max_members=30)).members) == 30
    assert len(_open(data, ArchiveLimits(max_members=25)).members) == 25
    unlisted = _open(data, ArchiveLimits(max_members=20))
    assert (unlisted.members, dict(unlisted.refused)) == ([], {"members": 1})


def test_a_body_met_again_is_recorded_with_its_first_digest_not_hashed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    real = digest_bytes

    def counting(body: bytes, **kw: Any) -> Any:
        decoded.append(len(body))
        return real(body, **kw)

    monkeypatch.setattr(archives, "digest_bytes", counting)
    inner = _zip({"x.png": PNG})
    report = _open(_tar({"a.png": PNG, "b/a-again.png": PNG, "i.zip": inner, "j.zip": inner}))
    assert [(m.path, m.media_type) for m in report.members] == [
        ("a.png", "image"),
        ("b/a-again.png", "image"),
        ("i.zip", "archive"),
        ("i.zip!/x.png", "image"),
        ("j.zip", "archive"),
    ]
    assert report.members[1].digest == report.members[0].digest == digest_bytes(PNG)
    assert decoded == [len(PNG)]  # the copies and the nested PNG are the same bytes


def test_an_archive_past_its_deadline_reports_what_it_read() -> None:
    report = digest_archive(
        _zip({"a.png": PNG, "t.txt": TEXT}), limits=ArchiveLimits(max_seconds=1e-9)
    )
    assert (report.members, dict(report.refused)) == ([], {"deadline": 1})
    with pytest.raises(ValueError, match="max_seconds"):
        ArchiveLimits(max_seconds=0)


def _understated(data: bytes, name: bytes, size: int) -> bytes:
    """``data`` (a ZIP of one member ``name``) with the member's size declared as ``size``."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    patched[local + 22 : local + 26] = size.to_bytes(4, "little")
    patched[central + 24 : central + 28] = size.to_bytes(4, "little")
    assert name in patched
    return bytes(patched)


# zipfile stops a deflated member at its declared size (then the CRC fails); a bzip2 one it
# would inflate a whole read at a time, hundreds of MiB from a few hundred bytes.
@pytest.mark.parametrize(
    ("method", "refused"), [(zipfile.ZIP_DEFLATED, "corrupt"), (zipfile.ZIP_BZIP2, "ratio")]
)
def test_a_zip_member_that_understates_its_size_is_decompressed_only_to_the_ratio(
    method: int, refused: str
) -> None:
    zeros = b"\x00" * (16 * 1024 * 1024)
    bomb = _understated(_zip({"z.bin": zeros}, method), b"z.bin", 1000)
    report = _open(bomb)
    assert (report.members, dict(report.refused)) == ([], {refused: 1})
    honest = _open(_zip({"t.txt": TEXT * 100}, method))
    assert honest.members[0].digest.sha256 == hashlib.sha256(TEXT * 100).hexdigest()


def test_lzma_zip_members_are_unsupported_and_damaged_bzip2_ones_corrupt() -> None:
    report = _open(_zip({"t.txt": TEXT, "a.png": PNG}, zipfile.ZIP_LZMA))
    assert (report.members, dict(report.refused)) == ([], {"unsupported": 2})
    good = _zip({"t.txt": TEXT * 50}, zipfile.ZIP_BZIP2)
    crc = bytearray(good)
    central = crc.find(b"PK\x01\x02")
    crc[central + 16] ^= 0xFF
    assert dict(_open(bytes(crc)).refused) == {"corrupt": 1}


def test_a_zip_listing_is_bounded_by_its_entries_whatever_the_end_records_say() -> None:
    data = _zip({f"{n}.txt": TEXT for n in range(50)}, zipfile.ZIP_STORED)
    end = data.rfind(b"PK\x05\x06")
    spoofed = bytearray(data)
    spoofed[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # "one entry"
    report = _open(bytes(spoofed), ArchiveLimits(max_members=20))
    assert (report.members, dict(report.refused)) == ([], {"members": 1})


def test_7z_members_with_repeated_or_refused_names_do_not_hide_the_others() -> None:
    report = _open(_7z({"a.png": PNG, "x/../b.txt": TEXT, "c.txt": TEXT + b"!"}))
    assert set(_paths(report)) == {"a.png", "c.txt"}
    assert dict(report.refused) == {"corrupt": 1}
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        archive.writestr(TEXT, "same.txt")
        archive.writestr(PNG, "same.txt")  # the same name again, other bytes
        archive.writestr(JPEG, "last.jpg")
    twice = _open(out.getvalue())
    assert sorted(m.digest.sha256 for m in twice.members) == sorted(
        hashlib.sha256(body).hexdigest() for body in (TEXT, PNG, JPEG)
    )
    assert dict(twice.refused) == {}


def test_a_refused_7z_member_still_counts_against_the_ratio_and_the_deadline() -> None:
    zeros = b"\x00" * (16 * 1024 * 1024)
    data = _7z({"big.bin": zeros, "a.png": PNG})  # big.bin precedes a.png in the solid block
    assert len(data) * 200 < len(zeros)
    report = _open(data, ArchiveLimits(max_member_bytes=1024 * 1024))
    assert report.members == []
    assert dict(report.refused) == {"too_large": 1, "ratio": 1}
    late = digest_archive(
        data, limits=ArchiveLimits(max_member_bytes=1 << 20, max_ratio=10**6, max_seconds=1e-9)
    )
    assert dict(late.refused) in ({"too_large": 1, "deadline": 1}, {"deadline": 1})
