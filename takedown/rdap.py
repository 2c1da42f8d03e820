"""RDAP client (RFC 9082 queries, RFC 9083 responses): who holds an address, who sold a domain.

:class:`RdapClient` asks ``{base}/ip/{address}`` and ``{base}/domain/{name}`` and follows
redirects, so ``base`` may be a bootstrap redirector such as rdap.org (which answers with a
redirect to the right registry) or one registry's own service. The base URL is configured by
the CLI from the environment variable ``HOTLINE_RDAP_URL`` (default :data:`DEFAULT_RDAP_URL`;
see :mod:`store.environment`); this module never reads the environment.

What is read from a document:

* IP network: handle, name, CIDRs (``cidr0_cidrs``, else the start/end address range), country,
  the registrant's name (vCard ``fn``), abuse e-mail addresses (every entity with role
  ``abuse``, searched through nested ``entities``: ARIN nests the abuse contact under the
  registrant organisation, RIPE lists it at top level), the origin AS numbers when the
  registry publishes them (ARIN's ``arin_originas0_originautnums``) and the parent handle.
* Domain: the registrar (entity with role ``registrar``), its IANA id, and the registrar's abuse
  address (the entity with role ``abuse`` nested under the registrar).

Errors are :class:`~takedown.errors.RdapError` with a one-line message naming the URL. A 404
raises :class:`RdapNotFound` (a subclass), so callers that only care whether a lookup worked
catch ``RdapError`` and callers that treat "no record" differently catch ``RdapNotFound`` first.

Caching: pass any object with ``get(key) -> str | None`` and ``set(key, value, ttl)`` (see
:class:`RdapCache`). Keys are ``ip:<address>`` and ``domain:<name>``; values are the raw JSON
documents (registration data, never content). :class:`RedisRdapCache` stores them in Redis as
strings with an expiry, under these key names (``P`` is the deployment's key prefix)::

    P rdap:ip:<address>     string   RDAP document for one IP address (compressed form)
    P rdap:domain:<name>    string   RDAP document for one domain (lowercase, IDNA ASCII)
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis

from store.keys import DEFAULT_PREFIX, Keys, validate_prefix
from store.text import one_line
from takedown.errors import RdapError
from takedown.http import DEFAULT_HTTP_TIMEOUT, make_http_client, read_at_most

__all__ = [
    "DEFAULT_RDAP_URL",
    "MAX_DOCUMENT_BYTES",
    "RDAP_ACCEPT",
    "RDAP_CACHE_TTL",
    "DomainInfo",
    "IpNetworkInfo",
    "RdapCache",
    "RdapClient",
    "RdapNotFound",
    "RedisRdapCache",
    "parse_domain",
    "parse_ip_network",
]

#: A bootstrap redirector: it answers every query with a redirect to the responsible registry.
DEFAULT_RDAP_URL = "https://rdap.org"
#: Seconds an RDAP document stays cached (registration data changes slowly).
RDAP_CACHE_TTL = 86_400
#: Largest RDAP document accepted; real ones are tens of kilobytes.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: RFC 9083 section 10.2 media type, with plain JSON accepted from older servers.
RDAP_ACCEPT = "application/rdap+json, application/json;q=0.9"
#: Nesting depth searched for entities (real documents nest two or three levels).
MAX_ENTITY_DEPTH = 8
_HTTP_NOT_FOUND = 404
_MAILTO = "mailto:"


class RdapNotFound(RdapError):
    """The RDAP server has no record for the query (HTTP 404)."""


class RdapCache(Protocol):
    """Where raw RDAP documents may be kept between lookups."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl: int) -> None: ...


