"""The hotline's provider directory: who hosts what, and where their abuse desk is.

A hotline keeps a file of the providers it deals with, in YAML (``.yaml`` / ``.yml``) or CSV
(``.csv``); the extension picks the format. Each provider has::

    name         required, unique                      Example Hosting
    cidrs        IPv4 / IPv6 networks it announces     [192.0.2.0/24, 2001:db8::/32]
    asns         AS numbers ("AS64500" or 64500)       [64500]
    domains      domains it hosts; subdomains match    [example.net]
    abuse        the abuse mailbox                     abuse@example.net
    channel      smtp | webhook | outbox | form |      smtp
                 cloudflare (smtp)
    webhook_url  required for, and only for, webhook   https://abuse.example.net/api
    form_url     the desk's web form; required for     https://abuse.example.net/report
                 form, the fallback of cloudflare
    language     notice template language ("en")       de
    cdn          a CDN that forwards to the origin     false
    upstream     abuse address one level up            abuse@transit.example

YAML is a list of providers, or a mapping with one key ``providers`` holding that list. CSV has
a header row naming the columns; list fields are separated by spaces or ``|``; an empty cell
means "not given"; a row whose first cell starts with ``#`` is a comment.

Anything odd is a :class:`~takedown.errors.DirectoryError` naming the file, the line and the
field, on one line: ``providers.yaml:12: field 'cidrs': '10.0.0.0/33' is not a network``.
Unknown fields are errors (a typo such as ``cidr:`` must not silently drop a provider's routes),
and so are duplicate names and a network, AS number or domain claimed by two providers: a
notice must have exactly one recipient.

Lookups: :meth:`ProviderDirectory.match_domain` (the most specific domain wins),
:meth:`ProviderDirectory.match_ip` (the longest prefix wins), :meth:`ProviderDirectory.match_asn`.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from store.environment import parse_bool
from takedown.channels.form import form_url_problem
from takedown.errors import DirectoryError
from takedown.model import CHANNELS, Channel, Recipient

__all__ = [
    "CSV_SUFFIXES",
    "DEFAULT_CHANNEL",
    "DEFAULT_LANGUAGE",
    "FIELDS",
    "LIST_FIELDS",
    "MAX_ASN",
    "YAML_SUFFIXES",
    "IpNetwork",
    "Provider",
    "ProviderDirectory",
    "normalize_domain",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_T = TypeVar("_T")

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
CSV_SUFFIXES = frozenset({".csv"})
DEFAULT_CHANNEL: Channel = "smtp"
DEFAULT_LANGUAGE = "en"
#: AS numbers are 32-bit (RFC 6793).
MAX_ASN = 2**32 - 1
#: Every field a provider may have, in the order the documentation lists them.
FIELDS = (
    "name",
    "cidrs",
    "asns",
    "domains",
    "abuse",
    "channel",
    "webhook_url",
    "language",
    "cdn",
    "upstream",
    "form_url",
)
LIST_FIELDS = frozenset({"cidrs", "asns", "domains"})
#: How list cells are split in CSV (and in a YAML list written as one string).
_LIST_SEPARATOR = re.compile(r"[\s|]+")
_ASN_RE = re.compile(r"^(?:AS)?(\d{1,10})$", re.IGNORECASE)
_EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_MAX_DOMAIN_LENGTH = 253


def normalize_domain(name: str) -> str:
    """Lowercase ASCII form of a host or domain name (IDNA for non-ASCII), no trailing dot.

    Raises ``ValueError`` when ``name`` is not a plausible DNS name.
    """
    text = name.strip().rstrip(".").lower()
    if not text:
        raise ValueError("empty name")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(str(exc)) from None
    if len(text) > _MAX_DOMAIN_LENGTH or not all(_LABEL_RE.match(p) for p in text.split(".")):
        raise ValueError("not a DNS name")
    return text


@dataclass(frozen=True, slots=True)
class Provider:
    """One directory entry. ``origin`` (``FILE:LINE``) says where it was defined."""

    name: str
    abuse: str | None
    cidrs: tuple[IpNetwork, ...] = ()
    asns: tuple[int, ...] = ()
    domains: tuple[str, ...] = ()
    channel: Channel = DEFAULT_CHANNEL
    webhook_url: str | None = None
    language: str = DEFAULT_LANGUAGE
    cdn: bool = False
    upstream: str | None = None
    form_url: str | None = None
    origin: str = field(default="", compare=False)

    def recipient(self) -> Recipient:
        """The notice recipient: this provider's abuse desk on its channel."""
        return Recipient(
            provider=self.name,
            address=self.abuse,
            channel=self.channel,
            language=self.language,
            webhook_url=self.webhook_url,
            form_url=self.form_url,
        )


