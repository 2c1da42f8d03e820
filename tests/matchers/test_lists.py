"""Hash-list CSV format, serialization and building from a reference directory."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from matchers.algorithms import PDQ_MIN_QUALITY
from matchers.digest import digest_bytes
from matchers.errors import HashListError
from matchers.index import Matcher
from matchers.lists import (
    HashList,
    ListEntry,
    Thresholds,
    build_from_directory,
    format_csv,
    parse_csv_text,
    read_csv,
    validate_list_name,
)
from tests.matchers.imagegen import encode, make_bytes, make_rgb

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "52fa7fdad0d248201af0535eebdaf35a0af21c3515a173dacf7a5e5e30a180a1"
PHASH = "98c2c23d2f2d43de"


def test_good_csv(tmp_path: Path) -> None:
    text = (
        "\ufeff# a comment\n"
        "\n"
        "category,hash,algorithm,id\n"
        f"A,{MD5},md5,item-1\n"
        "# another comment\n"
        f"A,  {SHA1} ,sha1,item-1\n"
        f"B,{SHA256},sha256,\n"
        f",{PDQ},pdq,item-2\n"
        "\n"
        f"B,{PHASH},phash,item-2\n"
    )
    path = tmp_path / "known.csv"
    path.write_text(text, encoding="utf-8")
    entries = read_csv(path)
    assert entries == [
        ListEntry("md5", MD5, "item-1", "A"),
        ListEntry("sha1", SHA1, "item-1", "A"),
        ListEntry("sha256", SHA256, f"sha256:{SHA256}", "B"),
        ListEntry("pdq", PDQ, "item-2", ""),
        ListEntry("phash", PHASH, "item-2", "B"),
    ]


def test_optional_columns_absent() -> None:
    entries = parse_csv_text(f"hash,algorithm\r\n{MD5},md5\r\n", source="x.csv")
    assert entries == [ListEntry("md5", MD5, f"md5:{MD5}", "")]


def test_same_hash_with_different_ids_is_allowed() -> None:
    text = f"algorithm,hash,id\nmd5,{MD5},a\nmd5,{MD5},b\n"
    assert [e.id for e in parse_csv_text(text, source="x.csv")] == ["a", "b"]


HEADER = "algorithm,hash,id,category\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (
            HEADER + f"md5,{MD5},a,\n" + f"sha256,{SHA256[:-1]},b,\n",
            3,
            "hash",
            "expected 64 lowercase hex characters for sha256, got 63",
        ),
        (HEADER + f"crc32,{MD5},a,\n", 2, "algorithm", "unknown algorithm 'crc32'"),
        (HEADER + "md5,,a,\n", 2, "hash", "empty hash"),
        (HEADER + f"md5,{MD5.upper()},a,\n", 2, "hash", "must be lowercase hex"),
        (HEADER + f"md5,{MD5[:-1]}x,a,\n", 2, "hash", "not hex"),
        (HEADER + f"md5,{MD5},a\n", 2, None, "expected 4 fields"),
        (HEADER + f"md5,{MD5},a,b,c\n", 2, None, "expected 4 fields"),
        (
            HEADER + f"md5,{MD5},a,\n\n# c\nmd5,{MD5},a,\n",
            5,
            "hash",
            "same algorithm, hash and id as line 2",
        ),
        (HEADER + f"md5,{MD5},,\nmd5,{MD5},,\n", 3, "hash", "as line 2"),
        (HEADER + f"md5,{MD5},a\tb,\n", 2, "id", "control characters"),
        (HEADER + f"md5,{MD5},{'x' * 300},\n", 2, "id", "longer than"),
        (
            "# c\nalgorithm,hash,id,category,severity\n",
            2,
            "severity",
            "unknown column(s) 'severity'",
        ),
        ("algorithm,hash,hash\n", 1, "hash", "more than once"),
        ("algorithm,id\n", 1, "hash", "required column missing"),
        (f"md5,{MD5}\n", 1, None, "missing header"),
        (HEADER + f'md5,"{MD5}\n', 2, None, "CSV syntax"),
    ],
)
def test_errors_name_line_and_field(text: str, line: int, field: str | None, reason: str) -> None:
    with pytest.raises(HashListError) as info:
        parse_csv_text(text, source="known.csv")
    error = info.value
    assert (error.path, error.line, error.field) == ("known.csv", line, field)
    assert reason in error.reason
    prefix = f"known.csv:{line}: " + (f"field '{field}': " if field else "")
    assert str(error).startswith(prefix)


def test_error_message_example() -> None:
    rows = "".join(f"md5,{MD5[:-2]}{i:02x},,\n" for i in range(5))
    with pytest.raises(HashListError) as info:
        parse_csv_text(HEADER + "\n" + rows + f"sha256,{SHA256[:-1]},,\n", source="known.csv")
    assert str(info.value) == (
        "known.csv:8: field 'hash': expected 64 lowercase hex characters for sha256, got 63"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# only comments\n\n#\n", "\ufeff"])
def test_empty_file(text: str) -> None:
    with pytest.raises(HashListError, match="empty file") as info:
        parse_csv_text(text, source="empty.csv")
    assert info.value.line is None


def test_not_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + f"md5,{MD5},a,\n".encode() + b"md5,x,caf\xe9,\n")
    with pytest.raises(HashListError, match="not valid UTF-8") as info:
        read_csv(path)
    assert (info.value.path, info.value.line) == (str(path), 3)


def test_all_or_nothing(tmp_path: Path) -> None:
    good_rows = "".join(f"md5,{MD5[:-2]}{i:02x},,\n" for i in range(50))
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + good_rows + "md5,nothex,,\n", encoding="utf-8")
    result: list[ListEntry] | None = None
    with pytest.raises(HashListError):
        result = read_csv(path)
    assert result is None
    path.write_text(HEADER + good_rows, encoding="utf-8")
    assert len(read_csv(path)) == 50


def test_format_csv_round_trip() -> None:
    entries = [
        ListEntry("md5", MD5, "a,b", 'quoted "category"'),
        ListEntry("pdq", PDQ, "pdq:x", ""),
    ]
    assert parse_csv_text(format_csv(entries), source="x") == entries


@pytest.mark.parametrize("name", ["iwf", "A1", "hotline-known_v2.3", "x" * 64])
def test_valid_list_names(name: str) -> None:
    assert validate_list_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a b", "a/b", "x" * 65, "é", "a\n"])
def test_invalid_list_names(name: str) -> None:
    with pytest.raises(HashListError, match="invalid list name"):
        validate_list_name(name)
    with pytest.raises(HashListError):
        HashList(name, [])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pdq_confirm": 51}, "pdq_confirm"),
        ({"pdq_confirm": -1}, "pdq_confirm"),
        ({"pdq_review": 257, "pdq_confirm": 31}, "pdq_confirm"),
        ({"phash_confirm": 13}, "phash_confirm"),
        ({"phash_review": 65}, "phash_confirm"),
        ({"pdq_min_quality": 101}, "pdq_min_quality"),
        ({"pdq_confirm": 1.5}, "pdq_confirm"),
        ({"phash_review": True}, "phash_review"),
    ],
)
def test_threshold_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(HashListError) as info:
        Thresholds(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_thresholds_edges_allowed() -> None:
    Thresholds(pdq_confirm=0, pdq_review=0, phash_confirm=64, phash_review=64, pdq_min_quality=0)


def sample_list() -> HashList:
    return HashList(
        name="known-1",
        entries=[
            ListEntry("md5", MD5, "item-1", "A"),
            ListEntry("sha256", SHA256, "item-1", "A"),
            ListEntry("pdq", PDQ, "item-2", "Kategorie Ü"),
            ListEntry("phash", PHASH, "phash:x", ""),
        ],
        thresholds=Thresholds(
            pdq_confirm=20, pdq_review=40, phash_confirm=5, phash_review=9, corroborate=True
        ),
        version=7,
        created="2026-01-02T03:04:05Z",
    )


def test_counts_has_all_algorithms() -> None:
    assert sample_list().counts() == {"md5": 1, "sha1": 0, "sha256": 1, "pdq": 1, "phash": 1}
    assert HashList("empty", []).counts() == dict.fromkeys(
        ("md5", "sha1", "sha256", "pdq", "phash"), 0
    )


def test_serialization_round_trip() -> None:
    original = sample_list()
    blob = original.to_bytes()
    assert HashList.from_bytes(blob) == original
    assert HashList.from_bytes(HashList("e", []).to_bytes()) == HashList("e", [])
    big = HashList("big", [ListEntry("md5", f"{i:032x}", f"id-{i}", "A") for i in range(5000)])
    big_blob = big.to_bytes()
    assert HashList.from_bytes(big_blob) == big
    assert len(big_blob) < 5000 * 40


def test_serialization_rejects_garbage() -> None:
    blob = sample_list().to_bytes()
    with pytest.raises(HashListError, match="not a serialized hash list"):
        HashList.from_bytes(b"garbage")
    with pytest.raises(HashListError, match="truncated"):
        HashList.from_bytes(blob[:-1])
    # Corruption anywhere in the payload is caught by the checksum (tests/matchers/test_codec.py
    # covers forged headers and invalid ids that carry a correct checksum).
    corrupted = bytearray(blob)
    corrupted[-70] ^= 0x01
    with pytest.raises(HashListError, match="checksum"):
        HashList.from_bytes(bytes(corrupted))


def test_reads_the_older_json_form() -> None:
    original = sample_list()
    document = {
        "name": original.name,
        "version": original.version,
        "created": original.created,
        "kind": original.kind,
        "thresholds": original.thresholds.as_dict(),
        "entries": [[e.algorithm, e.hash, e.id, e.category] for e in original.entries],
    }
    old = b"HLHL1\n" + zlib.compress(json.dumps(document).encode())
    assert HashList.from_bytes(old) == original
    with pytest.raises(HashListError, match="cannot decode"):
        HashList.from_bytes(b"HLHL1\nnot zlib")
    tampered = json.dumps(document).replace(MD5, MD5.upper()).encode()
    with pytest.raises(HashListError) as info:
        HashList.from_bytes(b"HLHL1\n" + zlib.compress(tampered))
    assert info.value.field == "hash"
    with pytest.raises(HashListError, match="malformed"):
        HashList.from_bytes(b"HLHL1\n" + zlib.compress(b'{"name":"x"}'))


# --- build_from_directory --------------------------------------------------------------


def write_reference_directory(root: Path) -> dict[str, bytes]:
    """Generated benign images plus files that must be skipped."""
    files = {
        "a.png": make_bytes(61),
        "sub/b.jpeg": make_bytes(62, "JPEG"),
        "sub/deeper/c.dat": make_bytes(63, "WEBP"),  # recognised by magic bytes
        "notes.txt": b"<html>not an image</html>",
        "sub/broken.jpg": make_bytes(64, "JPEG")[:3000],
        "z-copy.png": make_bytes(61),
        "flat.png": encode(make_rgb(65).resize((1, 1)).resize((200, 200)), "PNG"),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_build_from_directory(tmp_path: Path) -> None:
    files = write_reference_directory(tmp_path)
    entries, skipped = build_from_directory(tmp_path, category="B1")
    digests = {
        name: digest_bytes(files[name]) for name in ("a.png", "sub/b.jpeg", "sub/deeper/c.dat")
    }
    expected_ids = [d.sha256[:16] for d in digests.values()]
    flat = digest_bytes(files["flat.png"])
    assert flat.pdq_quality is not None and flat.pdq_quality < PDQ_MIN_QUALITY
    # sorted by relative path: a.png, flat.png, sub/b.jpeg, sub/deeper/c.dat
    ids_in_order = list(dict.fromkeys(e.id for e in entries))
    assert ids_in_order == [expected_ids[0], flat.sha256[:16], *expected_ids[1:]]
    for name, digest in digests.items():
        mine = {e.algorithm: e.hash for e in entries if e.id == digest.sha256[:16]}
        assert mine == digest.hashes(), name
    flat_algorithms = {e.algorithm for e in entries if e.id == flat.sha256[:16]}
    assert flat_algorithms == {"md5", "sha1", "sha256", "phash"}
    assert all(e.category == "B1" for e in entries)
    assert len(entries) == 3 * 5 + 4
    reasons = {Path(p).relative_to(tmp_path).as_posix(): r for p, r in skipped}
    assert reasons == {
        "notes.txt": "not an image",
        "sub/broken.jpg": "undecodable (truncated)",
        "z-copy.png": f"duplicate of {tmp_path / 'a.png'}",
    }
    assert build_from_directory(tmp_path, category="B1") == (entries, skipped)


def test_built_list_matches_the_images(tmp_path: Path) -> None:
    files = write_reference_directory(tmp_path)
    entries, _skipped = build_from_directory(tmp_path)
    hash_list = HashList("reference", entries)
    assert parse_csv_text(format_csv(entries), source="round-trip") == entries
    matcher = Matcher([hash_list])
    recompressed = digest_bytes(encode(make_rgb(62).resize((500, 375)), "JPEG", quality=60))
    [match] = matcher.match(recompressed)
    assert match.entry == digest_bytes(files["sub/b.jpeg"]).sha256[:16]
    assert match.algorithm in {"pdq", "phash"}
    assert match.verdict == "confirmed"


def test_build_from_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(HashListError, match="not a directory"):
        build_from_directory(tmp_path / "absent")
