"""Hash lists as hotlines receive them, besides the native CSV of :mod:`matchers.lists`.

Three more formats, each read all-or-nothing into ``list[ListEntry]`` and validated by the same
helpers as the native CSV, so every error is one :class:`HashListError` naming the file, the
1-based physical line and the field at fault:

**Plain** (:func:`read_plain`): one hash per line of a single, given algorithm::

    # comment lines and blank lines are skipped; surrounding whitespace is ignored
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

Each entry's id is ``algorithm:hash``, as in the native format when the id is left empty.

**Vendor CSV** (:func:`read_vendor_csv`): another system's export, read through a column
mapping ``{algorithm: column}`` plus optional id and category columns::

    ID;MD5;PDQHash;Category;Added
    a-17;8F14E45FCEEA167A5A36DEDD4BEA2543;;B1;2024-02-01

A row gives one entry per mapped algorithm whose cell is not empty, all sharing the row's id
(the id column, else ``algorithm:hash`` of the row's strongest hash in the order
:data:`ROW_ID_PREFERENCE`), so the matcher reports one match per listed item. Columns that are
not mapped are ignored; the header must name every mapped column (matched case-insensitively,
surrounding spaces ignored). The delimiter is ``,``, ``;`` or tab: the first of them whose
header row names every mapped column, unless one is given. A UTF-8 BOM is skipped and UTF-16
files (with BOM, as spreadsheet programs write "Unicode text") are decoded.

**vPDQ** (:func:`read_vpdq`): one video's frame hashes as Meta's vPDQ hasher writes them,
``frame_number,quality,pdq_hex,timestamp`` per line::

    0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000

Every frame of quality :data:`VPDQ_MIN_QUALITY` or more becomes a PDQ entry with the video's
id, prefixed ``vpdq:`` (repeated hashes once), so the matcher sees one *video entry* of
several frame hashes and applies its video rule (:data:`matchers.index.VIDEO_MATCH_PERCENT`).

Hex is lowercase-only unless ``lenient_case=True`` (vendors often ship uppercase MD5): then it
is lowercased on the way in. The native format stays strict.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from matchers.algorithms import ALGORITHMS
from matchers.errors import HashListError
from matchers.lists import VIDEO_ENTRY_PREFIX, ListEntry, _checked_entry

__all__ = [
    "COMMENT_PREFIX",
    "ROW_ID_PREFERENCE",
    "VENDOR_DELIMITERS",
    "VPDQ_MIN_QUALITY",
    "parse_plain_text",
    "parse_vendor_csv_text",
    "parse_vpdq_text",
    "read_plain",
    "read_text",
    "read_vendor_csv",
    "read_vpdq",
]

#: A line of a plain file starting with this (after spaces) is a comment.
COMMENT_PREFIX: Final = "#"
#: Delimiters tried, in this order, when a vendor CSV's delimiter is not given.
VENDOR_DELIMITERS: Final = (",", ";", "\t")
#: Without an id column, a vendor row's id is ``algorithm:hash`` of its first hash in this order.
ROW_ID_PREFERENCE: Final = ("sha256", "sha1", "md5", "pdq", "phash")
_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_text(path: str | os.PathLike[str]) -> str:
    """A list file's text: UTF-8 (BOM skipped), or UTF-16 when it starts with a UTF-16 BOM.

    Raises:
        OSError: the file cannot be read.
        HashListError: the bytes are not valid in that encoding (naming the line).
    """
    source = os.fspath(path)
    data = Path(path).read_bytes()
    encoding = "utf-16" if data.startswith(_UTF16_BOMS) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise HashListError(source, line, None, f"file is not valid {encoding.upper()}") from None


def _entry(
    source: str,
    line: int,
    *,
    algorithm: str,
    hash_text: str,
    entry_id: str = "",
    category: str = "",
    lenient_case: bool,
) -> ListEntry:
    """The native format's validation, with uppercase hex lowercased first when lenient."""
    if lenient_case:
        hash_text = hash_text.lower()
    return _checked_entry(
        source,
        line,
        algorithm=algorithm,
        hash_text=hash_text,
        entry_id=entry_id,
        category=category,
    )