class ProviderDirectory:
    """A validated set of providers with domain, network and AS-number indexes.

    Build one with :meth:`load` (a file), :meth:`from_yaml` / :meth:`from_csv` (text) or
    :meth:`empty`. The constructor takes ready :class:`Provider` values and rejects duplicate
    names and networks, AS numbers or domains claimed twice, with ``ValueError``.
    """

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers = tuple(providers)
        self._by_name: dict[str, Provider] = {}
        self._by_domain: dict[str, Provider] = {}
        self._by_asn: dict[int, Provider] = {}
        # (ip version, prefix length) -> network -> provider; lengths searched longest first.
        self._by_network: dict[tuple[int, int], dict[IpNetwork, Provider]] = {}
        for provider in self._providers:
            self._add(provider)
        self._prefix_lengths: dict[int, tuple[int, ...]] = {
            version: tuple(sorted((n for v, n in self._by_network if v == version), reverse=True))
            for version in (4, 6)
        }

    def _add(self, provider: Provider) -> None:
        other = self._by_name.setdefault(provider.name, provider)
        if other is not provider:
            raise ValueError(f"field 'name': {provider.name!r} is already used{_at(other.origin)}")

        def claim(table: dict[Any, Provider], key: object, field_name: str) -> None:
            other = table.setdefault(key, provider)
            if other is not provider:
                raise ValueError(
                    f"field {field_name!r}: '{key}' is already listed by provider "
                    f"{other.name!r}{_at(other.origin)}"
                )

        for domain in provider.domains:
            claim(self._by_domain, domain, "domains")
        for asn in provider.asns:
            claim(self._by_asn, asn, "asns")
        for network in provider.cidrs:
            table = self._by_network.setdefault((network.version, network.prefixlen), {})
            claim(table, network, "cidrs")

    @classmethod
    def empty(cls) -> ProviderDirectory:
        """A directory with no providers: every lookup misses."""
        return cls(())

    @classmethod
    def load(cls, path: str | Path) -> ProviderDirectory:
        """Read a YAML or CSV directory file, chosen by its extension."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in YAML_SUFFIXES | CSV_SUFFIXES:
            raise DirectoryError(
                f"{path}: unknown directory format {suffix or '(no extension)'!r}; "
                "use .yaml, .yml or .csv"
            )
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DirectoryError(f"{path}: cannot read the provider directory: {exc}") from None
        if suffix in CSV_SUFFIXES:
            return cls.from_csv(text, source=str(path))
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<yaml>") -> ProviderDirectory:
        """Parse a YAML directory; ``source`` names it in error messages."""
        return cls._build(_yaml_entries(text, source), source)

    @classmethod
    def from_csv(cls, text: str, *, source: str = "<csv>") -> ProviderDirectory:
        """Parse a CSV directory; ``source`` names it in error messages."""
        return cls._build(_csv_entries(text, source), source)

    @classmethod
    def _build(cls, entries: Iterable[_Entry], source: str) -> ProviderDirectory:
        providers = [_parse_provider(entry, source) for entry in entries]
        directory = cls(())
        for provider in providers:  # one at a time, so a conflict names the later entry
            try:
                directory._add(provider)
            except ValueError as exc:
                raise DirectoryError(f"{provider.origin}: {exc}") from None
        return cls(providers)

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self._providers

    def __len__(self) -> int:
        return len(self._providers)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers)

    def get(self, name: str) -> Provider | None:
        """The provider called ``name``, if any."""
        return self._by_name.get(name)

    def match_domain(self, host: str) -> tuple[Provider, str] | None:
        """The provider whose domain equals ``host`` or is its most specific parent.

        Returns ``(provider, matched_domain)``; ``None`` when no entry covers ``host``.
        """
        if not self._by_domain:
            return None
        try:
            name = normalize_domain(host)
        except ValueError:
            return None
        labels = name.split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            provider = self._by_domain.get(candidate)
            if provider is not None:
                return provider, candidate
        return None

    def match_ip(
        self, ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> tuple[Provider, IpNetwork] | None:
        """The provider with the longest network prefix containing ``ip``, or ``None``."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for length in self._prefix_lengths[address.version]:
            network = ipaddress.ip_network((address, length), strict=False)
            provider = self._by_network[(address.version, length)].get(network)
            if provider is not None:
                return provider, network
        return None

    def match_asn(self, asn: int) -> Provider | None:
        """The provider that lists AS number ``asn``, or ``None``."""
        return self._by_asn.get(asn)


def _at(origin: str) -> str:
    return f" ({origin})" if origin else ""


# --- raw entries: values with their line numbers, whatever the file format ----------------


@dataclass(frozen=True, slots=True)
class _Value:
    """One field as written: its value, its line, and for lists each item's line."""

    value: Any
    line: int
    item_lines: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    line: int
    fields: Mapping[str, _Value]


def _error(source: str, line: int, message: str) -> DirectoryError:
    return DirectoryError(f"{source}:{line}: {message}")


