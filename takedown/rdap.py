"""RDAP client (RFC 9082 queries, RFC 9083 responses): who holds an address, who sold a domain.

Where a query goes: by default the IANA bootstrap registry (RFC 9224, :mod:`takedown.bootstrap`)
names the service responsible for the address or the domain's top-level domain, and
:class:`RdapClient` asks that registry directly (``{base}ip/{address}``,
``{base}domain/{name}``), following redirects. No third party sees the queries. A base URL
given explicitly (``[rdap] url`` or ``HOTLINE_RDAP_URL``, read by the CLI, never here) overrides
the bootstrap: every query then goes to that one service (a registry, a mirror or a redirector
such as rdap.org, if the hotline chooses one).

What is read from a document (leniently: real registries differ):

* IP network: handle, name, CIDRs (``cidr0_cidrs``, else the start/end address range;
  zero-padded IPv4 such as ``074.125.000.000`` is read as decimal), country, the registrant's
  name (vCard ``fn``), every abuse e-mail address in document order (each entity with role
  ``abuse`` searched through nested ``entities`` -- ARIN nests the abuse contact under the
  organisation, RIPE lists it at top level -- and any vCard ``email`` whose ``type`` parameter
  says ``abuse``), the origin AS numbers when the registry publishes them (ARIN's
  ``arin_originas0_originautnums``) and the parent handle.
* Domain: the registrar (entity with role ``registrar``), its IANA id, and the registrar's abuse
  addresses (the entity with role ``abuse`` nested under the registrar).

A missing ``objectClassName`` is accepted (RIPE omits it in some answers); a different one is
an error. vCard variants are accepted: property and parameter names in any case, ``type`` as a
string or a list, values as a string or an array, ``mailto:`` URIs.

Errors are :class:`~takedown.errors.RdapError` with a one-line message naming the URL. A 404
(or no service in the bootstrap registry) raises :class:`RdapNotFound` (a subclass).

Caching: pass any object with ``get(key) -> str | None`` and ``set(key, value, ttl)`` (see
:class:`RdapCache`). Keys are the query URL (the service's base URL and the query), so two
services never share an entry. Values are JSON: the parsed-before-caching document with its
expiry time, or the error of a failed lookup. A document is kept ``cache_ttl`` (default a day);
a failure only ``negative_ttl`` (default five minutes), so a registry that failed once is asked
again soon. A host the address policy refused (:class:`~takedown.errors.RdapRefused`) is not
cached at all: that verdict is the configuration's, and a changed ``allowed_networks`` applies
at the next lookup. Expiry is checked against the client's ``clock``. :class:`RedisRdapCache` keeps
entries in Redis (``P`` is the deployment's key prefix), at most ``max_entries`` of them, the
oldest evicted first::

    P rdap:doc:<query URL>   string   one cached answer (JSON), with a Redis expiry as well
    P rdap:index:entries     zset     the cached keys scored by the time they were stored
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import httpx
import redis

from store.addresses import AddressPolicy
from store.keys import DEFAULT_PREFIX, Keys, validate_prefix
from store.text import one_line
from takedown.bootstrap import Bootstrap
from takedown.errors import RdapError, RdapRefused, http_base_url
from takedown.http import DEFAULT_HTTP_TIMEOUT, HostRefused, make_http_client, read_at_most

__all__ = [
    "DEFAULT_RDAP_URL",
    "MAX_DOCUMENT_BYTES",
    "RDAP_ACCEPT",
    "RDAP_BOOTSTRAP",
    "RDAP_CACHE_MAX_ENTRIES",
    "RDAP_CACHE_TTL",
    "RDAP_NEGATIVE_TTL",
    "DomainInfo",
    "IpNetworkInfo",
    "RdapCache",
    "RdapClient",
    "RdapNotFound",
    "RedisRdapCache",
    "parse_address",
    "parse_domain",
    "parse_ip_network",
]

#: The ``[rdap] url`` value meaning "ask the registry the IANA bootstrap registry names".
RDAP_BOOTSTRAP = "bootstrap"
#: The default: the bootstrap registry, no third-party service in between.
DEFAULT_RDAP_URL = RDAP_BOOTSTRAP
#: Seconds an RDAP document stays cached (registration data changes slowly).
RDAP_CACHE_TTL = 86_400
#: Seconds a failed lookup (error, 404, unreadable document) stays cached.
RDAP_NEGATIVE_TTL = 300
#: Most answers kept in the Redis cache; the oldest are evicted first.
RDAP_CACHE_MAX_ENTRIES = 10_000
#: Largest RDAP document accepted; real ones are tens of kilobytes.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: RFC 9083 section 10.2 media type, with plain JSON accepted from older servers.
RDAP_ACCEPT = "application/rdap+json, application/json;q=0.9"
#: Nesting depth searched for entities (real documents nest two or three levels).
MAX_ENTITY_DEPTH = 8
#: Deepest nesting of arrays and objects accepted in a document (real ones nest about twenty
#: deep); deeper documents are refused, so no later step (the cache's JSON encoder, a repr in
#: an error) runs out of recursion on one.
MAX_DOCUMENT_DEPTH = 100
_HTTP_NOT_FOUND = 404
_MAX_OCTET = 255
_MAILTO = "mailto:"
_CACHE_FORMAT = 2
_PADDED_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
#: An address: local part, "@", domain (checked for an inner dot apart: one pass, no
#: backtracking over long runs of dots). Used with fullmatch: "$" would let a final "\n" in.
_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]]+@([^@\s<>(),;:\"\[\]]+)")
#: A prefix length or an AS number as text: ASCII digits only (``str.isdigit`` takes "²").
_DECIMAL = re.compile(r"[0-9]{1,10}")
_MAX_ASN = 2**32 - 1


_Parsed = TypeVar("_Parsed")


class RdapNotFound(RdapError):
    """The RDAP server has no record for the query (HTTP 404), or no service is responsible."""


class RdapCache(Protocol):
    """Where RDAP answers may be kept between lookups."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl: int) -> None: ...