def _check_algorithm(source: str, algorithm: str, field: str) -> None:
    if algorithm not in ALGORITHMS:
        reason = f"unknown algorithm {algorithm!r}, expected one of: {', '.join(ALGORITHMS)}"
        raise HashListError(source, None, field, reason)


# -- plain: one hash per line ---------------------------------------------------------------


def read_plain(
    path: str | os.PathLike[str], algorithm: str, *, lenient_case: bool = False
) -> list[ListEntry]:
    """Read a one-hash-per-line file of ``algorithm`` hashes (all-or-nothing).

    Raises:
        OSError: the file cannot be read.
        HashListError: unknown algorithm, invalid hash (naming its line, field ``hash``),
            a hash repeated from an earlier line, or text that is not UTF-8.
    """
    return parse_plain_text(
        read_text(path), algorithm, source=os.fspath(path), lenient_case=lenient_case
    )


def parse_plain_text(
    text: str, algorithm: str, *, source: str, lenient_case: bool = False
) -> list[ListEntry]:
    """Parse the plain format from text; ``source`` names it in error messages."""
    _check_algorithm(source, algorithm, "algorithm")
    entries: list[ListEntry] = []
    seen: dict[str, int] = {}
    # Split on "\n" only: str.splitlines() would also split on \x0b, \x1c, U+2028 ...
    # and shift every line number after them.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        value = raw.strip()
        if not value or value.startswith(COMMENT_PREFIX):
            continue
        entry = _entry(
            source, number, algorithm=algorithm, hash_text=value, lenient_case=lenient_case
        )
        if entry.hash in seen:
            reason = f"duplicate hash: same as line {seen[entry.hash]}"
            raise HashListError(source, number, "hash", reason)
        seen[entry.hash] = number
        entries.append(entry)
    return entries


# -- vendor CSV: column mapping -------------------------------------------------------------


def read_vendor_csv(
    path: str | os.PathLike[str],
    mapping: Mapping[str, str],
    *,
    id_column: str | None = None,
    category_column: str | None = None,
    delimiter: str | None = None,
    lenient_case: bool = False,
) -> list[ListEntry]:
    """Read another system's CSV export through a column mapping (all-or-nothing).

    ``mapping`` maps algorithm names to the columns holding those hashes, e.g.
    ``{"md5": "MD5", "pdq": "PDQHash"}``. See the module docstring for the rules.

    Raises:
        OSError: the file cannot be read.
        HashListError: bad mapping or delimiter, a mapped column missing from the header,
            wrong field count, a row without any hash, an invalid hash, id or category (the
            field named is the file's column), a duplicate row, or CSV syntax errors.
    """
    return parse_vendor_csv_text(
        read_text(path),
        mapping,
        source=os.fspath(path),
        id_column=id_column,
        category_column=category_column,
        delimiter=delimiter,
        lenient_case=lenient_case,
    )