def _field_error(source: str, line: int, name: str, message: str) -> DirectoryError:
    return _error(source, line, f"field {name!r}: {message}")


#: Nesting a provider directory may have (its own shape needs 4: the providers, an entry, a
#: list, a value); deeper is refused before the composer's recursion can run out.
MAX_YAML_DEPTH = 32


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (an alias bomb of a few lines expanded to
    gigabytes) and with bounded nesting (deep nesting overflowed the recursion)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors (&name) are not allowed", mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _yaml_entries(text: str, source: str) -> list[_Entry]:
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "unreadable"
        raise _error(source, line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{source}: YAML error: {exc}".replace("\n", " ")) from None
    if root is None:
        return []
    items: Node = root
    if isinstance(root, MappingNode):
        keys = _mapping(root, source)
        unknown = [k for k in keys if k != "providers"]
        if unknown:
            key_node = keys[unknown[0]][0]
            raise _error(
                source,
                _line(key_node),
                f"unknown top-level key {unknown[0]!r}; expected 'providers'",
            )
        if "providers" not in keys:
            return []
        items = keys["providers"][1]
        if _is_null(items):
            return []
    if not isinstance(items, SequenceNode):
        raise _error(source, _line(items), "expected a list of providers")
    entries = []
    for item in items.value:
        if not isinstance(item, MappingNode):
            raise _error(source, _line(item), "each provider must be a mapping of fields")
        fields: dict[str, _Value] = {}
        for key, (key_node, value_node) in _mapping(item, source).items():
            if isinstance(value_node, SequenceNode):
                values = [_construct(v) for v in value_node.value]
                lines = tuple(_line(v) for v in value_node.value)
                fields[key] = _Value(values, _line(key_node), lines)
            else:
                fields[key] = _Value(_construct(value_node), _line(value_node))
        entries.append(_Entry(_line(item), fields))
    return entries


def _mapping(node: MappingNode, source: str) -> dict[str, tuple[Node, Node]]:
    """Keys of a YAML mapping node; duplicate or non-string keys are errors."""
    out: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = _construct(key_node)
        if not isinstance(key, str):
            raise _error(source, _line(key_node), f"field names must be text, not {key!r}")
        if key in out:
            raise _error(source, _line(key_node), f"field {key!r} is given twice")
        out[key] = (key_node, value_node)
    return out


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _construct(node: Node) -> Any:
    """The Python value of one YAML node, built by PyYAML's safe constructor."""
    return SafeConstructor().construct_object(node, deep=True)


def _csv_entries(text: str, source: str) -> list[_Entry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    entries = []
    previous_end = 0
    try:
        for row in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                for name in header:
                    if name not in FIELDS:
                        raise _error(source, line, _unknown_field(name))
                    if header.count(name) > 1:
                        raise _error(source, line, f"column {name!r} is given twice")
                continue
            if len(row) > len(header):
                raise _error(
                    source, line, f"{len(row)} cells but the header names {len(header)} columns"
                )
            fields: dict[str, _Value] = {}
            for name, raw in zip(header, row, strict=False):
                cell = raw.strip()
                if not cell:
                    continue
                if name in LIST_FIELDS:
                    items = [part for part in _LIST_SEPARATOR.split(cell) if part]
                    fields[name] = _Value(items, line, (line,) * len(items))
                else:
                    fields[name] = _Value(cell, line)
            entries.append(_Entry(line, fields))
    except csv.Error as exc:
        raise _error(source, reader.line_num, f"CSV error: {exc}") from None
    return entries


def _unknown_field(name: str) -> str:
    return f"unknown field {name!r}; known fields: {', '.join(FIELDS)}"


# --- validation -----------------------------------------------------------------------------


def _parse_provider(entry: _Entry, source: str) -> Provider:
    fields = entry.fields
    for key, value in fields.items():
        if key not in FIELDS:
            raise _error(source, value.line, _unknown_field(key))

    def text(name: str) -> tuple[str | None, int]:
        value = fields.get(name)
        if value is None or value.value is None:
            return None, entry.line
        if isinstance(value.value, bool) or not isinstance(value.value, str | int | float):
            raise _field_error(source, value.line, name, f"{value.value!r} is not text")
        return str(value.value).strip() or None, value.line

    name, name_line = text("name")
    if name is None:
        raise _field_error(source, name_line, "name", "every provider needs a name")

    channel_text, channel_line = text("channel")
    channel = channel_text.lower() if channel_text else DEFAULT_CHANNEL
    if channel not in CHANNELS:
        raise _field_error(
            source,
            channel_line,
            "channel",
            f"{channel_text!r} is not one of {', '.join(CHANNELS)}",
        )

    abuse, abuse_line = text("abuse")
    if abuse is not None and not _EMAIL_RE.match(abuse):
        raise _field_error(source, abuse_line, "abuse", f"{abuse!r} is not an email address")
    if abuse is None and channel == "smtp":
        raise _field_error(
            source, abuse_line, "abuse", f"provider {name!r} uses smtp but has no abuse address"
        )

    webhook_url, webhook_line = text("webhook_url")
    if channel == "webhook":
        if webhook_url is None:
            raise _field_error(
                source, channel_line, "webhook_url", "channel webhook needs a webhook_url"
            )
        parts = urlsplit(webhook_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise _field_error(
                source, webhook_line, "webhook_url", f"{webhook_url!r} is not an http(s) URL"
            )
    elif webhook_url is not None:
        raise _field_error(
            source, webhook_line, "webhook_url", f"only used with channel webhook, not {channel}"
        )

    form_url = _form_url(text, source, channel, channel_line)

    language, language_line = text("language")
    if language is not None and not _LANGUAGE_RE.match(language):
        raise _field_error(
            source, language_line, "language", f"{language!r} is not a language tag like 'en'"
        )

    upstream, upstream_line = text("upstream")
    if upstream is not None and not _EMAIL_RE.match(upstream):
        raise _field_error(
            source, upstream_line, "upstream", f"{upstream!r} is not an email address"
        )

    return Provider(
        name=name,
        abuse=abuse,
        cidrs=tuple(_items(fields, "cidrs", source, _network)),
        asns=tuple(_items(fields, "asns", source, _asn)),
        domains=tuple(_items(fields, "domains", source, _domain)),
        channel=channel,
        webhook_url=webhook_url,
        language=language or DEFAULT_LANGUAGE,
        cdn=_flag(fields.get("cdn"), source),
        upstream=upstream,
        form_url=form_url,
        origin=f"{source}:{entry.line}",
    )


def _form_url(
    text: Callable[[str], tuple[str | None, int]], source: str, channel: str, channel_line: int
) -> str | None:
    """The ``form_url`` field: required for ``form``, allowed for ``cloudflare`` (its
    fallback when the API is not configured), an error anywhere else."""
    form_url, line = text("form_url")
    if form_url is None:
        if channel == "form":
            raise _field_error(source, channel_line, "form_url", "channel form needs a form_url")
        return None
    if channel not in {"form", "cloudflare"}:
        raise _field_error(
            source, line, "form_url", f"only used with channel form or cloudflare, not {channel}"
        )
    problem = form_url_problem(form_url)
    if problem:
        raise _field_error(source, line, "form_url", problem)
    return form_url


def _items(
    fields: Mapping[str, _Value], name: str, source: str, parse: Callable[[Any], _T]
) -> list[_T]:
    value = fields.get(name)
    if value is None or value.value is None:
        return []
    raw = value.value
    if isinstance(raw, str):
        items: list[Any] = [p for p in _LIST_SEPARATOR.split(raw) if p]
        lines = (value.line,) * len(items)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        items, lines = [raw], (value.line,)
    elif isinstance(raw, list):
        items, lines = raw, value.item_lines or (value.line,) * len(raw)
    else:
        raise _field_error(source, value.line, name, f"expected a list, not {raw!r}")
    out: list[_T] = []
    seen: set[_T] = set()
    for item, line in zip(items, lines, strict=True):
        try:
            parsed = parse(item)
        except ValueError as exc:
            raise _field_error(source, line, name, str(exc)) from None
        if parsed in seen:
            raise _field_error(source, line, name, f"{item!r} is listed twice")
        seen.add(parsed)
        out.append(parsed)
    return out


def _network(item: Any) -> IpNetwork:
    text = str(item).strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a network") from None
    raise ValueError(f"{text!r} is not a network (host bits set; did you mean '{loose}'?)")


def _asn(item: Any) -> int:
    if isinstance(item, int) and not isinstance(item, bool):
        number = item
    else:
        match = _ASN_RE.match(str(item).strip())
        if match is None:
            raise ValueError(f"{item!r} is not an AS number")
        number = int(match.group(1))
    if not 0 < number <= MAX_ASN:
        raise ValueError(f"{item!r} is not an AS number (1 to {MAX_ASN})")
    return number


def _domain(item: Any) -> str:
    text = str(item).strip()
    if text.startswith("*."):
        raise ValueError(f"{text!r} is not a domain name (write {text[2:]!r}: subdomains match)")
    if "/" in text or ":" in text:
        raise ValueError(f"{text!r} is not a domain name (write the host name alone)")
    try:
        return normalize_domain(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a domain name") from None


def _flag(value: _Value | None, source: str) -> bool:
    if value is None or value.value is None:
        return False
    raw = value.value
    if isinstance(raw, bool):
        return raw
    try:
        return parse_bool(str(raw))
    except ValueError:
        raise _field_error(source, value.line, "cdn", f"{raw!r} is not true or false") from None