class RedisRdapCache:
    """An :class:`RdapCache` in Redis: ``<key_prefix>rdap:<key>`` strings with an expiry.

    ``ttl`` is the longest any document is kept; a shorter ``ttl`` passed to :meth:`set` wins.
    """

    def __init__(
        self, client: redis.Redis, key_prefix: str = DEFAULT_PREFIX, ttl: int = RDAP_CACHE_TTL
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        self.client = client
        self.key_prefix = validate_prefix(key_prefix)
        self.ttl = ttl

    def key(self, key: str) -> str:
        """The Redis key holding the document cached as ``key`` (``ip:...``/``domain:...``)."""
        kind, _, value = key.partition(":")
        return Keys(self.key_prefix).rdap(kind, value)

    def get(self, key: str) -> str | None:
        value = self.client.get(self.key(key))
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    def set(self, key: str, value: str, ttl: int) -> None:
        self.client.set(self.key(key), value.encode("utf-8"), ex=max(1, min(ttl, self.ttl)))


@dataclass(frozen=True, slots=True)
class IpNetworkInfo:
    """The registry's record of the network holding one address.

    ``org`` is the registrant's name when the document carries it (RIPE often lists the
    registrant by handle only; then it is ``None`` and :attr:`holder` falls back to ``name``).
    """

    url: str
    handle: str | None = None
    name: str | None = None
    cidrs: tuple[str, ...] = ()
    start_address: str | None = None
    end_address: str | None = None
    country: str | None = None
    org: str | None = None
    abuse_emails: tuple[str, ...] = ()
    origin_asns: tuple[int, ...] = ()
    parent_handle: str | None = None

    @property
    def asn(self) -> int | None:
        """The first origin AS number, when the registry publishes one."""
        return self.origin_asns[0] if self.origin_asns else None

    @property
    def abuse(self) -> str | None:
        """The first abuse address, or ``None``."""
        return self.abuse_emails[0] if self.abuse_emails else None

    @property
    def holder(self) -> str | None:
        """The best available name for who holds the network: org, else name, else handle."""
        return self.org or self.name or self.handle

    @property
    def network(self) -> str | None:
        """The CIDRs as one string (``"a/n, b/m"``), or ``None``."""
        return ", ".join(self.cidrs) or None


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """The registry's record of one domain: who registered it through whom."""

    url: str
    name: str
    handle: str | None = None
    registrar: str | None = None
    registrar_iana_id: str | None = None
    registrar_abuse_emails: tuple[str, ...] = ()

    @property
    def registrar_abuse(self) -> str | None:
        return self.registrar_abuse_emails[0] if self.registrar_abuse_emails else None


class RdapClient:
    """Looks up IP networks and domains over RDAP.

    ``http`` is an :class:`httpx.Client` to use (it stays open after :meth:`close`); without
    one the client makes its own with :func:`takedown.http.make_http_client`. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_RDAP_URL,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        cache: RdapCache | None = None,
        cache_ttl: int = RDAP_CACHE_TTL,
    ) -> None:
        base = base_url.strip().rstrip("/")
        parts = httpx.URL(base) if base else None
        if parts is None or parts.scheme not in {"http", "https"} or not parts.host:
            raise RdapError(f"RDAP base URL {base_url!r} is not an http(s) URL")
        self.base_url = base
        self._own_http = http is None
        self._http = http if http is not None else make_http_client(timeout=timeout)
        self.cache = cache
        self.cache_ttl = cache_ttl

    def __enter__(self) -> RdapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def ip(self, address: str) -> IpNetworkInfo:
        """The network record for ``address`` (IPv4 or IPv6)."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            raise RdapError(f"{address!r} is not an IP address") from None
        query = ip.compressed
        url, doc = self._fetch(f"ip:{query}", f"{self.base_url}/ip/{query}")
        return parse_ip_network(doc, url)

    def domain(self, name: str) -> DomainInfo:
        """The registry record for domain ``name`` (a registrable domain such as example.net)."""
        text = name.strip().rstrip(".").lower()
        try:
            query = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise RdapError(f"{name!r} is not a domain name") from None
        if not query or "/" in query:
            raise RdapError(f"{name!r} is not a domain name")
        url, doc = self._fetch(f"domain:{query}", f"{self.base_url}/domain/{query}")
        return parse_domain(doc, url)

    def _fetch(self, cache_key: str, url: str) -> tuple[str, Mapping[str, Any]]:
        """The JSON object at ``url`` (from the cache when present) and the URL it came from."""
        if self.cache is not None:
            cached = self.cache.get(cache_key)
            if cached is not None:
                try:
                    doc = json.loads(cached)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    return url, doc
        final_url, body = self._get(url)
        doc = _decode(body, final_url)
        if self.cache is not None:
            self.cache.set(cache_key, json.dumps(doc, separators=(",", ":")), self.cache_ttl)
        return final_url, doc

    def _get(self, url: str) -> tuple[str, bytes]:
        try:
            with self._http.stream("GET", url, headers={"Accept": RDAP_ACCEPT}) as response:
                final_url = str(response.url)
                body = bytearray()
                if read_at_most(response, MAX_DOCUMENT_BYTES, into=body):
                    raise RdapError(
                        f"RDAP answer from {final_url} is larger than {MAX_DOCUMENT_BYTES} bytes"
                    )
                status = response.status_code
        except httpx.HTTPError as exc:
            detail = one_line(exc)
            raise RdapError(f"RDAP request to {url} failed: {detail}") from None
        if status == _HTTP_NOT_FOUND:
            raise RdapNotFound(f"no RDAP record at {final_url} (HTTP 404)")
        if not 200 <= status < 300:
            raise RdapError(
                f"RDAP server answered HTTP {status} for {final_url}{_error_detail(bytes(body))}"
            )
        return final_url, bytes(body)


def _decode(body: bytes, url: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise RdapError(f"RDAP answer from {url} is not JSON: {one_line(str(exc))}") from None
    if not isinstance(doc, dict):
        raise RdapError(f"RDAP answer from {url} is not a JSON object")
    return doc


def _error_detail(body: bytes) -> str:
    """``": <title>"`` from an RFC 9083 error document, or nothing."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("title"), str):
        return f": {one_line(doc['title'])}"
    return ""


# --- parsing --------------------------------------------------------------------------------


def parse_ip_network(doc: Mapping[str, Any], url: str = "") -> IpNetworkInfo:
    """Read an RDAP ``ip network`` object; raise :class:`RdapError` if it is something else."""
    _expect_class(doc, "ip network", url)
    start = _address(doc.get("startAddress"))
    end = _address(doc.get("endAddress"))
    return IpNetworkInfo(
        url=url,
        handle=_string(doc.get("handle")),
        name=_string(doc.get("name")),
        cidrs=_cidrs(doc, start, end),
        start_address=start,
        end_address=end,
        country=_string(doc.get("country")),
        org=_registrant_name(doc),
        abuse_emails=_abuse_emails(doc),
        origin_asns=_origin_asns(doc),
        parent_handle=_string(doc.get("parentHandle")),
    )


def parse_domain(doc: Mapping[str, Any], url: str = "") -> DomainInfo:
    """Read an RDAP ``domain`` object; raise :class:`RdapError` if it is something else."""
    _expect_class(doc, "domain", url)
    registrar = next(
        (e for e in _walk_entities(doc) if "registrar" in _roles(e)),
        None,
    )
    name = _string(doc.get("ldhName")) or _string(doc.get("unicodeName")) or ""
    if registrar is None:
        return DomainInfo(url=url, name=name.lower(), handle=_string(doc.get("handle")))
    return DomainInfo(
        url=url,
        name=name.lower(),
        handle=_string(doc.get("handle")),
        registrar=_vcard_first(registrar, "fn") or _vcard_first(registrar, "org"),
        registrar_iana_id=_iana_id(registrar),
        registrar_abuse_emails=_abuse_emails(registrar),
    )


def _expect_class(doc: Mapping[str, Any], expected: str, url: str) -> None:
    found = doc.get("objectClassName")
    if found != expected:
        where = f" from {url}" if url else ""
        raise RdapError(f"RDAP answer{where} is a {found!r} object, expected {expected!r}")


def _string(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _address(value: object) -> str | None:
    """An address as written, minus the ``/32``-style suffix some RIR documents append."""
    text = _string(value)
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text.split("/", 1)[0]).compressed
    except ValueError:
        return None


def _cidrs(doc: Mapping[str, Any], start: str | None, end: str | None) -> tuple[str, ...]:
    out: list[str] = []
    for item in _list(doc.get("cidr0_cidrs")):
        if not isinstance(item, dict):
            continue
        prefix = item.get("v4prefix") or item.get("v6prefix")
        length = item.get("length")
        if not isinstance(prefix, str) or isinstance(length, bool) or not isinstance(length, int):
            continue
        try:
            out.append(str(ipaddress.ip_network((prefix, length), strict=False)))
        except ValueError:
            continue
    if out or start is None or end is None:
        return tuple(out)
    try:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
        return tuple(str(n) for n in ipaddress.summarize_address_range(first, last))
    except (TypeError, ValueError):
        return ()


def _origin_asns(doc: Mapping[str, Any]) -> tuple[int, ...]:
    out: list[int] = []
    for item in _list(doc.get("arin_originas0_originautnums")):
        text = str(item).strip().upper().removeprefix("AS")
        if not isinstance(item, bool) and text.isdigit():
            out.append(int(text))
    return tuple(out)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _roles(entity: Mapping[str, Any]) -> list[str]:
    return [r.lower() for r in _list(entity.get("roles")) if isinstance(r, str)]


def _walk_entities(obj: Mapping[str, Any], depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every entity under ``obj``, depth first, each parent before its children."""
    if depth >= MAX_ENTITY_DEPTH:
        return
    for entity in _list(obj.get("entities")):
        if isinstance(entity, dict):
            yield entity
            yield from _walk_entities(entity, depth + 1)


def _abuse_emails(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """E-mail addresses of every ``abuse`` entity under ``obj``, in document order, unique."""
    out: dict[str, None] = {}
    for entity in _walk_entities(obj):
        if "abuse" in _roles(entity):
            for email in _vcard_values(entity, "email"):
                out.setdefault(email, None)
    return tuple(out)


def _registrant_name(doc: Mapping[str, Any]) -> str | None:
    """The registrant's name: a top-level registrant first, then any nested one."""
    top = [e for e in _list(doc.get("entities")) if isinstance(e, dict)]
    for entity in (*top, *_walk_entities(doc)):
        if "registrant" in _roles(entity):
            name = _vcard_first(entity, "fn") or _vcard_first(entity, "org")
            if name:
                return name
    return None


def _iana_id(entity: Mapping[str, Any]) -> str | None:
    for public_id in _list(entity.get("publicIds")):
        if isinstance(public_id, dict) and public_id.get("type") == "IANA Registrar ID":
            return _string(public_id.get("identifier"))
    return None


def _vcard_values(entity: Mapping[str, Any], prop: str) -> list[str]:
    """Text values of one jCard property (RFC 7095): ``[name, params, type, value]`` items."""
    card = entity.get("vcardArray")
    if not isinstance(card, list) or len(card) < 2 or not isinstance(card[1], list):
        return []
    out = []
    for item in card[1]:
        if not isinstance(item, list) or len(item) < 4 or not isinstance(item[0], str):
            continue
        if item[0].lower() != prop:
            continue
        value = _string(item[3])
        if value is None:
            continue
        if prop == "email" and value.lower().startswith(_MAILTO):
            value = value[len(_MAILTO) :]
        out.append(value)
    return out


def _vcard_first(entity: Mapping[str, Any], prop: str) -> str | None:
    values = _vcard_values(entity, prop)
    return values[0] if values else None