def parse_vendor_csv_text(
    text: str,
    mapping: Mapping[str, str],
    *,
    source: str,
    id_column: str | None = None,
    category_column: str | None = None,
    delimiter: str | None = None,
    lenient_case: bool = False,
) -> list[ListEntry]:
    """Parse a vendor CSV from text; ``source`` names it in error messages."""
    text = text.removeprefix("\ufeff")
    wanted = _wanted_columns(source, mapping, id_column, category_column, delimiter)
    delimiters = (delimiter,) if delimiter is not None else VENDOR_DELIMITERS
    chosen = _choose_delimiter(source, text, wanted, delimiters)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=chosen, strict=True)
    header: dict[str, int] | None = None
    width = 0
    entries: list[ListEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    try:
        for row in _non_blank(reader):
            line = reader.line_num
            if header is None:
                header = _header_positions(source, line, row, wanted)
                width = len(row)
                continue
            if len(row) != width:
                raise HashListError(
                    source, line, None, f"expected {width} fields like the header, got {len(row)}"
                )
            for entry in _row_entries(
                source,
                line,
                row,
                header,
                mapping,
                id_column=id_column,
                category_column=category_column,
                lenient_case=lenient_case,
            ):
                key = (entry.algorithm, entry.hash, entry.id)
                if key in seen:
                    reason = f"duplicate: same {entry.algorithm} hash and id as line {seen[key]}"
                    raise HashListError(source, line, mapping[entry.algorithm], reason)
                seen[key] = line
                entries.append(entry)
    except csv.Error as exc:
        raise HashListError(source, reader.line_num or None, None, f"CSV syntax: {exc}") from None
    if header is None:
        columns = ", ".join(wanted)
        raise HashListError(source, None, None, f"empty file: missing header naming {columns}")
    return entries


def _wanted_columns(
    source: str,
    mapping: Mapping[str, str],
    id_column: str | None,
    category_column: str | None,
    delimiter: str | None,
) -> list[str]:
    """Every column the mapping names, validated; raises HashListError (no line)."""
    if not mapping:
        raise HashListError(source, None, None, "no column mapping: map at least one algorithm")
    if delimiter is not None and len(delimiter) != 1:
        raise HashListError(source, None, None, f"delimiter must be one character: {delimiter!r}")
    for algorithm in mapping:
        _check_algorithm(source, algorithm, "mapping")
    wanted = [*mapping.values()]
    wanted += [c for c in (id_column, category_column) if c is not None]
    folded = [c.strip().casefold() for c in wanted]
    for column, key in zip(wanted, folded, strict=True):
        if not key:
            raise HashListError(source, None, "mapping", "empty column name")
        if not column.isprintable():  # it is named in messages, which are one line
            reason = f"column name {column!r} contains control characters"
            raise HashListError(source, None, "mapping", reason)
        if folded.count(key) > 1:
            raise HashListError(source, None, column, "column mapped more than once")
    return wanted


def _non_blank(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    for row in reader:
        if any(cell.strip() for cell in row):
            yield row


def _first_row(text: str, delimiter: str) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return next(_non_blank(reader), [])
    except csv.Error:
        return []


def _choose_delimiter(
    source: str, text: str, wanted: list[str], delimiters: tuple[str, ...]
) -> str:
    """The first delimiter whose header names every wanted column.

    When none does, the one that splits the header into the most fields is used, so the
    header check reports which column is missing.
    """
    best, best_fields = delimiters[0], -1
    for delimiter in delimiters:
        names = {cell.strip().casefold() for cell in _first_row(text, delimiter)}
        if all(column.strip().casefold() in names for column in wanted):
            return delimiter
        if len(names) > best_fields:
            best, best_fields = delimiter, len(names)
    return best


def _header_positions(source: str, line: int, row: list[str], wanted: list[str]) -> dict[str, int]:
    """Wanted column -> index in the row; raises naming the first missing column."""
    folded = [cell.strip().casefold() for cell in row]
    positions: dict[str, int] = {}
    for column in wanted:
        key = column.strip().casefold()
        if key not in folded:
            found = ", ".join(repr(cell.strip()) for cell in row)
            reason = f"column missing from the header (it has {found})"
            raise HashListError(source, line, column, reason)
        if folded.count(key) > 1:
            raise HashListError(source, line, column, "header names this column more than once")
        positions[column] = folded.index(key)
    return positions


def _row_entries(
    source: str,
    line: int,
    row: list[str],
    header: dict[str, int],
    mapping: Mapping[str, str],
    *,
    id_column: str | None,
    category_column: str | None,
    lenient_case: bool,
) -> list[ListEntry]:
    """The entries of one row, sharing its id; fields in errors are the file's columns."""
    cells = {
        algorithm: row[header[column]].strip()
        for algorithm, column in mapping.items()
        if row[header[column]].strip()
    }
    if not cells:
        columns = ", ".join(mapping.values())
        raise HashListError(source, line, columns, "row has no hash: every mapped column is empty")
    entry_id = row[header[id_column]] if id_column is not None else ""
    category = row[header[category_column]] if category_column is not None else ""
    field_of: dict[str, str | None] = {"id": id_column, "category": category_column}
    entries: list[ListEntry] = []
    try:
        for algorithm in sorted(cells, key=ROW_ID_PREFERENCE.index):
            field_of["hash"] = mapping[algorithm]
            entry = _entry(
                source,
                line,
                algorithm=algorithm,
                hash_text=cells[algorithm],
                entry_id=entry_id,
                category=category,
                lenient_case=lenient_case,
            )
            entry_id = entry.id  # without an id, the strongest hash names the whole row
            entries.append(entry)
    except HashListError as exc:
        column = field_of.get(exc.field or "") or exc.field
        raise HashListError(exc.path, exc.line, column, exc.reason) from None
    return entries


# -- vPDQ: one video's frame hashes ---------------------------------------------------------

#: vPDQ frames below this quality are left out, as Meta's vPDQ matcher leaves them out.
VPDQ_MIN_QUALITY: Final = 50
_VPDQ_FIELDS: Final = 4
_PDQ_HEX_LENGTH: Final = 64
_QUALITY_MAX: Final = 100
_DIGITS: Final = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() takes "²"


def read_vpdq(
    path: str | os.PathLike[str],
    *,
    entry_id: str,
    category: str = "",
    min_quality: int = VPDQ_MIN_QUALITY,
) -> list[ListEntry]:
    """Read one video's vPDQ hash file as PDQ entries sharing ``entry_id`` (all-or-nothing).

    Raises:
        OSError: the file cannot be read.
        HashListError: a malformed line (naming its line and field), no frame of the
            quality needed, or text that is not UTF-8.
    """
    return parse_vpdq_text(
        read_text(path),
        source=os.fspath(path),
        entry_id=entry_id,
        category=category,
        min_quality=min_quality,
    )


def parse_vpdq_text(
    text: str,
    *,
    source: str,
    entry_id: str,
    category: str = "",
    min_quality: int = VPDQ_MIN_QUALITY,
) -> list[ListEntry]:
    """Parse Meta's vPDQ text: one frame per line, ``frame_number,quality,pdq_hex,timestamp``
    as the vPDQ hasher writes it (the hash may also come second, before the quality, as the
    Python binding prints it). Frame numbers must increase; frames below ``min_quality``
    are dropped and repeated hashes kept once (vPDQ's own dedupe), so the entry holds every
    distinct frame hash worth matching, under the id ``vpdq:<entry_id>``
    (:data:`~matchers.lists.VIDEO_ENTRY_PREFIX`: what marks a video entry). Uppercase hex is
    accepted."""
    if not entry_id.startswith(VIDEO_ENTRY_PREFIX):
        entry_id = VIDEO_ENTRY_PREFIX + entry_id
    entries: list[ListEntry] = []
    seen: set[str] = set()
    last_frame = -1
    frames = 0
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith(COMMENT_PREFIX):
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != _VPDQ_FIELDS:
            reason = f"expected {_VPDQ_FIELDS} comma-separated fields, got {len(fields)}"
            raise HashListError(source, number, None, reason)
        if len(fields[1]) == _PDQ_HEX_LENGTH:  # frame,hash,quality,time (the Python binding)
            fields[1], fields[2] = fields[2], fields[1]
        frame_text, quality_text, hash_text, time_text = fields
        if not _DIGITS.fullmatch(frame_text) or int(frame_text) <= last_frame:
            reason = f"must be a frame number above the previous one ({last_frame}), got "
            raise HashListError(source, number, "frame_number", reason + repr(frame_text))
        last_frame = int(frame_text)
        if not _DIGITS.fullmatch(quality_text) or int(quality_text) > _QUALITY_MAX:
            reason = f"must be an integer 0..{_QUALITY_MAX}, got {quality_text!r}"
            raise HashListError(source, number, "quality", reason)
        try:
            seconds = float(time_text)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            reason = f"must be a number of seconds, got {time_text!r}"
            raise HashListError(source, number, "timestamp", reason)
        entry = _entry(
            source,
            number,
            algorithm="pdq",
            hash_text=hash_text,
            entry_id=entry_id,
            category=category,
            lenient_case=True,
        )
        frames += 1
        if int(quality_text) < min_quality or entry.hash in seen:
            continue
        seen.add(entry.hash)
        entries.append(entry)
    if not entries:
        reason = (
            f"no frame of quality {min_quality} or more ({frames} frames)"
            if frames
            else "no frame hashes"
        )
        raise HashListError(source, None, None, reason)
    return entries
