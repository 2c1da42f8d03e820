"""Plain and vendor-CSV hash lists: good files, and every error naming its line and field."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

from matchers.errors import HashListError
from matchers.formats import (
    parse_plain_text,
    parse_vendor_csv_text,
    parse_vpdq_text,
    read_plain,
    read_vendor_csv,
)
from matchers.lists import ListEntry

MD5_A = "8f14e45fceea167a5a36dedd4bea2543"
MD5_B = "c9f0f895fb98ab9159f51fd0297e236d"
SHA1_A = "a" * 40
PDQ_A = "4acc" * 16
SHA256_A = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def error(excinfo: pytest.ExceptionInfo[HashListError]) -> tuple[int | None, str | None, str]:
    exc = excinfo.value
    return exc.line, exc.field, exc.reason


# -- plain ----------------------------------------------------------------------------------


def test_plain_skips_comments_blanks_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "md5.txt"
    path.write_bytes(
        f"# vendor list, 2024-02-01\n\n  {MD5_A}  \r\n\t# indented comment\n{MD5_B}".encode()
    )
    assert read_plain(path, "md5") == [
        ListEntry("md5", MD5_A, f"md5:{MD5_A}", ""),
        ListEntry("md5", MD5_B, f"md5:{MD5_B}", ""),
    ]


def test_plain_names_the_line_of_a_bad_hash(tmp_path: Path) -> None:
    path = tmp_path / "sha256.txt"
    path.write_text(f"{SHA256_A}\n# comment\n\n{SHA256_A[:-1]}\n")
    with pytest.raises(HashListError) as excinfo:
        read_plain(path, "sha256")
    assert error(excinfo)[:2] == (4, "hash")
    assert str(excinfo.value).startswith(f"{path}:4: field 'hash': expected 64")


def test_plain_refuses_uppercase_unless_lenient() -> None:
    text = f"{MD5_A}\n{MD5_B.upper()}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_plain_text(text, "md5", source="x.txt")
    assert error(excinfo) == (2, "hash", "md5 hash must be lowercase hex")
    entries = parse_plain_text(text, "md5", source="x.txt", lenient_case=True)
    assert [e.hash for e in entries] == [MD5_A, MD5_B]


def test_plain_duplicate_and_unknown_algorithm() -> None:
    with pytest.raises(HashListError) as excinfo:
        parse_plain_text(f"{MD5_A}\n\n{MD5_A.upper()}\n", "md5", source="x", lenient_case=True)
    assert error(excinfo) == (3, "hash", "duplicate hash: same as line 1")
    with pytest.raises(HashListError) as excinfo:
        parse_plain_text(MD5_A, "md4", source="x")
    assert error(excinfo)[:2] == (None, "algorithm")


def test_plain_line_numbers_ignore_unicode_line_separators() -> None:
    # U+2028 inside a comment must not shift the line numbers of later lines.
    text = f"# note\u2028more\n{MD5_A}\nnot-a-hash\n"
    with pytest.raises(HashListError) as excinfo:
        parse_plain_text(text, "md5", source="x")
    assert error(excinfo)[:2] == (3, "hash")


def test_plain_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(f"{MD5_A}\n\xff\xfe{MD5_B}\n".encode("latin-1"))
    with pytest.raises(HashListError) as excinfo:
        read_plain(path, "md5")
    assert error(excinfo)[0] == 2


# -- vendor CSV -----------------------------------------------------------------------------

VENDOR = {"md5": "MD5", "pdq": "PDQHash"}


def test_vendor_row_gives_one_entry_per_hash_sharing_the_id() -> None:
    text = (
        "ID,MD5,PDQHash,Category,Added\n"
        f"a-17,{MD5_A},{PDQ_A},B1,2024-02-01\n"
        f"a-18,{MD5_B},,A1,2024-02-02\n"
        f"a-19,,{PDQ_A},,2024-02-03\n"
    )
    entries = parse_vendor_csv_text(
        text, VENDOR, source="v.csv", id_column="ID", category_column="Category"
    )
    assert entries == [
        ListEntry("md5", MD5_A, "a-17", "B1"),
        ListEntry("pdq", PDQ_A, "a-17", "B1"),
        ListEntry("md5", MD5_B, "a-18", "A1"),
        ListEntry("pdq", PDQ_A, "a-19", ""),
    ]


def test_vendor_row_without_id_column_is_named_by_its_strongest_hash() -> None:
    text = f"PDQHash,MD5,SHA1\n{PDQ_A},{MD5_A},{SHA1_A}\n{PDQ_A},,\n"
    mapping = {"pdq": "PDQHash", "md5": "MD5", "sha1": "SHA1"}
    entries = parse_vendor_csv_text(text, mapping, source="v.csv")
    assert {e.id for e in entries[:3]} == {f"sha1:{SHA1_A}"}
    assert [e.algorithm for e in entries] == ["sha1", "md5", "pdq", "pdq"]
    assert entries[3].id == f"pdq:{PDQ_A}"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_vendor_delimiter_is_detected(delimiter: str) -> None:
    # Cells hold the other candidate delimiters, so only the right one gives the header.
    header = delimiter.join(['"Note, with; marks"', "MD5", "PDQHash"])
    row = delimiter.join(['"a, b; c"', MD5_A, PDQ_A])
    entries = parse_vendor_csv_text(f"{header}\n{row}\n", VENDOR, source="v.csv")
    assert [(e.algorithm, e.hash) for e in entries] == [("md5", MD5_A), ("pdq", PDQ_A)]


def test_vendor_explicit_delimiter_is_the_only_one_tried() -> None:
    text = f"MD5;PDQHash\n{MD5_A};{PDQ_A}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, VENDOR, source="v.csv", delimiter=",")
    assert error(excinfo)[:2] == (1, "MD5")
    assert len(parse_vendor_csv_text(text, VENDOR, source="v.csv", delimiter=";")) == 2


def test_vendor_bom_and_utf16_files(tmp_path: Path) -> None:
    text = f"MD5;PDQHash\r\n{MD5_A};{PDQ_A}\r\n"
    utf8 = tmp_path / "bom.csv"
    utf8.write_bytes(codecs.BOM_UTF8 + text.encode())
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.encode("utf-16"))  # with its BOM, as spreadsheets write it
    expected = [ListEntry("md5", MD5_A, f"md5:{MD5_A}"), ListEntry("pdq", PDQ_A, f"md5:{MD5_A}")]
    assert read_vendor_csv(utf8, VENDOR) == expected
    assert read_vendor_csv(utf16, VENDOR) == expected


def test_vendor_uppercase_needs_lenient_case() -> None:
    text = f"md5 , pdqhash\n{MD5_A.upper()},{PDQ_A.upper()}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, VENDOR, source="v.csv")
    assert error(excinfo) == (2, "MD5", "md5 hash must be lowercase hex")
    entries = parse_vendor_csv_text(text, VENDOR, source="v.csv", lenient_case=True)
    assert [e.hash for e in entries] == [MD5_A, PDQ_A]


def test_vendor_header_must_name_every_mapped_column() -> None:
    text = f"MD5,Hash\n{MD5_A},{PDQ_A}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, VENDOR, source="v.csv")
    line, field, reason = error(excinfo)
    assert (line, field) == (1, "PDQHash")
    assert "missing from the header" in reason and "'Hash'" in reason
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, {"md5": "MD5"}, source="v.csv", id_column="ID")
    assert error(excinfo)[:2] == (1, "ID")


@pytest.mark.parametrize(
    ("row", "line_field", "reason_part"),
    [
        (f"e1,{MD5_A[:-1]},", (3, "MD5"), "expected 32"),
        (f"e1,{MD5_A},{PDQ_A}z", (3, "PDQHash"), "not hex"),
        ("e1,,", (3, "MD5, PDQHash"), "row has no hash"),
        (f"e1,{MD5_A}", (3, None), "expected 3 fields"),
        (f"{'x' * 300},{MD5_A},", (3, "ID"), "longer than 256"),
        (f"e\x07,{MD5_A},", (3, "ID"), "control characters"),
        (f'"e1,{MD5_A},', (3, None), "CSV syntax"),
    ],
)
def test_vendor_row_errors_name_line_and_column(
    row: str, line_field: tuple[int, str | None], reason_part: str
) -> None:
    text = f"ID,MD5,PDQHash\n\n{row}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, VENDOR, source="v.csv", id_column="ID")
    line, field, reason = error(excinfo)
    assert (line, field) == line_field
    assert reason_part in reason


def test_vendor_duplicate_row_names_the_earlier_line() -> None:
    text = f"ID,MD5\ne1,{MD5_A}\ne2,{MD5_A}\ne1,{MD5_A}\n"
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(text, {"md5": "MD5"}, source="v.csv", id_column="ID")
    assert error(excinfo) == (4, "MD5", "duplicate: same md5 hash and id as line 2")


@pytest.mark.parametrize(
    ("mapping", "kwargs", "field"),
    [
        ({}, {}, None),
        ({"md4": "MD4"}, {}, "mapping"),
        ({"md5": "Hash", "sha1": "hash "}, {}, "Hash"),
        ({"md5": "MD5"}, {"id_column": "md5"}, "MD5"),
        ({"md5": "MD5"}, {"delimiter": ";;"}, None),
    ],
)
def test_vendor_bad_mapping(
    mapping: dict[str, str], kwargs: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text(f"MD5\n{MD5_A}\n", mapping, source="v.csv", **kwargs)
    assert error(excinfo)[:2] == (None, field)


def test_vendor_empty_file_and_header_only() -> None:
    with pytest.raises(HashListError) as excinfo:
        parse_vendor_csv_text("\n\n", VENDOR, source="v.csv")
    assert "empty file" in str(excinfo.value)
    assert parse_vendor_csv_text("MD5,PDQHash\n", VENDOR, source="v.csv") == []


# -- vPDQ -----------------------------------------------------------------------------------

PDQ_B = "b1" * 32
PDQ_C = "0f" * 32


def test_vpdq_frames_become_pdq_entries_of_one_video_without_weak_or_repeated_frames() -> None:
    text = (
        "# frame,quality,pdq,timestamp\n"
        f"0,100,{PDQ_A.upper()},0.000\n"
        f"1,49,{PDQ_B},1.000\n"  # below the quality vPDQ matches with
        f"2,80,{PDQ_A},2.000\n"  # the same hash again
        f"5,{PDQ_C},90,5.000\n"  # the Python binding's order: hash before quality
    )
    entries = parse_vpdq_text(text, source="v.txt", entry_id="vid", category="c")
    assert entries == [
        ListEntry("pdq", PDQ_A, "vpdq:vid", "c"),
        ListEntry("pdq", PDQ_C, "vpdq:vid", "c"),
    ]


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (f"1,100,{PDQ_A}", None, "expected 4 comma-separated fields, got 3"),
        (f"0,100,{PDQ_B},1.0", "frame_number", "above the previous one (0), got '0'"),
        (f"x,100,{PDQ_B},1.0", "frame_number", "got 'x'"),
        (f"\u00b2,100,{PDQ_B},1.0", "frame_number", "got '\u00b2'"),
        (f"1,\uff1100,{PDQ_B},1.0", "quality", "got '\uff1100'"),
        (f"1,101,{PDQ_B},1.0", "quality", "0..100, got '101'"),
        (f"1,100,{PDQ_B},-1", "timestamp", "got '-1'"),
        (f"1,100,{PDQ_B},nan", "timestamp", "got 'nan'"),
        (f"1,100,{PDQ_B[:-1]},1.0", "hash", ""),
    ],
)
def test_vpdq_errors_name_the_line_and_field(line: str, field: str | None, reason: str) -> None:
    with pytest.raises(HashListError) as excinfo:
        parse_vpdq_text(f"0,100,{PDQ_A},0.0\n{line}\n", source="v.txt", entry_id="v")
    found_line, found_field, found_reason = error(excinfo)
    assert (found_line, found_field) == (2, field)
    assert reason in found_reason


def test_a_vpdq_file_without_a_usable_frame_is_refused() -> None:
    with pytest.raises(HashListError, match="no frame of quality 50 or more \\(1 frames\\)"):
        parse_vpdq_text(f"0,10,{PDQ_A},0.0\n", source="v.txt", entry_id="v")
    with pytest.raises(HashListError, match="no frame hashes"):
        parse_vpdq_text("# empty\n", source="v.txt", entry_id="v")