class RedisRdapCache:
    """An :class:`RdapCache` in Redis: ``<key_prefix>rdap:doc:<key>`` strings with an expiry,
    at most ``max_entries`` of them (the oldest are evicted when a new one is stored).

    ``ttl`` is the longest any answer is kept; a shorter ``ttl`` passed to :meth:`set` wins.
    """

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str = DEFAULT_PREFIX,
        ttl: int = RDAP_CACHE_TTL,
        *,
        max_entries: int = RDAP_CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl}")
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, not {max_entries}")
        self.client = client
        self.key_prefix = validate_prefix(key_prefix)
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        keys = Keys(self.key_prefix)
        self.index = keys.rdap("index", "entries")
        self._keys = keys

    def key(self, key: str) -> str:
        """The Redis key holding the answer cached as ``key`` (a query URL)."""
        return self._keys.rdap("doc", key)

    def get(self, key: str) -> str | None:
        value = self.client.get(self.key(key))
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    def set(self, key: str, value: str, ttl: int) -> None:
        ttl = max(1, min(ttl, self.ttl))
        name = self.key(key)
        now = self.clock()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(name, value.encode("utf-8"), ex=ttl)
        pipe.zadd(self.index, {name: now})
        pipe.zremrangebyscore(self.index, "-inf", now - self.ttl)  # expired by Redis already
        pipe.zcard(self.index)
        size = int(pipe.execute()[-1])
        if size > self.max_entries:
            self.evict(size - self.max_entries)

    def evict(self, count: int) -> int:
        """Drop the ``count`` oldest entries; returns how many went."""
        popped = cast("list[tuple[bytes, float]]", self.client.zpopmin(self.index, count))
        names = [name for name, _ in popped]
        if names:
            self.client.delete(*names)
        return len(names)

    def __len__(self) -> int:
        return int(self.client.zcard(self.index))


