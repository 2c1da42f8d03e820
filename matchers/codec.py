"""A compact, checked binary container for columnar data: a JSON header plus numpy buffers.

Layout (all integers little-endian)::

    magic            caller-chosen bytes, e.g. b"HLHL2\\n"
    header length    uint32
    header           UTF-8 JSON: {"meta": {...}, "arrays": [{"name", "dtype", "shape",
                     "offset", "nbytes"}, ...], "payload": total bytes, "crc32": of the payload}
    padding          to a multiple of ALIGNMENT bytes from the start of the blob
    payload          each array's buffer at its offset (ALIGNMENT-aligned), C order

:func:`decode` checks everything before any array is used (magic, header, dtypes from a short
allow-list, shapes, offsets and lengths inside the payload, the CRC-32 of the payload) and
returns read-only arrays that are views into the blob, so loading costs one CRC pass.

:class:`StringTable` holds many short strings as one UTF-8 blob plus offsets, so millions of
entry ids cost no Python object each.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from matchers.errors import HashListError

__all__ = ["ALIGNMENT", "StringTable", "decode", "encode"]

#: Every array starts at a multiple of this many bytes (cache lines; uint64 views).
ALIGNMENT: Final = 64
_LENGTH: Final = struct.Struct("<I")
#: The only dtypes a blob may declare.
_DTYPES: Final = frozenset({"|u1", "<u2", "<u4", "<u8", "<i8"})
#: Upper bound on the JSON header (it holds names, shapes and list metadata only).
MAX_HEADER_BYTES: Final = 1 << 20
_ASCII_SPACE: Final = 0x20
_ASCII_DELETE: Final = 0x7F
_ASCII_LIMIT: Final = 0x80


def _little_endian(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    return np.ascontiguousarray(array, dtype=dtype)


def _padding(length: int) -> int:
    return -length % ALIGNMENT


def encode(magic: bytes, meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """Serialize ``meta`` (JSON-able) and named arrays behind ``magic``."""
    described = []
    buffers: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        data = _little_endian(array)
        if data.dtype.str not in _DTYPES:
            raise ValueError(f"array {name!r}: dtype {data.dtype.str} is not allowed")
        raw = data.tobytes()
        described.append(
            {
                "name": name,
                "dtype": data.dtype.str,
                "shape": list(data.shape),
                "offset": offset,
                "nbytes": len(raw),
            }
        )
        buffers.append(raw)
        pad = _padding(len(raw))
        buffers.append(b"\0" * pad)
        offset += len(raw) + pad
    payload = b"".join(buffers)
    header = json.dumps(
        {
            "meta": dict(meta),
            "arrays": described,
            "payload": len(payload),
            "crc32": zlib.crc32(payload),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    head = magic + _LENGTH.pack(len(header)) + header
    return head + b"\0" * _padding(len(head)) + payload


def decode(
    magic: bytes, data: bytes | bytearray, *, source: str
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Inverse of :func:`encode`: ``(meta, arrays)``; arrays are read-only views into ``data``.

    Raises:
        HashListError: wrong magic, truncated or malformed header, a dtype outside the
            allow-list, an array outside the payload, or a CRC mismatch.
    """

    def bad(reason: str) -> HashListError:
        return HashListError(source, None, None, reason)

    if not data.startswith(magic):
        raise bad("not a serialized hash list")
    start = len(magic) + _LENGTH.size
    if len(data) < start:
        raise bad("truncated header")
    (header_length,) = _LENGTH.unpack_from(data, len(magic))
    if header_length > MAX_HEADER_BYTES or start + header_length > len(data):
        raise bad("truncated or oversized header")
    try:
        header = json.loads(data[start : start + header_length].decode("utf-8"))
        meta = header["meta"]
        described = header["arrays"]
        payload_length = int(header["payload"])
        crc = int(header["crc32"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise bad("malformed header") from None
    if not isinstance(meta, dict) or not isinstance(described, list):
        raise bad("malformed header")
    payload_start = start + header_length + _padding(start + header_length)
    if len(data) != payload_start + payload_length:
        raise bad(f"expected {payload_start + payload_length} bytes, got {len(data)} (truncated?)")
    view = memoryview(data).toreadonly()[payload_start:]
    if zlib.crc32(view) != crc:
        raise bad("checksum mismatch (corrupted data)")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for item in described:
        try:
            name = str(item["name"])
            dtype = np.dtype(str(item["dtype"]))
            shape = tuple(int(size) for size in item["shape"])
            offset, nbytes = int(item["offset"]), int(item["nbytes"])
        except (KeyError, TypeError, ValueError):
            raise bad("malformed array description") from None
        if str(item["dtype"]) not in _DTYPES or name in arrays:
            raise bad(f"array {name!r}: unexpected dtype or duplicate name")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if (
            any(size < 0 for size in shape)
            or count * dtype.itemsize != nbytes
            or offset < 0
            or offset % ALIGNMENT
            or offset + nbytes > payload_length
        ):
            raise bad(f"array {name!r}: shape, offset or length out of bounds")
        array = np.frombuffer(view, dtype=dtype, count=count, offset=offset).reshape(shape)
        arrays[name] = array.astype(dtype.newbyteorder("="), copy=False)
    return meta, arrays


@dataclass(frozen=True, eq=False)
class StringTable:
    """Strings ``0 .. n-1``: string ``i`` is ``blob[offsets[i]:offsets[i + 1]]`` (UTF-8)."""

    blob: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.unsignedinteger[Any]] | npt.NDArray[np.signedinteger[Any]]

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> StringTable:
        encoded = [text.encode("utf-8") for text in strings]
        lengths = np.fromiter((len(raw) for raw in encoded), dtype=np.int64, count=len(encoded))
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lengths)
        if len(blob) < 2**32:
            return cls(blob, offsets.astype(np.uint32))
        return cls(blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.blob[start:end].tobytes().decode("utf-8")

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StringTable):
            return NotImplemented
        return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.blob, other.blob)

    __hash__ = None  # type: ignore[assignment]

    @property
    def nbytes(self) -> int:
        return int(self.blob.nbytes + self.offsets.nbytes)

    def check(self, *, source: str, field: str, max_chars: int, allow_empty: bool) -> None:
        """Validate without a Python object per string: offsets monotonic and inside the blob,
        UTF-8, no control characters, no surrounding whitespace, at most ``max_chars``.

        Raises:
            HashListError: naming ``field`` and the first offending string's number.
        """

        def bad(reason: str) -> HashListError:
            return HashListError(source, None, field, reason)

        offsets, blob = self.offsets, self.blob
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0:
            raise bad("string table offsets must start at 0")
        if offsets[-1] != len(blob):
            raise bad("string table offsets do not end at the blob's end")
        lengths = np.diff(offsets.astype(np.int64))
        if len(lengths) and lengths.min() < (0 if allow_empty else 1):
            raise bad("string table has a negative or empty string")
        try:
            blob.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            raise bad("string table is not valid UTF-8") from None
        non_ascii = np.flatnonzero(blob >= _ASCII_LIMIT)
        suspects = set(
            (np.searchsorted(offsets, non_ascii, side="right") - 1).tolist()
        )  # strings with non-ASCII characters are checked one by one
        control = np.flatnonzero((blob < _ASCII_SPACE) | (blob == _ASCII_DELETE))
        if len(control):
            number = int(np.searchsorted(offsets, control[0], side="right") - 1)
            raise bad(f"string {number} contains control characters")
        nonempty = np.flatnonzero(lengths > 0)
        edges = np.concatenate([offsets[nonempty], offsets[nonempty + 1] - 1])
        if len(edges) and (blob[edges] == _ASCII_SPACE).any():
            raise bad("a string has surrounding whitespace")
        too_long = np.flatnonzero(lengths > max_chars)
        suspects.update(too_long.tolist())
        for number in sorted(suspects):
            text = self[number]
            if len(text) > max_chars:
                raise bad(f"string {number} is longer than {max_chars} characters")
            if not text.isprintable():
                raise bad(f"string {number} contains control characters")
            if text != text.strip():
                raise bad(f"string {number} has surrounding whitespace")
