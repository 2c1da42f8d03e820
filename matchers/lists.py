"""Hash lists: the CSV exchange format, validation, a compact serialized form, and building a
list from a reference directory of images.

CSV format (UTF-8, optional BOM)::

    # comment lines and blank lines are skipped
    algorithm,hash,id,category
    sha256,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,entry-1,A1
    pdq,4acc...4ad4,,B2

The header names the columns (any order); ``algorithm`` and ``hash`` are required, ``id`` and
``category`` optional, anything else is an error. Every row is validated and any invalid row
rejects the whole file (:class:`HashListError` with file, physical line and field).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

from matchers import codec
from matchers.algorithms import (
    ALGORITHMS,
    BITS,
    HEX_LENGTHS,
    PDQ_CONFIRM_THRESHOLD,
    PDQ_MIN_QUALITY,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
    normalize_hash,
)
from matchers.alternates import alternate_hashes
from matchers.codec import StringTable
from matchers.digest import digest_bytes
from matchers.errors import HashListError, InvalidHash
from matchers.sniff import SNIFF_BYTES, sniff_image

__all__ = [
    "CSV_COLUMNS",
    "MAX_ID_LENGTH",
    "EntriesView",
    "HashColumn",
    "HashList",
    "ListEntry",
    "Thresholds",
    "build_from_directory",
    "format_csv",
    "parse_csv_text",
    "read_csv",
    "validate_list_name",
]

#: Columns of the CSV format, in the order :func:`format_csv` writes them.
CSV_COLUMNS: Final = ("algorithm", "hash", "id", "category")
_HEADER_HINT: Final = ",".join(CSV_COLUMNS)
_REQUIRED_COLUMNS: Final = frozenset({"algorithm", "hash"})
#: Longest accepted entry id or category.
MAX_ID_LENGTH: Final = 256
#: Characters of the file's SHA-256 used as entry id by :func:`build_from_directory`.
DIRECTORY_ID_HEX_CHARS: Final = 16
_LIST_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PDQ_QUALITY_MAX: Final = 100
_SERIAL_MAGIC_V1: Final = b"HLHL1\n"
_SERIAL_MAGIC: Final = b"HLHL2\n"
_SERIAL_SOURCE: Final = "<serialized hash list>"
#: Upper bound on the decompressed size of a serialized list (defends against zlib bombs).
MAX_SERIALIZED_JSON_BYTES: Final = 2**31


def validate_list_name(name: str) -> str:
    """Return ``name`` if it is a valid list name (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``).

    Raises:
        HashListError: the name is not valid.
    """
    if not isinstance(name, str) or _LIST_NAME_RE.fullmatch(name) is None:
        raise HashListError(
            "<list name>",
            None,
            "name",
            f"invalid list name {name!r}: use 1-64 of A-Z a-z 0-9 . _ - starting alphanumeric",
        )
    return name


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One hash of a list. ``id`` identifies the listed item (several hashes may share it)."""

    algorithm: str
    hash: str
    id: str
    category: str = ""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Per-list match rules: thresholds (Hamming distances), the minimum PDQ quality, and
    whether corroboration confirms.

    With ``corroborate``, an image whose PDQ *and* pHash are both within the review radii of
    one entry (a PDQ row and a pHash row under the same id, as a list built from images has)
    is confirmed as *corroborated*: two independent hashes agreeing is far stronger evidence
    than either alone (see the README's figures).

    Validated on creation: ``0 <= confirm <= review <= bits`` for each perceptual algorithm and
    ``0 <= pdq_min_quality <= 100``.
    """

    pdq_confirm: int = PDQ_CONFIRM_THRESHOLD
    pdq_review: int = PDQ_REVIEW_THRESHOLD
    phash_confirm: int = PHASH_CONFIRM_THRESHOLD
    phash_review: int = PHASH_REVIEW_THRESHOLD
    pdq_min_quality: int = PDQ_MIN_QUALITY
    corroborate: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.corroborate, bool):
            reason = f"must be true or false, got {self.corroborate!r}"
            raise HashListError("<thresholds>", None, "corroborate", reason)
        for name, value in self.as_dict().items():
            if name == "corroborate":
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                reason = f"must be an integer, got {value!r}"
                raise HashListError("<thresholds>", None, name, reason)
        for algorithm in ("pdq", "phash"):
            confirm, review = self.confirm(algorithm), self.review(algorithm)
            bits = BITS[algorithm]
            if not 0 <= confirm <= review <= bits:
                raise HashListError(
                    "<thresholds>",
                    None,
                    f"{algorithm}_confirm",
                    f"need 0 <= {algorithm}_confirm ({confirm}) <= {algorithm}_review "
                    f"({review}) <= {bits}",
                )
        if not 0 <= self.pdq_min_quality <= _PDQ_QUALITY_MAX:
            reason = f"must be 0..{_PDQ_QUALITY_MAX}, got {self.pdq_min_quality}"
            raise HashListError("<thresholds>", None, "pdq_min_quality", reason)

    def confirm(self, algorithm: str) -> int:
        """Confirm threshold of a perceptual algorithm (0 for exact ones)."""
        if algorithm == "pdq":
            return self.pdq_confirm
        if algorithm == "phash":
            return self.phash_confirm
        return 0

    def review(self, algorithm: str) -> int:
        """Review threshold of a perceptual algorithm (0 for exact ones)."""
        if algorithm == "pdq":
            return self.pdq_review
        if algorithm == "phash":
            return self.phash_review
        return 0

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "pdq_confirm": self.pdq_confirm,
            "pdq_review": self.pdq_review,
            "phash_confirm": self.phash_confirm,
            "phash_review": self.phash_review,
            "pdq_min_quality": self.pdq_min_quality,
            "corroborate": self.corroborate,
        }


KNOWN = "known"
ALLOW = "allow"
LIST_KINDS = (KNOWN, ALLOW)

#: Ids of *video entries* (one video's PDQ frame hashes, as a vPDQ import makes them) start
#: with this; the matcher applies its video rule to them
#: (:data:`matchers.index.VIDEO_MATCH_PERCENT`).
VIDEO_ENTRY_PREFIX: Final = "vpdq:"

#: Id number meaning "the default id" (``algorithm:hash``); id ``k >= 1`` is ``ids[k - 1]``.
DEFAULT_ID: Final = 0


@dataclass(frozen=True, slots=True, eq=False)
class HashColumn:
    """The entries of one algorithm, column-wise: row ``i`` is one entry.

    ``hashes`` holds the raw hash bytes (shape ``(n, bits // 8)``, the hex text unhexlified);
    ``ids`` numbers into the list's id table (:data:`DEFAULT_ID` for ``algorithm:hash``, else
    ``k`` for ``id_table[k - 1]``); ``categories`` numbers into its category table.
    """

    hashes: npt.NDArray[np.uint8]
    ids: npt.NDArray[np.unsignedinteger[Any]]
    categories: npt.NDArray[np.unsignedinteger[Any]]

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.ids.nbytes + self.categories.nbytes)

    def words(self) -> npt.NDArray[np.uint64]:
        """The hashes as ``uint64`` rows (a view when the bytes allow it): for Hamming indexes."""
        return np.ascontiguousarray(self.hashes).view(np.uint64)


def _number_type(size: int) -> type[np.unsignedinteger[Any]]:
    for candidate in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(candidate).max:
            return candidate
    return np.uint64


class EntriesView(Sequence[ListEntry]):
    """Read-only sequence of a :class:`HashList`'s entries, made on demand.

    Entries come grouped by algorithm (md5, sha1, sha256, pdq, phash), in list order within
    each; ``len`` is free. Compares equal to any sequence of the same entries.
    """

    def __init__(self, hash_list: HashList) -> None:
        self._list = hash_list

    def __len__(self) -> int:
        return self._list.total

    @overload
    def __getitem__(self, index: int) -> ListEntry: ...

    @overload
    def __getitem__(self, index: slice) -> list[ListEntry]: ...

    def __getitem__(self, index: int | slice) -> ListEntry | list[ListEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("entry index out of range")
        for algorithm, column in self._list.columns.items():
            if index < len(column):
                return self._list.entry(algorithm, index)
            index -= len(column)
        raise IndexError("entry index out of range")  # pragma: no cover - sizes agree

    def __iter__(self) -> Iterator[ListEntry]:
        for algorithm, column in self._list.columns.items():
            for row in range(len(column)):
                yield self._list.entry(algorithm, row)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} entries of {self._list.name!r}>"


class HashList:
    """A named list of hashes with its thresholds; ``created`` is an ISO 8601 UTC timestamp.

    Entries are held column-wise (:class:`HashColumn` per algorithm, plus two string tables
    for entry ids and categories), so a list of millions costs no Python object per entry.
    ``HashList(name, entries=[ListEntry, ...])`` builds the columns; :meth:`from_columns`
    takes them ready-made; :attr:`entries` is a lazy view for small lists and old callers.
    """

    def __init__(
        self,
        name: str,
        entries: Iterable[ListEntry] = (),
        thresholds: Thresholds | None = None,
        version: int = 1,
        created: str = "",
        kind: str = KNOWN,
    ) -> None:
        columns, id_table, category_table = _columns_from_entries(name, entries)
        self._setup(name, columns, id_table, category_table, thresholds, version, created, kind)

    def _setup(
        self,
        name: str,
        columns: Mapping[str, HashColumn],
        id_table: StringTable,
        category_table: StringTable,
        thresholds: Thresholds | None,
        version: int,
        created: str,
        kind: str,
    ) -> None:
        self.name = validate_list_name(name)
        if kind not in LIST_KINDS:
            raise HashListError(
                name, None, "kind", f"must be one of {', '.join(LIST_KINDS)}, got {kind!r}"
            )
        self.kind = kind
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.version = version
        self.created = created
        self.columns: dict[str, HashColumn] = {
            algorithm: columns[algorithm] for algorithm in ALGORITHMS if algorithm in columns
        }
        self.id_table = id_table
        self.category_table = category_table

    @classmethod
    def from_columns(
        cls,
        name: str,
        columns: Mapping[str, HashColumn],
        id_table: StringTable,
        category_table: StringTable,
        *,
        thresholds: Thresholds | None = None,
        version: int = 1,
        created: str = "",
        kind: str = KNOWN,
        source: str = "<hash list columns>",
    ) -> HashList:
        """A list from ready-made columns (arrays are kept, not copied), validated.

        Raises:
            HashListError: unknown algorithm, wrong shapes or dtypes, numbers outside the
                tables, or an invalid id/category string.
        """
        _check_columns(source, columns, id_table, category_table)
        hash_list = cls.__new__(cls)
        hash_list._setup(
            name, columns, id_table, category_table, thresholds, version, created, kind
        )
        return hash_list

    @property
    def entries(self) -> EntriesView:
        return EntriesView(self)

    @property
    def total(self) -> int:
        return sum(len(column) for column in self.columns.values())

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns and string tables."""
        columns = sum(column.nbytes for column in self.columns.values())
        return columns + self.id_table.nbytes + self.category_table.nbytes

    def entry_id(self, algorithm: str, row: int) -> str:
        column = self.columns[algorithm]
        number = int(column.ids[row])
        if number == DEFAULT_ID:
            return f"{algorithm}:{column.hashes[row].tobytes().hex()}"
        return self.id_table[number - 1]

    def entry_category(self, algorithm: str, row: int) -> str:
        return self.category_table[int(self.columns[algorithm].categories[row])]

    def entry(self, algorithm: str, row: int) -> ListEntry:
        hash_hex = self.columns[algorithm].hashes[row].tobytes().hex()
        return ListEntry(
            algorithm, hash_hex, self.entry_id(algorithm, row), self.entry_category(algorithm, row)
        )

    def counts(self) -> dict[str, int]:
        """Number of entries per algorithm; every algorithm is present (0 if none)."""
        counts = dict.fromkeys(ALGORITHMS, 0)
        for algorithm, column in self.columns.items():
            counts[algorithm] = len(column)
        return counts

    def _metadata(self) -> tuple[object, ...]:
        return (self.name, self.kind, self.thresholds, self.version, self.created)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashList):
            return NotImplemented
        if self._metadata() != other._metadata() or self.counts() != other.counts():
            return False
        same_arrays = (
            self.id_table == other.id_table
            and self.category_table == other.category_table
            and all(
                np.array_equal(mine.hashes, theirs.hashes)
                and np.array_equal(mine.ids, theirs.ids)
                and np.array_equal(mine.categories, theirs.categories)
                for mine, theirs in zip(self.columns.values(), other.columns.values(), strict=True)
            )
        )
        return same_arrays or self.entries == other.entries

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"HashList(name={self.name!r}, kind={self.kind!r}, version={self.version}, "
            f"entries={self.total}, thresholds={self.thresholds!r})"
        )

    def to_bytes(self) -> bytes:
        """Compact binary form for Redis (:mod:`matchers.codec`: header + numpy buffers)."""
        meta = {
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "kind": self.kind,
            "thresholds": self.thresholds.as_dict(),
            "algorithms": list(self.columns),
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "ids.blob": self.id_table.blob,
            "ids.offsets": self.id_table.offsets,
            "categories.blob": self.category_table.blob,
            "categories.offsets": self.category_table.offsets,
        }
        for algorithm, column in self.columns.items():
            arrays[f"{algorithm}.hashes"] = column.hashes
            arrays[f"{algorithm}.ids"] = column.ids
            arrays[f"{algorithm}.categories"] = column.categories
        return codec.encode(_SERIAL_MAGIC, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> HashList:
        """Inverse of :meth:`to_bytes`; everything is validated again. Also reads the older
        JSON form (``HLHL1``).

        Raises:
            HashListError: the blob is not a serialized list or any part of it is invalid.
        """
        if data.startswith(_SERIAL_MAGIC_V1):
            return cls._from_json_bytes(data)
        meta, arrays = codec.decode(_SERIAL_MAGIC, data, source=_SERIAL_SOURCE)
        try:
            algorithms = [str(name) for name in meta["algorithms"]]
            thresholds = Thresholds(**meta["thresholds"])
            id_table = StringTable(arrays["ids.blob"], arrays["ids.offsets"])
            category_table = StringTable(arrays["categories.blob"], arrays["categories.offsets"])
            unknown = [name for name in algorithms if name not in ALGORITHMS]
            if unknown or len(set(algorithms)) != len(algorithms):
                raise HashListError(_SERIAL_SOURCE, None, "algorithm", f"bad algorithms {unknown}")
            columns = {
                name: HashColumn(
                    arrays[f"{name}.hashes"], arrays[f"{name}.ids"], arrays[f"{name}.categories"]
                )
                for name in algorithms
            }
            return cls.from_columns(
                str(meta["name"]),
                columns,
                id_table,
                category_table,
                thresholds=thresholds,
                version=int(meta["version"]),
                created=str(meta["created"]),
                kind=str(meta["kind"]),
                source=_SERIAL_SOURCE,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            reason = f"malformed serialized list ({type(exc).__name__})"
            raise HashListError(_SERIAL_SOURCE, None, None, reason) from None

    @classmethod
    def _from_json_bytes(cls, data: bytes | bytearray) -> HashList:
        """The older form: magic line + zlib-compressed JSON with one array per entry."""
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(data[len(_SERIAL_MAGIC_V1) :], MAX_SERIALIZED_JSON_BYTES)
            if inflater.unconsumed_tail:
                raise HashListError(_SERIAL_SOURCE, None, None, "serialized list is too large")
            document = json.loads(raw.decode("utf-8"))
        except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = f"cannot decode serialized list ({type(exc).__name__})"
            raise HashListError(_SERIAL_SOURCE, None, None, reason) from None
        if not isinstance(document, dict):
            raise HashListError(_SERIAL_SOURCE, None, None, "serialized list is not an object")
        try:
            thresholds = Thresholds(**document["thresholds"])
            entries = [
                _checked_entry(
                    _SERIAL_SOURCE,
                    None,
                    algorithm=algorithm,
                    hash_text=hash_text,
                    entry_id=entry_id,
                    category=category,
                )
                for algorithm, hash_text, entry_id, category in document["entries"]
            ]
            return cls(
                name=document["name"],
                entries=entries,
                thresholds=thresholds,
                version=int(document["version"]),
                created=str(document["created"]),
                kind=str(document.get("kind", KNOWN)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            reason = f"malformed serialized list ({type(exc).__name__})"
            raise HashListError(_SERIAL_SOURCE, None, None, reason) from None


def _columns_from_entries(
    name: str, entries: Iterable[ListEntry]
) -> tuple[dict[str, HashColumn], StringTable, StringTable]:
    """Group entries by algorithm into columns; ids and categories into string tables."""
    grouped: dict[str, list[ListEntry]] = {}
    for entry in entries:
        if entry.algorithm not in ALGORITHMS:
            reason = (
                f"unknown algorithm {entry.algorithm!r}, expected one of: {', '.join(ALGORITHMS)}"
            )
            raise HashListError(name, None, "algorithm", reason)
        grouped.setdefault(entry.algorithm, []).append(entry)
    id_numbers: dict[str, int] = {}
    category_numbers: dict[str, int] = {"": 0}
    columns: dict[str, HashColumn] = {}
    for algorithm in ALGORITHMS:
        group = grouped.get(algorithm)
        if not group:
            continue
        hexes = [entry.hash for entry in group]
        joined = "".join(hexes)
        length = HEX_LENGTHS[algorithm]
        if any(len(h) != length for h in hexes) or joined != joined.lower():
            raise HashListError(
                name, None, "hash", f"{algorithm} hashes must be {length} lowercase hex characters"
            )
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raise HashListError(name, None, "hash", f"{algorithm} hash is not hex") from None
        hashes = np.frombuffer(raw, dtype=np.uint8).reshape(len(group), length // 2)
        ids = np.zeros(len(group), dtype=np.uint32)
        categories = np.zeros(len(group), dtype=np.uint32)
        for row, entry in enumerate(group):
            if entry.id and entry.id != f"{algorithm}:{entry.hash}":
                ids[row] = id_numbers.setdefault(entry.id, len(id_numbers) + 1)
            categories[row] = category_numbers.setdefault(entry.category, len(category_numbers))
        columns[algorithm] = HashColumn(hashes, ids, categories)
    id_type = _number_type(len(id_numbers))
    category_type = _number_type(len(category_numbers) - 1)
    columns = {
        algorithm: HashColumn(
            column.hashes, column.ids.astype(id_type), column.categories.astype(category_type)
        )
        for algorithm, column in columns.items()
    }
    return (
        columns,
        StringTable.from_strings(id_numbers),
        StringTable.from_strings(category_numbers),
    )


def _check_columns(
    source: str,
    columns: Mapping[str, HashColumn],
    id_table: StringTable,
    category_table: StringTable,
) -> None:
    id_table.check(source=source, field="id", max_chars=MAX_ID_LENGTH, allow_empty=False)
    category_table.check(source=source, field="category", max_chars=MAX_ID_LENGTH, allow_empty=True)
    for algorithm, column in columns.items():
        if algorithm not in ALGORITHMS:
            raise HashListError(source, None, "algorithm", f"unknown algorithm {algorithm!r}")
        width = HEX_LENGTHS[algorithm] // 2
        n = len(column.hashes)
        if column.hashes.dtype != np.uint8 or column.hashes.shape != (n, width):
            reason = f"{algorithm} hashes must be uint8 of shape (n, {width})"
            raise HashListError(source, None, "hash", reason)
        for field, numbers, limit in (
            ("id", column.ids, len(id_table) + 1),
            ("category", column.categories, len(category_table)),
        ):
            if numbers.shape != (n,) or numbers.dtype.kind != "u":
                reason = f"{algorithm} {field} numbers must be unsigned, one per hash"
                raise HashListError(source, None, field, reason)
            if n and int(numbers.max()) >= limit:
                raise HashListError(source, None, field, f"{algorithm} {field} number out of range")


def _checked_entry(
    source: str, line: int | None, *, algorithm: str, hash_text: str, entry_id: str, category: str
) -> ListEntry:
    """Validate one entry's fields; raise HashListError naming the field."""
    algorithm = algorithm.strip()
    if algorithm not in ALGORITHMS:
        reason = f"unknown algorithm {algorithm!r}, expected one of: {', '.join(ALGORITHMS)}"
        raise HashListError(source, line, "algorithm", reason)
    try:
        value = normalize_hash(algorithm, hash_text)
    except InvalidHash as exc:
        raise HashListError(source, line, "hash", str(exc)) from None
    entry_id = entry_id.strip() or f"{algorithm}:{value}"
    category = category.strip()
    for name, text in (("id", entry_id), ("category", category)):
        if len(text) > MAX_ID_LENGTH:
            raise HashListError(source, line, name, f"longer than {MAX_ID_LENGTH} characters")
        if not text.isprintable():
            raise HashListError(source, line, name, "contains control characters")
    return ListEntry(algorithm=algorithm, hash=value, id=entry_id, category=category)


def read_csv(path: str | os.PathLike[str]) -> list[ListEntry]:
    """Read and validate a hash-list CSV file (all-or-nothing).

    Raises:
        HashListError: naming the file, the 1-based physical line and the field at fault.
    """
    source = os.fspath(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise HashListError(source, line, None, "file is not valid UTF-8") from None
    return parse_csv_text(text, source=source)


def parse_csv_text(text: str, *, source: str) -> list[ListEntry]:
    """Parse and validate CSV text; ``source`` names it in error messages (all-or-nothing).

    Raises:
        HashListError: empty input, bad header, wrong field count, invalid algorithm/hash/id,
            or a row repeating an earlier (algorithm, hash, id).
    """
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    entries: list[ListEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].startswith("#"):
                continue
            if header is None:
                header = _parse_header(source, line, row)
                continue
            if len(row) != len(header):
                reason = f"expected {len(header)} fields ({','.join(header)}), got {len(row)}"
                raise HashListError(source, line, None, reason)
            values = dict(zip(header, row, strict=True))
            entry = _checked_entry(
                source,
                line,
                algorithm=values["algorithm"],
                hash_text=values["hash"],
                entry_id=values.get("id", ""),
                category=values.get("category", ""),
            )
            key = (entry.algorithm, entry.hash, entry.id)
            if key in seen:
                reason = f"duplicate row: same algorithm, hash and id as line {seen[key]}"
                raise HashListError(source, line, "hash", reason)
            seen[key] = line
            entries.append(entry)
    except csv.Error as exc:
        raise HashListError(source, reader.line_num or None, None, f"CSV syntax: {exc}") from None
    if header is None:
        raise HashListError(source, None, None, f"empty file: missing header {_HEADER_HINT}")
    return entries


def _parse_header(source: str, line: int, row: list[str]) -> list[str]:
    columns = [name.strip() for name in row]
    if not _REQUIRED_COLUMNS & set(columns):
        reason = f"missing header: the first row must name the columns {_HEADER_HINT}"
        raise HashListError(source, line, None, reason)
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise HashListError(source, line, _shown(unknown[0]), f"unknown column(s) {names}")
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise HashListError(source, line, duplicated[0], "column named more than once")
    missing = sorted(_REQUIRED_COLUMNS - set(columns))
    if missing:
        raise HashListError(source, line, missing[0], "required column missing")
    return columns


def _shown(name: str) -> str:
    """A column name from the file as a message shows it: control characters (a quoted
    newline) escaped, so the message stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def format_csv(entries: Iterable[ListEntry]) -> str:
    """Write entries in the CSV format :func:`parse_csv_text` reads."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow((entry.algorithm, entry.hash, entry.id, entry.category))
    return buffer.getvalue()


def build_from_directory(
    directory: str | os.PathLike[str],
    *,
    category: str = "",
    framings: Sequence[str] = (),
) -> tuple[list[ListEntry], list[tuple[str, str]]]:
    """Hash every image under ``directory`` (recursively, in sorted path order).

    Images are recognised by magic bytes, not extension. Each image gives one entry per
    available algorithm (md5, sha1, sha256, pdq if its quality reaches PDQ_MIN_QUALITY, phash)
    sharing the id = first 16 hex characters of the file's SHA-256, plus, under the same id,
    the PDQ and pHash of each of ``framings`` (:func:`matchers.alternates.alternate_hashes`)
    that differ from the image's own. Files are read into memory and never copied. Returns
    ``(entries, skipped)`` where ``skipped`` lists ``(path, reason)`` for non-images,
    undecodable images and byte-identical duplicates.
    """
    root = Path(directory)
    if not root.is_dir():
        raise HashListError(os.fspath(directory), None, None, "not a directory")
    entries: list[ListEntry] = []
    skipped: list[tuple[str, str]] = []
    first_path: dict[str, str] = {}
    for path in _walk_files(root):
        shown = os.fspath(path)
        with path.open("rb") as handle:
            if sniff_image(handle.read(SNIFF_BYTES)) is None:
                skipped.append((shown, "not an image"))
                continue
        data = path.read_bytes()
        digest = digest_bytes(data)
        if digest.error is not None:
            skipped.append((shown, f"undecodable ({digest.error})"))
            continue
        if digest.sha256 in first_path:
            skipped.append((shown, f"duplicate of {first_path[digest.sha256]}"))
            continue
        first_path[digest.sha256] = shown
        entry_id = digest.sha256[:DIRECTORY_ID_HEX_CHARS]
        rows: dict[tuple[str, str], None] = {}
        for algorithm, value in digest.hashes().items():
            if algorithm == "pdq" and (digest.pdq_quality or 0) < PDQ_MIN_QUALITY:
                continue
            rows[(algorithm, value)] = None
        if framings:
            rows.update(dict.fromkeys(alternate_hashes(data, framings)))
        entries.extend(ListEntry(a, value, entry_id, category) for a, value in rows)
    return entries, skipped


def _walk_files(root: Path) -> list[Path]:
    """Regular files under root (symlinked directories not followed), sorted by path."""
    found = [
        Path(dirpath) / name
        for dirpath, _dirs, names in os.walk(root)
        for name in names
        if (Path(dirpath) / name).is_file()
    ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
