"""The IANA RDAP bootstrap registry (RFC 9224): which RDAP service answers for what.

IANA publishes four files at https://data.iana.org/rdap/ — ``ipv4.json``, ``ipv6.json``,
``asn.json`` and ``dns.json``. Each is a JSON object with ``version``, ``publication`` and
``services``, a list of ``[entries, urls]`` pairs: the entries are CIDR prefixes, AS number
ranges (``"64496-64511"``) or DNS labels (``"net"``, ``"co.uk"`` would also be allowed), the
URLs are base URLs of RDAP services ending in ``/``. RFC 9224 asks clients to take the longest
matching prefix (or label) and to prefer an ``https`` URL.

A copy of the four files ships with the package (``takedown/data/rdap-bootstrap``, its NOTICE
says from where and when); ``hotline rdap update`` fetches a fresh set into the data directory,
which then wins file by file (:meth:`Bootstrap.load`). :func:`update_bootstrap` validates every
file completely before replacing any: a bad download leaves the files in place untouched.

Errors are :class:`BootstrapError` (a :class:`~takedown.errors.RdapError`) with a one-line
message naming the file and, where it helps, the service and the entry.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from store.addresses import AddressPolicy
from store.text import one_line
from takedown.errors import RdapError, http_base_url
from takedown.http import DEFAULT_HTTP_TIMEOUT, make_http_client, read_at_most

__all__ = [
    "BOOTSTRAP_DIR_NAME",
    "BOOTSTRAP_FILES",
    "BUILTIN_BOOTSTRAP_DIR",
    "IANA_BOOTSTRAP_URL",
    "MAX_BOOTSTRAP_BYTES",
    "Bootstrap",
    "BootstrapError",
    "Registry",
    "parse_registry",
    "update_bootstrap",
]

#: Where IANA publishes the registry (RFC 9224 section 3).
IANA_BOOTSTRAP_URL = "https://data.iana.org/rdap/"
#: The four files, by kind.
BOOTSTRAP_FILES: Mapping[str, str] = {
    "ipv4": "ipv4.json",
    "ipv6": "ipv6.json",
    "asn": "asn.json",
    "dns": "dns.json",
}
#: The copy shipped with the package.
BUILTIN_BOOTSTRAP_DIR = Path(__file__).parent / "data" / "rdap-bootstrap"
#: The folder under the hotline's data directory that ``hotline rdap update`` writes.
BOOTSTRAP_DIR_NAME = "rdap-bootstrap"
#: Largest bootstrap file accepted (IANA's dns.json is about 100 kB).
MAX_BOOTSTRAP_BYTES = 4 * 1024 * 1024
_MAX_ASN = 2**32 - 1
_ASN_RANGE = re.compile(r"^(\d{1,10})(?:-(\d{1,10}))?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class BootstrapError(RdapError):
    """A bootstrap file is missing, unreadable or not in the RFC 9224 format."""


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Registry:
    """One parsed bootstrap file: its publication time and its entries, each with the
    service's base URL (the preferred one, ``https`` first, always ending in ``/``)."""

    kind: str
    publication: str
    source: str
    networks: tuple[tuple[IpNetwork, str], ...] = ()
    asn_ranges: tuple[tuple[int, int, str], ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        return len(self.networks) + len(self.asn_ranges) + len(self.labels)


def parse_registry(kind: str, data: bytes | str, source: str) -> Registry:
    """Parse and fully validate one bootstrap file of ``kind`` (``ipv4``, ``ipv6``, ``asn``,
    ``dns``); ``source`` names it in error messages."""
    if kind not in BOOTSTRAP_FILES:
        raise BootstrapError(f"{source}: unknown bootstrap kind {kind!r}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BootstrapError(f"{source}: not JSON: {one_line(str(exc))}") from None
    if not isinstance(doc, dict):
        raise BootstrapError(f"{source}: expected a JSON object")
    version = doc.get("version")
    if version != "1.0":
        raise BootstrapError(f"{source}: field 'version': expected '1.0', got {version!r}")
    publication = doc.get("publication")
    if not isinstance(publication, str) or not publication.strip():
        raise BootstrapError(f"{source}: field 'publication': missing")
    services = doc.get("services")
    if not isinstance(services, list) or not services:
        raise BootstrapError(f"{source}: field 'services': expected a non-empty list")
    networks: list[tuple[IpNetwork, str]] = []
    ranges: list[tuple[int, int, str]] = []
    labels: dict[str, str] = {}
    for number, service in enumerate(services, 1):
        where = f"{source}: services[{number}]"
        if (
            not isinstance(service, list)
            or len(service) < 2
            or not isinstance(service[0], list)
            or not isinstance(service[1], list)
        ):
            raise BootstrapError(f"{where}: expected [entries, urls]")
        url = _preferred_url(service[1], where)
        for entry in service[0]:
            if not isinstance(entry, str):
                raise BootstrapError(f"{where}: entry {entry!r} is not a string")
            if kind in {"ipv4", "ipv6"}:
                networks.append((_network(kind, entry, where), url))
            elif kind == "asn":
                ranges.append((*_asn_range(entry, where), url))
            else:
                labels[_label(entry, where)] = url
    # longest prefix first, so the first containing network is the most specific
    networks.sort(key=lambda item: -item[0].prefixlen)
    ranges.sort()
    for (_, end, _), (start, _, _) in itertools.pairwise(ranges):
        if start <= end:
            raise BootstrapError(f"{source}: AS range starting at {start} overlaps another")
    return Registry(
        kind=kind,
        publication=publication.strip(),
        source=source,
        networks=tuple(networks),
        asn_ranges=tuple(ranges),
        labels=labels,
    )


def _preferred_url(urls: Sequence[Any], where: str) -> str:
    good: list[str] = []
    for url in urls:
        parts = httpx.URL(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.host:
            raise BootstrapError(f"{where}: {url!r} is not an http(s) URL")
        good.append(url if url.endswith("/") else url + "/")
    if not good:
        raise BootstrapError(f"{where}: no service URL")
    return next((u for u in good if u.startswith("https://")), good[0])


def _network(kind: str, entry: str, where: str) -> IpNetwork:
    try:
        network = ipaddress.ip_network(entry.strip(), strict=True)
    except ValueError:
        raise BootstrapError(f"{where}: {entry!r} is not a network") from None
    if network.version != (4 if kind == "ipv4" else 6):
        raise BootstrapError(f"{where}: {entry!r} is not an {kind} network")
    return network


def _asn_range(entry: str, where: str) -> tuple[int, int]:
    match = _ASN_RANGE.match(entry.strip())
    if match is None:
        raise BootstrapError(f"{where}: {entry!r} is not an AS number range")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if not 0 <= start <= end <= _MAX_ASN:
        raise BootstrapError(f"{where}: {entry!r} is not an AS number range")
    return start, end


def _label(entry: str, where: str) -> str:
    text = entry.strip().rstrip(".").lower()
    if not text or not all(_LABEL.match(part) for part in text.split(".")):
        raise BootstrapError(f"{where}: {entry!r} is not a DNS label")
    return text


class Bootstrap:
    """The four registries, and the lookups RFC 9224 describes."""

    def __init__(self, registries: Mapping[str, Registry]) -> None:
        missing = [kind for kind in BOOTSTRAP_FILES if kind not in registries]
        if missing:
            raise BootstrapError(f"bootstrap registry incomplete: no {', '.join(missing)}")
        self.registries = dict(registries)
        asn = registries["asn"].asn_ranges
        self._asn_starts = [start for start, _, _ in asn]
        self._asn = asn

    @classmethod
    def load(cls, *directories: Path | None) -> Bootstrap:
        """Each file from the first of ``directories`` that has it, else the shipped copy."""
        registries = {}
        for kind, name in BOOTSTRAP_FILES.items():
            path = next(
                (d / name for d in directories if d is not None and (d / name).is_file()),
                BUILTIN_BOOTSTRAP_DIR / name,
            )
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BootstrapError(f"{path}: cannot read: {exc.strerror or exc}") from None
            registries[kind] = parse_registry(kind, data, str(path))
        return cls(registries)

    @classmethod
    def builtin(cls) -> Bootstrap:
        return cls.load()

    def publications(self) -> dict[str, str]:
        """The publication time of each file, by kind."""
        return {kind: reg.publication for kind, reg in self.registries.items()}

    def ip_base(self, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """The base URL of the service for ``address`` (longest prefix), or ``None``."""
        ip = ipaddress.ip_address(address)
        registry = self.registries["ipv4" if ip.version == 4 else "ipv6"]
        for network, url in registry.networks:
            if ip in network:
                return url
        return None

    def asn_base(self, asn: int) -> str | None:
        index = bisect.bisect_right(self._asn_starts, asn) - 1
        if index >= 0:
            start, end, url = self._asn[index]
            if start <= asn <= end:
                return url
        return None

    def domain_base(self, name: str) -> str | None:
        """The base URL for domain ``name``: the longest label suffix listed (``co.uk``
        before ``uk``), or ``None``."""
        labels = name.strip().rstrip(".").lower().split(".")
        table = self.registries["dns"].labels
        for start in range(len(labels)):
            url = table.get(".".join(labels[start:]))
            if url is not None:
                return url
        return None


@dataclass(frozen=True, slots=True)
class UpdatedFile:
    name: str
    publication: str
    entries: int
    previous: str | None  # the replaced file's publication, if there was one


def update_bootstrap(
    target: Path,
    base_url: str = IANA_BOOTSTRAP_URL,
    *,
    http: httpx.Client | None = None,
    timeout: float = DEFAULT_HTTP_TIMEOUT,
    policy: AddressPolicy | None = None,
) -> list[UpdatedFile]:
    """Download the four files from ``base_url`` into ``target``.

    Every file is downloaded and validated before any is written; then each is written to a
    temporary file in ``target`` and moved over the old one (atomic per file). Any error
    raises :class:`BootstrapError` and leaves ``target`` as it was. The client obeys ``policy``
    (default :func:`takedown.http.outbound_policy`): a mirror on a private network must be
    allowed.
    """
    base = base_url.strip()
    http_base_url(base, "bootstrap URL")
    if not base.endswith("/"):
        base += "/"
    own = http is None
    client = http if http is not None else make_http_client(timeout=timeout, policy=policy)
    try:
        fetched = {name: _download(client, base + name) for name in BOOTSTRAP_FILES.values()}
    finally:
        if own:
            client.close()
    parsed = {
        name: parse_registry(kind, fetched[name], base + name)
        for kind, name in BOOTSTRAP_FILES.items()
    }
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BootstrapError(f"{target}: cannot create: {exc.strerror or exc}") from None
    out = []
    for name, registry in parsed.items():
        previous = _publication_of(target / name)
        _replace(target / name, fetched[name])
        out.append(UpdatedFile(name, registry.publication, registry.entries, previous))
    return out


def _download(client: httpx.Client, url: str) -> bytes:
    body = bytearray()
    try:
        with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if read_at_most(response, MAX_BOOTSTRAP_BYTES, into=body):
                raise BootstrapError(f"{url}: larger than {MAX_BOOTSTRAP_BYTES} bytes")
            status = response.status_code
    except httpx.HTTPError as exc:
        raise BootstrapError(f"{url}: download failed: {one_line(exc)}") from None
    if status != httpx.codes.OK:
        raise BootstrapError(f"{url}: HTTP {status}")
    return bytes(body)


def _publication_of(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    value = doc.get("publication") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BootstrapError(f"{path}: cannot write: {exc.strerror or exc}") from None


def registries_summary(registries: Iterable[Registry]) -> list[dict[str, Any]]:
    """Kind, source, publication and entry count of each registry (for ``--json``)."""
    return [
        {"kind": r.kind, "source": r.source, "publication": r.publication, "entries": r.entries}
        for r in registries
    ]
