"""Property tests of the hash-list formats (the native CSV, plain, vendor CSV and vPDQ): whatever
the text, a list of valid entries or one :class:`HashListError` on one line naming the source
(and a line of the text when it names one), never another exception, within a time bound."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from matchers.algorithms import ALGORITHMS, HEX_LENGTHS, normalize_hash
from matchers.errors import HashListError
from matchers.formats import (
    parse_plain_text,
    parse_vendor_csv_text,
    parse_vpdq_text,
    read_plain,
    read_vendor_csv,
    read_vpdq,
)
from matchers.lists import MAX_ID_LENGTH, ListEntry, format_csv, parse_csv_text, read_csv
from tests.helpers import PARSER_BOUND

BOUND = PARSER_BOUND
SOURCE = "list.txt"
MD5_A = "8f14e45fceea167a5a36dedd4bea2543"
PDQ_A = "4acc" * 16

# -- building blocks: valid hashes, and the ways real files get them wrong --------------------

#: What turns up inside and around hashes: non-hex letters, NUL, digits that are not ASCII,
#: a BOM mid-file, separators of other formats, line separators that are not "\n".
ODD = [
    "g",
    "\x00",
    "é",
    "٣",
    "²",
    "ａ",
    " ",
    "\t",
    "\r",
    "\x0b",
    "\x85",
    "\u2028",
    "\ufeff",
    ",",
    ";",
    '"',
    "#",
]
PADDING = st.sampled_from(["", "", " ", "\t", "  ", "\xa0", "\u3000", "\x0c", "\x1c"])
JUNK = st.text(max_size=30) | st.sampled_from(["", "#", "# comment", "  # indented", "\x00", "﻿"])


def hex_of(algorithm: str) -> st.SearchStrategy[str]:
    size = HEX_LENGTHS.get(algorithm, 32) // 2
    return st.binary(min_size=size, max_size=size).map(bytes.hex)


@st.composite
def near(draw: st.DrawFn, valid: str) -> str:
    """``valid`` as it is, padded, or damaged in one of the ways real lists damage it."""
    kind = draw(st.integers(0, 11))
    if kind <= 3:
        return draw(PADDING) + valid + draw(PADDING)
    if kind == 4:
        return valid.upper()
    if kind == 5:
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from(ODD)) + valid[at:]
    if kind == 6:
        return valid[: draw(st.integers(0, max(0, len(valid) - 1)))]
    if kind == 7:
        return valid + draw(st.sampled_from(["0", "00", "f" * 32]))
    if kind == 8:
        return f'"{valid}"'
    if kind == 9:
        return valid * draw(st.sampled_from([2, 5000]))  # up to a 320 000-character line
    if kind == 10:
        return "".join(chr(0x660 + int(c, 16)) if c.isdigit() else c for c in valid)
    return draw(JUNK)


def hash_cell(algorithm: str) -> st.SearchStrategy[str]:
    return hex_of(algorithm).flatmap(near)


ID_CELL = st.text(max_size=20) | st.sampled_from(
    ["", "a-17", "  spaced  ", "x" * 257, "e\x07", "a,b", 'q"uote', "# not a comment", "\u2028"]
)


@st.composite
def joined(draw: st.DrawFn, lines: list[str]) -> str:
    """Lines joined as files join them: LF, CRLF, CR or a mix, maybe a BOM, maybe a last EOL."""
    style = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    text = ""
    for number, line in enumerate(lines):
        if number:
            text += draw(st.sampled_from(["\n", "\r\n", "\r"])) if style == "mixed" else style
        text += line
    if draw(st.booleans()):
        text += "\n"
    return draw(st.sampled_from(["", "", "", "\ufeff", "\ufeff\ufeff"])) + text


def csv_line(draw: st.DrawFn, cells: list[str], delimiter: str) -> str:
    """A row written properly (quoted where needed) or naively (broken by its own quotes)."""
    if draw(st.booleans()):
        buffer = io.StringIO(newline="")
        csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
        return buffer.getvalue()
    return delimiter.join(cells)


# -- what every answer must be ---------------------------------------------------------------


def physical_lines(text: str, *, csv_rules: bool) -> int:
    """Lines a parser may name: split on "\\n" only, or as the csv module splits (CR too)."""
    if csv_rules:
        return len(re.split(r"\r\n|\r|\n", text))
    return text.count("\n") + 1


def check_error(exc: HashListError, text: str, *, source: str = SOURCE, csv_rules: bool) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(source), message
    assert exc.path == source
    if exc.line is not None:
        assert 1 <= exc.line <= physical_lines(text, csv_rules=csv_rules), message


def check_entries(entries: list[ListEntry]) -> None:
    for entry in entries:
        assert entry.algorithm in ALGORITHMS
        assert normalize_hash(entry.algorithm, entry.hash) == entry.hash
        assert entry.id and entry.id == entry.id.strip() and entry.id.isprintable()
        assert entry.category == entry.category.strip() and entry.category.isprintable()
        assert len(entry.id) <= MAX_ID_LENGTH and len(entry.category) <= MAX_ID_LENGTH


# -- the native CSV ---------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    ["algorithm", "hash", "id", "category", " hash ", "Hash", "extra", "", "x\ny", "#hash"]
)


@st.composite
def native_documents(draw: st.DrawFn) -> str:
    columns = list(draw(st.permutations(["algorithm", "hash", "id", "category"])))
    columns = columns[: draw(st.integers(1, 4))]
    if draw(st.integers(0, 4)) == 0:
        columns[draw(st.integers(0, len(columns) - 1))] = draw(HEADER_NAMES)
    if draw(st.integers(0, 9)) == 0:
        columns.append(draw(HEADER_NAMES))
    lines = [csv_line(draw, columns, ",")]
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(JUNK))
            continue
        algorithm = draw(st.sampled_from(ALGORITHMS))
        cells = {
            "algorithm": draw(PADDING) + algorithm + draw(PADDING)
            if draw(st.integers(0, 5))
            else draw(st.sampled_from(["MD5", "md4", "", "sha-1", "pdq\x00"])),
            "hash": draw(hash_cell(algorithm)),
            "id": draw(ID_CELL),
            "category": draw(ID_CELL),
        }
        row = [cells.get(column.strip(), draw(JUNK)) for column in columns]
        if draw(st.integers(0, 7)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, draw(JUNK)]
        lines.append(csv_line(draw, row, ","))
    if draw(st.integers(0, 4)) == 0:
        lines.insert(0, draw(st.sampled_from(["# vendor list", "", "   ", ",,,"])))
    return draw(joined(lines))


@BOUND
@given(native_documents())
@example('algorithm,hash,"x\ny"\nmd5,8f14e45fceea167a5a36dedd4bea2543,a\n')
@example('algorithm,hash,"id\n",id\n')
def test_a_native_csv_is_entries_or_one_error_line(text: str) -> None:
    try:
        entries = parse_csv_text(text, source=SOURCE)
    except HashListError as exc:
        check_error(exc, text, csv_rules=True)
    else:
        check_entries(entries)
        keys = [(e.algorithm, e.hash, e.id) for e in entries]
        assert len(keys) == len(set(keys))


PRINTABLE = st.text(
    st.characters(
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
        include_characters=" ,;\"'#",
    ),
    max_size=MAX_ID_LENGTH + 2,
).map(str.strip)
VALID_ENTRIES = st.lists(
    st.sampled_from(ALGORITHMS).flatmap(
        lambda algorithm: st.builds(
            ListEntry,
            st.just(algorithm),
            hex_of(algorithm),
            PRINTABLE.filter(lambda s: len(s) <= MAX_ID_LENGTH),
            PRINTABLE.filter(lambda s: len(s) <= MAX_ID_LENGTH),
        )
    ),
    max_size=12,
    unique_by=lambda e: (e.algorithm, e.hash, e.id or f"{e.algorithm}:{e.hash}"),
)


@BOUND
@given(VALID_ENTRIES)
def test_the_native_csv_reads_back_what_it_writes(entries: list[ListEntry]) -> None:
    expected = [
        ListEntry(e.algorithm, e.hash, e.id or f"{e.algorithm}:{e.hash}", e.category)
        for e in entries
    ]
    assert parse_csv_text(format_csv(entries), source=SOURCE) == expected


# -- plain ------------------------------------------------------------------------------------


@st.composite
def plain_cases(draw: st.DrawFn) -> tuple[str, str, bool]:
    algorithm = draw(
        st.sampled_from(ALGORITHMS) | st.sampled_from(["MD5", "md4", "", " sha1", "pdq\n"])
    )
    shape = algorithm if algorithm in ALGORITHMS else "md5"
    line = (
        hash_cell(shape)
        | hash_cell(shape)
        | st.sampled_from(ALGORITHMS).flatmap(hex_of)  # a hash of another algorithm
        | JUNK
    )
    return draw(joined(draw(st.lists(line, max_size=10)))), algorithm, draw(st.booleans())


@BOUND
@given(plain_cases())
@example((f"# note\u2028more\n{MD5_A}\n{MD5_A.upper()}\n", "md5", True))
def test_a_plain_list_is_entries_or_one_error_line(case: tuple[str, str, bool]) -> None:
    text, algorithm, lenient = case
    try:
        entries = parse_plain_text(text, algorithm, source=SOURCE, lenient_case=lenient)
    except HashListError as exc:
        check_error(exc, text, csv_rules=False)
        if exc.field == "hash" and exc.line is not None:  # the line named holds a hash
            value = text.removeprefix("\ufeff").split("\n")[exc.line - 1].strip()
            assert value and not value.startswith("#")
    else:
        check_entries(entries)
        assert {e.algorithm for e in entries} <= {algorithm}
        assert len({e.hash for e in entries}) == len(entries)


# -- vendor CSV -------------------------------------------------------------------------------

COLUMN_NAMES = ["MD5", "PDQHash", "SHA-1", "sha256", "Hash", " md5 ", "Col;2", "Col,3", "ID", ""]


@st.composite
def vendor_cases(
    draw: st.DrawFn,
) -> tuple[str, dict[str, str], str | None, str | None, str | None, bool]:
    algorithms = draw(st.lists(st.sampled_from(ALGORITHMS), unique=True, max_size=3))
    names = st.sampled_from(COLUMN_NAMES) | st.text(max_size=8)
    mapping = {algorithm: draw(names) for algorithm in algorithms}
    if draw(st.integers(0, 9)) == 0:
        mapping[draw(st.sampled_from(["md4", "MD5", ""]))] = draw(names)
    id_column = draw(st.none() | st.sampled_from(["ID", "Id ", "md5"]))
    category_column = draw(st.none() | st.sampled_from(["Category", "ID"]))
    delimiter = draw(st.none() | st.none() | st.sampled_from([",", ";", "\t", "|", "", ";;"]))
    file_delimiter = draw(st.sampled_from([",", ";", "\t"]))
    header = [*mapping.values(), *(c for c in (id_column, category_column) if c)]
    header += draw(st.lists(st.sampled_from(["Added", "Note", "ID"]), max_size=2))
    header = list(draw(st.permutations(header)))
    if header and draw(st.integers(0, 5)) == 0:
        header.pop(draw(st.integers(0, len(header) - 1)))
    if draw(st.integers(0, 5)) == 0:
        header = [name.upper() for name in header]
    column_algorithm = {column: algorithm for algorithm, column in mapping.items()}
    lines = [csv_line(draw, header, file_delimiter)]
    for _ in range(draw(st.integers(0, 6))):
        row = []
        for column in header:
            algorithm = column_algorithm.get(column)
            if algorithm in ALGORITHMS and draw(st.integers(0, 4)):
                row.append(draw(hash_cell(algorithm)))
            elif column in (id_column, category_column):
                row.append(draw(ID_CELL))
            else:
                row.append(draw(st.just("") | JUNK))
        if draw(st.integers(0, 7)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, ""]
        lines.append(csv_line(draw, row, file_delimiter) if row else draw(JUNK))
    text = draw(joined(lines))
    return text, mapping, id_column, category_column, delimiter, draw(st.booleans())


@BOUND
@given(vendor_cases())
@example(("MD5\n", {"md5": "M\nD5"}, None, None, None, False))
@example((f"MD5\n{MD5_A}\n", {"md5": "MD5"}, "I\rD", None, None, False))
def test_a_vendor_csv_is_entries_or_one_error_line(
    case: tuple[str, dict[str, str], str | None, str | None, str | None, bool],
) -> None:
    text, mapping, id_column, category_column, delimiter, lenient = case
    try:
        entries = parse_vendor_csv_text(
            text,
            mapping,
            source=SOURCE,
            id_column=id_column,
            category_column=category_column,
            delimiter=delimiter,
            lenient_case=lenient,
        )
    except HashListError as exc:
        check_error(exc, text, csv_rules=True)
    else:
        check_entries(entries)
        assert {e.algorithm for e in entries} <= set(mapping)


# -- vPDQ -------------------------------------------------------------------------------------

NUMBER_ODDITIES = ["²", "١", "０", "-1", "1.0", "0x1", " ", "", "9" * 12, "1_0", "+1"]
TIMESTAMPS = st.floats(0, 1e6).map(lambda t: f"{t:.3f}") | st.sampled_from(
    ["nan", "inf", "-inf", "-0", "1e400", "1_0", "０", "", "0x1p3", " 1.5 ", "Infinity"]
)


@st.composite
def vpdq_cases(draw: st.DrawFn) -> tuple[str, str, int]:
    lines: list[str] = []
    frame = draw(st.integers(-2, 3))
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 6)) == 0:
            lines.append(draw(JUNK))
            continue
        frame += draw(st.sampled_from([1, 1, 1, 2, 30, 0, -1]))
        frame_text = (
            str(frame) if draw(st.integers(0, 6)) else draw(st.sampled_from(NUMBER_ODDITIES))
        )
        quality = (
            str(draw(st.integers(-5, 110)))
            if draw(st.integers(0, 6))
            else draw(st.sampled_from(NUMBER_ODDITIES))
        )
        fields = [frame_text, quality, draw(hash_cell("pdq")), draw(TIMESTAMPS)]
        if draw(st.integers(0, 4)) == 0:  # the Python binding's order: hash before quality
            fields[1], fields[2] = fields[2], fields[1]
        if draw(st.integers(0, 7)) == 0:
            fields = fields[:-1] if draw(st.booleans()) else [*fields, "x"]
        lines.append(draw(st.sampled_from([",", ", ", " ,"])).join(fields))
    entry_id = draw(st.sampled_from(["v", "vpdq:v", "", "x" * 300, "a\x00", "clip 1"]) | JUNK)
    return draw(joined(lines)), entry_id, draw(st.integers(-10, 120))


@BOUND
@given(vpdq_cases())
@example((f"0,100,{PDQ_A},0.000\n1,80,{PDQ_A},1e400\n", "v", 50))
def test_a_vpdq_file_is_entries_or_one_error_line(case: tuple[str, str, int]) -> None:
    text, entry_id, min_quality = case
    try:
        entries = parse_vpdq_text(text, source=SOURCE, entry_id=entry_id, min_quality=min_quality)
    except HashListError as exc:
        check_error(exc, text, csv_rules=False)
    else:
        assert entries
        check_entries(entries)
        assert {e.algorithm for e in entries} == {"pdq"}
        assert len({e.id for e in entries}) == 1 and entries[0].id.startswith("vpdq:")
        assert len({e.hash for e in entries}) == len(entries)


# -- files: bytes in any encoding, through the readers ------------------------------------------


def _encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


FILE_BYTES = st.builds(
    _encoded,
    st.sampled_from([f"{MD5_A}\n", f"algorithm,hash\nmd5,{MD5_A}\n", f"MD5\n{MD5_A}\n"])
    | st.text(max_size=60),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "latin-1"]),
) | st.binary(max_size=80).map(lambda b: b"\xff\xfe" + b if len(b) % 3 == 0 else b)


@pytest.fixture(scope="module")
def list_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lists") / "list.txt"


@BOUND
@given(data=FILE_BYTES)
@example(data=b"\xff\xfe" + "MD5\n".encode("utf-16-le") + b"\x00")  # odd length: cut UTF-16
@example(data=b"\xff\xfe\x00\xd8")  # a lone surrogate
def test_any_bytes_through_the_readers(list_file: Path, data: bytes) -> None:
    list_file.write_bytes(data)
    readers = [
        lambda: read_csv(list_file),
        lambda: read_plain(list_file, "md5", lenient_case=True),
        lambda: read_vendor_csv(list_file, {"md5": "MD5"}),
        lambda: read_vpdq(list_file, entry_id="v"),
    ]
    for read in readers:
        try:
            entries = read()
        except HashListError as exc:
            message = str(exc)
            assert "\n" not in message and "\r" not in message
            assert message.startswith(str(list_file))
        else:
            check_entries(entries)
