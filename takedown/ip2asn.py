"""Which autonomous system announces an address: an offline IP-to-AS table.

The hotline supplies the table in the common ``ip2asn`` format (as published by iptoasn.com:
``ip2asn-v4.tsv``, ``ip2asn-v6.tsv`` or ``ip2asn-combined.tsv``, optionally gzip-compressed,
``.gz``). One range per line, five tab-separated fields::

    range_start  range_end  AS_number  country_code  AS_description
    192.0.2.0    192.0.2.255    64500  NL            EXAMPLE-AS Example Networks B.V.

AS number 0 (``Not routed``) means no AS announces the range; such lines are kept out of the
table. Configure it as ``[routing] ip_to_asn = "ip2asn-combined.tsv.gz"`` (one path or a list,
e.g. the v4 and v6 files). Nothing is fetched: the hotline downloads the file itself.

The table is held as two sorted arrays of range starts per IP version and searched with
:mod:`bisect`, a few megabytes for the whole Internet. A malformed line is an
:class:`Ip2AsnError` naming the file, the line and the field:
``ip2asn.tsv:12: field 'range_end': '10.0.0' is not an IP address``.
"""

from __future__ import annotations

import bisect
import gzip
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from takedown.errors import TakedownError

__all__ = ["AsInfo", "Ip2AsnError", "IpToAsn"]

_FIELDS = ("range_start", "range_end", "AS_number", "country_code", "AS_description")
_MAX_ASN = 2**32 - 1
_NOT_ROUTED = 0


class Ip2AsnError(TakedownError):
    """The IP-to-AS table is unreadable or a line in it is malformed (file, line, field)."""


@dataclass(frozen=True, slots=True)
class AsInfo:
    """One autonomous system as the table names it."""

    number: int
    name: str
    country: str = ""

    def __str__(self) -> str:
        return f"AS{self.number} ({self.name})" if self.name else f"AS{self.number}"


class _Ranges:
    """Non-overlapping ``[start, end]`` integer ranges, each with an index into the AS list."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int]] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.values: list[int] = []

    def freeze(self) -> None:
        self.rows.sort()
        self.starts = [r[0] for r in self.rows]
        self.ends = [r[1] for r in self.rows]
        self.values = [r[2] for r in self.rows]
        self.rows = []

    def find(self, number: int) -> int | None:
        index = bisect.bisect_right(self.starts, number) - 1
        if index >= 0 and number <= self.ends[index]:
            return self.values[index]
        return None


class IpToAsn:
    """The loaded table; :meth:`lookup` answers one address."""

    def __init__(self) -> None:
        self._ranges = {4: _Ranges(), 6: _Ranges()}
        self._as: list[AsInfo] = []
        self._as_index: dict[AsInfo, int] = {}
        self.sources: tuple[str, ...] = ()

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> IpToAsn:
        """Read one or more ip2asn files (gzip when the name ends in ``.gz``)."""
        table = cls()
        sources = []
        for item in paths:
            path = Path(item)
            sources.append(str(path))
            try:
                table._add_lines(_read_lines(path), str(path))
            except (EOFError, gzip.BadGzipFile) as exc:
                raise Ip2AsnError(f"{path}: not a readable gzip file: {exc}") from None
            except OSError as exc:
                raise Ip2AsnError(f"{path}: cannot read: {exc.strerror or exc}") from None
        table.sources = tuple(sources)
        table._freeze()
        return table

    @classmethod
    def from_text(cls, text: str, *, source: str = "<ip2asn>") -> IpToAsn:
        table = cls()
        table._add_lines(iter(text.splitlines()), source)
        table.sources = (source,)
        table._freeze()
        return table

    def _add_lines(self, lines: Iterator[str], source: str) -> None:
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            self._add(line.split("\t"), source, number)

    def _add(self, cells: list[str], source: str, line: int) -> None:
        if len(cells) < len(_FIELDS) - 2:  # the country and the description may be missing
            raise Ip2AsnError(
                f"{source}:{line}: expected {len(_FIELDS)} tab-separated fields "
                f"({', '.join(_FIELDS)}), got {len(cells)}"
            )

        def fail(index: int, message: str) -> Ip2AsnError:
            return Ip2AsnError(f"{source}:{line}: field {_FIELDS[index]!r}: {message}")

        addresses = []
        for index in (0, 1):
            try:
                addresses.append(ipaddress.ip_address(cells[index].strip()))
            except ValueError:
                raise fail(index, f"{cells[index]!r} is not an IP address") from None
        start, end = addresses
        if start.version != end.version:
            raise fail(1, f"{end} is not of the same IP version as {start}")
        if int(end) < int(start):
            raise fail(1, f"{end} is before {start}")
        asn_text = cells[2].strip().upper().removeprefix("AS")
        if not asn_text.isdigit() or int(asn_text) > _MAX_ASN:
            raise fail(2, f"{cells[2]!r} is not an AS number")
        asn = int(asn_text)
        if asn == _NOT_ROUTED:
            return
        padded = [*cells, "", ""]
        country, name = padded[3].strip().upper(), padded[4].strip()
        info = AsInfo(asn, name, "" if country in {"NONE", "ZZ"} else country)
        index = self._as_index.setdefault(info, len(self._as))
        if index == len(self._as):
            self._as.append(info)
        self._ranges[start.version].rows.append((int(start), int(end), index))

    def _freeze(self) -> None:
        for ranges in self._ranges.values():
            ranges.freeze()
        self._as_index = {}

    def __len__(self) -> int:
        return sum(len(r.starts) for r in self._ranges.values())

    def lookup(self, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> AsInfo | None:
        """The AS announcing ``address``, or ``None`` (not in the table, or not routed)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        index = self._ranges[ip.version].find(int(ip))
        return None if index is None else self._as[index]


def _read_lines(path: Path) -> Iterator[str]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from handle
    else:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from handle