@dataclass(frozen=True, slots=True)
class IpNetworkInfo:
    """The registry's record of the network holding one address.

    ``org`` is the registrant's name when the document carries it (RIPE often lists the
    registrant by handle only; then it is ``None`` and :attr:`holder` falls back to ``name``).
    ``abuse_emails`` are every abuse address, first preferred, the others fallbacks.
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

    ``base_url`` ``None`` (or :data:`RDAP_BOOTSTRAP`) asks the service ``bootstrap`` names
    (default: the shipped IANA registry); an http(s) URL sends every query there instead.
    ``http`` is an :class:`httpx.Client` to use (it stays open after :meth:`close`); without
    one the client makes its own with :func:`takedown.http.make_http_client`. Use as a context
    manager or call :meth:`close`. ``clock`` decides cache expiry (tests inject one).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        bootstrap: Bootstrap | None = None,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        policy: AddressPolicy | None = None,
        cache: RdapCache | None = None,
        cache_ttl: float = RDAP_CACHE_TTL,
        negative_ttl: float = RDAP_NEGATIVE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url: str | None = None
        if base_url is not None and base_url.strip() != RDAP_BOOTSTRAP:
            base = base_url.strip().rstrip("/")
            http_base_url(base, "RDAP base URL")
            self.base_url = base + "/"
        self.bootstrap = (
            bootstrap if bootstrap is not None or self.base_url else Bootstrap.builtin()
        )
        self._own_http = http is None
        self._http = http if http is not None else make_http_client(timeout=timeout, policy=policy)
        self.cache = cache
        self.cache_ttl = cache_ttl
        self.negative_ttl = negative_ttl
        self.clock = clock

    def __enter__(self) -> RdapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def ip(self, address: str) -> IpNetworkInfo:
        """The network record for ``address`` (IPv4, zero-padded IPv4 or IPv6)."""
        text = parse_address(address)
        if text is None:
            raise RdapError(f"{address!r} is not an IP address")
        base = self.base_url
        if base is None and self.bootstrap is not None:
            base = self.bootstrap.ip_base(text)
        if base is None:
            raise RdapNotFound(f"no RDAP service for {text} in the IANA bootstrap registry")
        _, info = self._lookup(base, f"ip/{text}", parse_ip_network)
        return info

    def domain(self, name: str) -> DomainInfo:
        """The registry record for domain ``name`` (a registrable domain such as example.net)."""
        text = name.strip().rstrip(".").lower()
        try:
            query = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise RdapError(f"{name!r} is not a domain name") from None
        if not query or "/" in query:
            raise RdapError(f"{name!r} is not a domain name")
        base = self.base_url
        if base is None and self.bootstrap is not None:
            base = self.bootstrap.domain_base(query)
        if base is None:
            raise RdapNotFound(f"no RDAP service for {query} in the IANA bootstrap registry")
        _, info = self._lookup(base, f"domain/{query}", parse_domain)
        return info

    def _lookup(
        self, base: str, path: str, parse: Callable[[Mapping[str, Any], str], _Parsed]
    ) -> tuple[str, _Parsed]:
        """Fetch ``base + path`` and parse it, through the cache; a failure is cached only
        ``negative_ttl`` seconds and raised again from the cache meanwhile."""
        url = base + path
        cached = self._cached(url)
        if cached is not None:
            if "error" in cached:
                kind = RdapNotFound if cached.get("not_found") else RdapError
                raise kind(f"{cached['error']} (cached for at most {int(self.negative_ttl)} s)")
            return url, parse(cached["doc"], str(cached.get("url") or url))
        try:
            final_url, body = self._get(url)
            doc = _decode(body, final_url)
            info = parse(doc, final_url)
        except RdapRefused:
            raise  # this configuration's verdict: a changed policy applies at the next lookup
        except RdapError as exc:
            self._store(
                url,
                {"error": str(exc), "not_found": isinstance(exc, RdapNotFound)},
                self.negative_ttl,
            )
            raise
        self._store(url, {"url": final_url, "doc": doc}, self.cache_ttl)
        return final_url, info

    def _cached(self, url: str) -> dict[str, Any] | None:
        if self.cache is None:
            return None
        raw = self.cache.get(url)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if (
            not isinstance(entry, dict)
            or entry.get("format") != _CACHE_FORMAT
            or not isinstance(entry.get("expires"), int | float)
            or entry["expires"] <= self.clock()
            or not (isinstance(entry.get("doc"), dict) or isinstance(entry.get("error"), str))
        ):
            return None
        return entry

    def _store(self, url: str, entry: dict[str, Any], ttl: float) -> None:
        if self.cache is None or ttl <= 0:
            return
        entry = {"format": _CACHE_FORMAT, "expires": self.clock() + ttl, **entry}
        self.cache.set(url, json.dumps(entry, separators=(",", ":")), max(1, int(ttl)))

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
        except HostRefused as exc:
            raise RdapRefused(f"RDAP request to {url} failed: {one_line(exc)}") from None
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


def parse_address(text: str) -> str | None:
    """An IP address in its compressed form, or ``None``.

    Accepts what registries write: a ``/32``-style suffix, and zero-padded IPv4
    (``074.125.000.000``, read as decimal as the registries mean it, never as octal).
    """
    value = text.strip().split("/", 1)[0] if isinstance(text, str) else ""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        pass
    if _PADDED_IPV4.match(value):
        octets = [int(part, 10) for part in value.split(".")]
        if all(o <= _MAX_OCTET for o in octets):
            return ".".join(str(o) for o in octets)
    return None


def _decode(body: bytes, url: str) -> Mapping[str, Any]:
    too_deep = f"RDAP answer from {url} is nested more than {MAX_DOCUMENT_DEPTH} levels deep"
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise RdapError(f"RDAP answer from {url} is not JSON: {one_line(str(exc))}") from None
    except RecursionError:  # the decoder recurses once per nested array or object
        raise RdapError(too_deep) from None
    if _nesting(doc) > MAX_DOCUMENT_DEPTH:
        raise RdapError(too_deep)
    if not isinstance(doc, dict):
        raise RdapError(f"RDAP answer from {url} is not a JSON object")
    return doc


def _nesting(doc: object) -> int:
    """How deep arrays and objects nest in ``doc``, counted without recursion (and no further
    than one level past :data:`MAX_DOCUMENT_DEPTH`)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack and deepest <= MAX_DOCUMENT_DEPTH:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in value)
    return deepest


def _error_detail(body: bytes) -> str:
    """``": <title>"`` from an RFC 9083 error document, or nothing."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
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
    """A missing class name is accepted (some RIPE answers omit it); another one is not."""
    found = doc.get("objectClassName")
    if found is None or (isinstance(found, str) and found.strip().lower() == expected):
        return
    where = f" from {url}" if url else ""
    raise RdapError(f"RDAP answer{where} is a {found!r} object, expected {expected!r}")


def _string(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _address(value: object) -> str | None:
    """An address as written, minus the ``/32``-style suffix some RIR documents append."""
    text = _string(value)
    return None if text is None else parse_address(text)


def _cidrs(doc: Mapping[str, Any], start: str | None, end: str | None) -> tuple[str, ...]:
    out: list[str] = []
    for item in _list(doc.get("cidr0_cidrs")):
        if not isinstance(item, dict):
            continue
        prefix = _address(item.get("v4prefix") or item.get("v6prefix"))
        length = item.get("length")
        if isinstance(length, str) and _DECIMAL.fullmatch(length.strip()):
            length = int(length)
        if prefix is None or isinstance(length, bool) or not isinstance(length, int):
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
        if not isinstance(item, bool) and _DECIMAL.fullmatch(text) and int(text) <= _MAX_ASN:
            out.append(int(text))
    return tuple(out)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _roles(entity: Mapping[str, Any]) -> list[str]:
    roles = entity.get("roles")
    items = [roles] if isinstance(roles, str) else _list(roles)
    return [r.strip().lower() for r in items if isinstance(r, str)]


def _walk_entities(obj: Mapping[str, Any], depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every entity under ``obj``, depth first, each parent before its children."""
    if depth >= MAX_ENTITY_DEPTH:
        return
    for entity in _list(obj.get("entities")):
        if isinstance(entity, dict):
            yield entity
            yield from _walk_entities(entity, depth + 1)


def _abuse_emails(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """E-mail addresses of every ``abuse`` entity under ``obj`` and every e-mail typed
    ``abuse`` in ``obj`` or any entity under it, in document order, unique (ignoring case)."""
    out: dict[str, str] = {}
    for entity in (obj, *_walk_entities(obj)):
        abuse_entity = "abuse" in _roles(entity)
        for params, email in _vcard_items(entity, "email"):
            if abuse_entity or "abuse" in _param_types(params):
                out.setdefault(email.lower(), email)
    return tuple(out.values())


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


def _vcard_items(entity: Mapping[str, Any], prop: str) -> list[tuple[Mapping[str, Any], str]]:
    """``(parameters, text)`` of each value of one jCard property (RFC 7095 items are
    ``[name, params, type, value, ...]``; a value may also be an array of texts). E-mail
    values lose a ``mailto:`` prefix and must look like an address."""
    card = entity.get("vcardArray")
    if not isinstance(card, list) or len(card) < 2 or not isinstance(card[1], list):
        return []
    out: list[tuple[Mapping[str, Any], str]] = []
    for item in card[1]:
        if not isinstance(item, list) or len(item) < 4 or not isinstance(item[0], str):
            continue
        if item[0].strip().lower() != prop:
            continue
        params = item[1] if isinstance(item[1], dict) else {}
        for raw in _flatten(item[3:]):
            value = _string(raw)
            if value is None:
                continue
            if prop == "email":
                if value.lower().startswith(_MAILTO):
                    value = value[len(_MAILTO) :].strip()
                value = value.strip("<>")
                if not _is_email(value):
                    continue
            out.append((params, value))
    return out


def _is_email(value: str) -> bool:
    """Whether ``value`` looks like one e-mail address: local@domain, the domain with a dot
    inside (not first or last) and nothing that cannot be in an address (white space)."""
    match = _EMAIL.fullmatch(value)
    return match is not None and "." in match.group(1)[1:-1]


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from (v for v in value if not isinstance(v, list))
        else:
            yield value


def _param_types(params: Mapping[str, Any]) -> set[str]:
    """The ``type`` parameter's values, lowercase (a string, a comma list or an array)."""
    raw = next((v for k, v in params.items() if isinstance(k, str) and k.lower() == "type"), None)
    items = raw if isinstance(raw, list) else [raw]
    return {
        part.strip().lower()
        for item in items
        if isinstance(item, str)
        for part in item.split(",")
        if part.strip()
    }


def _vcard_values(entity: Mapping[str, Any], prop: str) -> list[str]:
    """Text values of one jCard property."""
    return [value for _, value in _vcard_items(entity, prop)]


def _vcard_first(entity: Mapping[str, Any], prop: str) -> str | None:
    values = _vcard_values(entity, prop)
    return values[0] if values else None
