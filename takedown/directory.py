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
:meth:`ProviderDirectory.match_ip` (the longest prefix wins), :meth:`ProviderDirectory.match_asn`:
dictionary probes on indexes built once, at load (a network lookup probes one table per prefix
length the directory uses, longest first).

Loading is one pass over the file: YAML is read as a stream of parser events (libyaml's, in C,
when PyYAML has it; PyYAML's own otherwise) and each provider is validated as soon as its entry
is complete, so a directory of hundreds of thousands of providers never exists as a YAML node
tree; the indexes are built once, when every entry is valid. Errors are reported as if the
whole file had been read first: a YAML syntax error anywhere wins over a bad entry, a bad entry
over a conflict between two entries. Where libyaml finds a syntax error, the file is read again
by PyYAML's parser, whose words (and line) the message has always used.
"""

from __future__ import annotations

import csv
import gc
import io
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
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
    "MAX_NUMBER_LENGTH",
    "MAX_YAML_DEPTH",
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
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_LABEL_RE = re.compile(_LABEL)
#: A name already in lowercase ASCII (IDNA) form: ``normalize_domain`` returns it as it is.
_ASCII_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_IPV4_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: ``a.b.c.d/n`` as ipaddress reads it (no leading zeros), for a fast path; ipaddress reads the
#: rest (``/08``, ``/255.0.0.0``) and words the errors.
_IPV4_CIDR_RE = re.compile(
    rf"{_IPV4_OCTET}\.{_IPV4_OCTET}\.{_IPV4_OCTET}\.{_IPV4_OCTET}/(3[0-2]|[12]?[0-9])"
)
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_MAX_DOMAIN_LENGTH = 253


def normalize_domain(name: str) -> str:
    """Lowercase ASCII form of a host or domain name (IDNA for non-ASCII), no trailing dot.

    Raises ``ValueError`` when ``name`` is not a plausible DNS name.
    """
    text = name.strip().rstrip(".").lower()
    if not text:
        raise ValueError("empty name")
    if len(text) <= _MAX_DOMAIN_LENGTH and _ASCII_DOMAIN_RE.fullmatch(text):
        return text  # what the IDNA codec would return, without its per-label work
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(str(exc)) from None
    labels = text.split(".")
    if len(text) > _MAX_DOMAIN_LENGTH or not all(_LABEL_RE.fullmatch(p) for p in labels):
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
        # (ip version, prefix length) -> network address as an integer -> provider
        self._by_network: dict[tuple[int, int], dict[int, Provider]] = {}
        # ip version -> (prefix length, netmask, table) for each length used, longest first
        self._network_tables: dict[int, tuple[tuple[int, int, dict[int, Provider]], ...]] = {}
        for provider in self._providers:
            self._add(provider)
        self._seal()

    def _add(self, provider: Provider) -> None:
        other = self._by_name.setdefault(provider.name, provider)
        if other is not provider:
            raise ValueError(f"field 'name': {provider.name!r} is already used{_at(other.origin)}")
        for domain in provider.domains:
            other = self._by_domain.setdefault(domain, provider)
            if other is not provider:
                raise _claimed("domains", domain, other)
        for asn in provider.asns:
            other = self._by_asn.setdefault(asn, provider)
            if other is not provider:
                raise _claimed("asns", asn, other)
        for network in provider.cidrs:
            table = self._by_network.setdefault((network.version, network.prefixlen), {})
            other = table.setdefault(int(network.network_address), provider)
            if other is not provider:
                raise _claimed("cidrs", network, other)

    def _seal(self) -> None:
        """Order each IP version's network tables for lookups: longest prefix first."""
        for version, bits in ((4, _IPV4_BITS), (6, _IPV6_BITS)):
            lengths = sorted((n for v, n in self._by_network if v == version), reverse=True)
            self._network_tables[version] = tuple(
                (length, _netmask(length, bits), self._by_network[(version, length)])
                for length in lengths
            )

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
        return cls._from_yaml(text, source, _LIBYAML_PARSER)

    @classmethod
    def from_csv(cls, text: str, *, source: str = "<csv>") -> ProviderDirectory:
        """Parse a CSV directory; ``source`` names it in error messages."""
        with _collector_paused():
            return cls._build(_csv_entries(text, source), source)

    @classmethod
    def _from_yaml(
        cls, text: str, source: str, fast_parser: Callable[[str], _Events] | None
    ) -> ProviderDirectory:
        """:meth:`from_yaml` with libyaml's parser (``fast_parser``), else PyYAML's own."""
        with _collector_paused():
            if fast_parser is not None:
                try:
                    return cls._build(_yaml_entries(fast_parser(text), source), source)
                except (yaml.YAMLError, UnicodeEncodeError):
                    pass  # a syntax error: PyYAML's parser below says it as it always has
            try:
                return cls._build(_yaml_entries(_PyYamlEvents(text), source), source)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line = mark.line + 1 if mark is not None else 1
                problem = exc.problem or exc.context or "unreadable"
                raise _error(source, line, f"YAML syntax error: {problem}") from None
            except yaml.YAMLError as exc:
                raise DirectoryError(f"{source}: YAML error: {_one_line(exc)}") from None

    @classmethod
    def _build(cls, entries: Iterable[_Entry], source: str) -> ProviderDirectory:
        """Validate ``entries`` as they come, then index them. A malformed file raises from
        ``entries`` (after its last entry), before the first entry that does not validate is
        reported; conflicts between entries come last, each naming the later entry."""
        providers: list[Provider] = []
        invalid: DirectoryError | None = None
        for entry in entries:
            if invalid is None:
                try:
                    providers.append(_parse_provider(entry, source))
                except DirectoryError as exc:
                    invalid = exc
        if invalid is not None:
            raise invalid
        directory = cls(())
        for provider in providers:
            try:
                directory._add(provider)
            except ValueError as exc:
                raise DirectoryError(f"{provider.origin}: {exc}") from None
        directory._providers = tuple(providers)
        directory._seal()
        return directory

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
        value = int(address)
        for length, netmask, table in self._network_tables[address.version]:
            provider = table.get(value & netmask)
            if provider is not None:
                network_class = _NETWORK_CLASSES[address.version]
                return provider, network_class((value & netmask, length))
        return None

    def match_asn(self, asn: int) -> Provider | None:
        """The provider that lists AS number ``asn``, or ``None``."""
        return self._by_asn.get(asn)


_IPV4_BITS = 32
_IPV6_BITS = 128
_NETWORK_CLASSES: dict[int, type[IpNetwork]] = {
    4: ipaddress.IPv4Network,
    6: ipaddress.IPv6Network,
}


def _netmask(length: int, bits: int) -> int:
    return ((1 << length) - 1) << (bits - length)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a directory loads.

    A load allocates millions of objects and frees few, none of them in cycles: each of the
    collector's full passes walks every object allocated so far, which made loading a large
    directory several times slower than the work itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _at(origin: str) -> str:
    return f" ({origin})" if origin else ""


def _claimed(field_name: str, key: object, other: Provider) -> ValueError:
    return ValueError(
        f"field {field_name!r}: '{key}' is already listed by provider {other.name!r}"
        f"{_at(other.origin)}"
    )


# --- raw entries: values with their line numbers, whatever the file format ----------------


class _Value(NamedTuple):
    """One field as written: its value, its line, and for lists each item's line."""

    value: Any
    line: int
    item_lines: tuple[int, ...] = ()


class _Entry(NamedTuple):
    line: int
    fields: Mapping[str, _Value]


def _error(source: str, line: int, message: str) -> DirectoryError:
    return DirectoryError(f"{source}:{line}: {message}")


def _field_error(source: str, line: int, name: str, message: str) -> DirectoryError:
    return _error(source, line, f"field {name!r}: {message}")


def _one_line(problem: object) -> str:
    return " ".join(str(problem).split())


#: Nesting a provider directory may have (its own shape needs 4: the providers, an entry, a
#: list, a value); deeper is refused before anything is built from it.
MAX_YAML_DEPTH = 32


class _Events(Protocol):
    """What :func:`_yaml_entries` reads: a YAML parser's event stream (PyYAML's ``Parser``
    or libyaml's ``CParser``)."""

    def peek_event(self) -> Any: ...

    def get_event(self) -> Any: ...

    def dispose(self) -> None: ...


class _PyYamlEvents:
    """PyYAML's own parser (pure Python), with the errors it lets out as plain exceptions
    (``chr()`` of a ``\\U`` escape beyond Unicode) turned into syntax errors at the line read."""

    def __init__(self, text: str) -> None:
        self._parser: Any = yaml.SafeLoader(text)

    def peek_event(self) -> Any:
        try:
            return self._parser.peek_event()
        except (ValueError, OverflowError) as exc:
            raise self._syntax_error(exc) from None

    def get_event(self) -> Any:
        try:
            return self._parser.get_event()
        except (ValueError, OverflowError) as exc:
            raise self._syntax_error(exc) from None

    def dispose(self) -> None:
        self._parser.dispose()

    def _syntax_error(self, exc: Exception) -> yaml.YAMLError:
        problem = f"unreadable text ({_one_line(exc)})"
        return yaml.scanner.ScannerError(None, None, problem, self._parser.get_mark())


#: libyaml's parser (C), when PyYAML was built with it; else only PyYAML's own (Python) is used.
_LIBYAML_PARSER: Callable[[str], _Events] | None = getattr(yaml, "CSafeLoader", None)
_IMPLICIT_RESOLVERS = yaml.SafeLoader.yaml_implicit_resolvers
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


def _yaml_entries(events: _Events, source: str) -> Iterator[_Entry]:
    """The providers of a YAML event stream, one entry at a time.

    Aliases (an alias bomb of a few lines expanded to gigabytes), anchors and nesting deeper
    than :data:`MAX_YAML_DEPTH` are refused where they appear. Other problems are raised once
    the stream has been read to its end, in the order the file's whole tree was once checked
    in: the top-level keys, then the shape of each entry. The parser's own errors propagate
    as ``yaml.YAMLError``.
    """
    try:
        yield from _YamlComposer(events, source).entries()
    finally:
        events.dispose()


class _YamlComposer:
    """Builds YAML nodes from parser events, as PyYAML's composer does, but for one provider
    entry at a time (see :func:`_yaml_entries`)."""

    def __init__(self, events: _Events, source: str) -> None:
        self._peek = events.peek_event
        self._next = events.get_event
        self._source = source
        self._problem: DirectoryError | None = None  # the first entry that is not a mapping

    def entries(self) -> Iterator[_Entry]:
        self._next()  # the stream's start
        if isinstance(self._peek(), StreamEndEvent):
            return
        self._next()  # the document's start
        start = self._peek()
        pairs: list[tuple[Node, Node]] = []
        root: Node | None = None
        if isinstance(start, SequenceStartEvent):
            yield from self._entries(0)
        elif isinstance(start, MappingStartEvent):
            yield from self._top_level(pairs)
        else:
            root = self._node(0)
        self._next()  # the document's end
        if not isinstance(self._peek(), StreamEndEvent):
            raise self._syntax_error(self._next(), "but found another document")
        problem = _top_level_problem(pairs, self._source)
        if root is not None:
            problem = _error(self._source, _line(root), "expected a list of providers")
        problem = problem or self._problem
        if problem is not None:
            raise problem

    def _top_level(self, pairs: list[tuple[Node, Node]]) -> Iterator[_Entry]:
        """The keys of a top-level mapping; the first ``providers`` list is read entry by entry."""
        self._check(self._next(), 0)
        streamed = False
        while not isinstance(self._peek(), MappingEndEvent):
            key = self._node(1)
            value_start = self._peek()
            if (
                not streamed
                and isinstance(value_start, SequenceStartEvent)
                and _is_text(key, "providers")
            ):
                streamed = True
                mark: Any = value_start.start_mark  # libyaml's marks are not PyYAML's class
                pairs.append((key, SequenceNode(_SEQ_TAG, [], mark, None)))
                yield from self._entries(1)
            else:
                pairs.append((key, self._node(1)))
        self._next()

    def _entries(self, depth: int) -> Iterator[_Entry]:
        """The entries of the providers list, a sequence at ``depth``."""
        self._check(self._next(), depth)
        while type(self._peek()) is not SequenceEndEvent:
            item = self._node(depth + 1)
            if self._problem is None:
                try:
                    entry = _entry(item, self._source)
                except DirectoryError as exc:
                    self._problem = exc
                else:
                    yield entry
        self._next()

    def _check(self, event: Any, depth: int) -> None:
        """Refuse an alias, an anchor, or a node nested too deep (``event`` starts a node)."""
        if event.anchor is not None or depth >= MAX_YAML_DEPTH:
            if isinstance(event, AliasEvent):
                problem = "aliases (*name) are not allowed"
            elif event.anchor is not None:
                problem = "anchors (&name) are not allowed"
            else:
                problem = f"nested deeper than {MAX_YAML_DEPTH} levels"
            raise self._syntax_error(event, problem)

    def _syntax_error(self, event: Any, problem: str) -> DirectoryError:
        return _error(self._source, event.start_mark.line + 1, f"YAML syntax error: {problem}")

    def _node(self, depth: int) -> Node:
        """The whole node that starts with the next event, at ``depth``."""
        event = self._next()
        self._check(event, depth)
        kind = type(event)
        tag = event.tag
        if kind is ScalarEvent:
            if tag is None or tag == "!":
                tag = _scalar_tag(event.value, event.implicit)
            return ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        peek = self._peek
        if kind is SequenceStartEvent:
            items = []
            while type(peek()) is not SequenceEndEvent:
                items.append(self._node(depth + 1))
            end = self._next()
            tag = _SEQ_TAG if tag is None or tag == "!" else tag
            return SequenceNode(tag, items, event.start_mark, end.end_mark, event.flow_style)
        pairs = []
        while type(peek()) is not MappingEndEvent:
            key = self._node(depth + 1)
            pairs.append((key, self._node(depth + 1)))
        end = self._next()
        tag = _MAP_TAG if tag is None or tag == "!" else tag
        return MappingNode(tag, pairs, event.start_mark, end.end_mark, event.flow_style)


def _scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag PyYAML's safe resolver gives a scalar (``!!int`` for a plain ``64500``, ...)."""
    if implicit[0]:
        for tag, pattern in _IMPLICIT_RESOLVERS.get(value[:1], ()):
            if pattern.match(value):
                return str(tag)
    return _STR_TAG


def _is_text(node: Node, text: str) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _STR_TAG and node.value == text


def _top_level_problem(pairs: list[tuple[Node, Node]], source: str) -> DirectoryError | None:
    """What is wrong with a top-level mapping, if anything: it may only hold ``providers``."""
    try:
        keys = _mapping(pairs, source)
    except DirectoryError as exc:
        return exc
    unknown = [k for k in keys if k != "providers"]
    if unknown:
        key_node = keys[unknown[0]][0]
        message = f"unknown top-level key {unknown[0]!r}; expected 'providers'"
        return _error(source, _line(key_node), message)
    if "providers" not in keys:
        return None
    items = keys["providers"][1]
    if _is_null(items) or isinstance(items, SequenceNode):
        return None
    return _error(source, _line(items), "expected a list of providers")


def _entry(item: Node, source: str) -> _Entry:
    """One provider's raw fields, from its YAML node."""
    if not isinstance(item, MappingNode):
        raise _error(source, _line(item), "each provider must be a mapping of fields")
    fields: dict[str, _Value] = {}
    for key, (key_node, value_node) in _mapping(item.value, source).items():
        if isinstance(value_node, SequenceNode):
            values = [_construct(v, source, key) for v in value_node.value]
            lines = tuple(_line(v) for v in value_node.value)
            fields[key] = _Value(values, _line(key_node), lines)
        else:
            fields[key] = _Value(_construct(value_node, source, key), _line(value_node))
    return _Entry(_line(item), fields)


def _mapping(pairs: list[tuple[Node, Node]], source: str) -> dict[str, tuple[Node, Node]]:
    """Keys of a YAML mapping node's pairs; duplicate or non-string keys are errors."""
    out: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in pairs:
        key = _construct(key_node, source)
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


_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
#: Longest scalar read as a number. PyYAML reads ``0x`` and 4 000 digits, or a sexagesimal
#: ``1:00:00:...``, into an integer too large to print (and slow to compute).
MAX_NUMBER_LENGTH = 100


def _construct(node: Node, source: str, name: str | None = None) -> Any:
    """The Python value of one YAML node (of field ``name``), built by PyYAML's safe
    constructor; a value it cannot build (an unknown tag, a timestamp of 30 February, an
    integer of ``0x_``) is a :class:`DirectoryError`."""
    if node.tag == _STR_TAG and isinstance(node, ScalarNode):
        return node.value
    is_number = isinstance(node, ScalarNode) and node.tag in _NUMBER_TAGS
    if is_number and len(node.value) > MAX_NUMBER_LENGTH:
        problem = f"a number longer than {MAX_NUMBER_LENGTH} characters"
    else:
        try:
            return SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
        except ValueError as exc:
            problem = str(exc)
        except (TypeError, AttributeError, OverflowError, KeyError, IndexError):  # !!bool x
            problem = f"not a valid {node.tag.replace('tag:yaml.org,2002:', '!!')}"
    message = f"cannot read the value: {_one_line(problem)}"
    if name is not None:
        raise _field_error(source, _line(node), name, message)
    raise _error(source, _line(node), message)


def _csv_entries(text: str, source: str) -> Iterator[_Entry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    columns: list[tuple[str, bool]] = []  # each column's field, and whether it is a list
    previous_end = 0
    try:
        for row in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                for name in header:
                    if name not in FIELDS:
                        raise _error(source, line, _unknown_field(name))
                    if header.count(name) > 1:
                        raise _error(source, line, f"column {name!r} is given twice")
                columns = [(name, name in LIST_FIELDS) for name in header]
                continue
            if len(row) > len(header):
                raise _error(
                    source, line, f"{len(row)} cells but the header names {len(header)} columns"
                )
            fields: dict[str, _Value] = {}
            for (name, is_list), raw in zip(columns, row, strict=False):
                cell = raw.strip()
                if not cell:
                    continue
                if is_list:
                    items = [part for part in _LIST_SEPARATOR.split(cell) if part]
                    fields[name] = _Value(items, line)
                else:
                    fields[name] = _Value(cell, line)
            yield _Entry(line, fields)
    except csv.Error as exc:
        raise _error(source, reader.line_num, f"CSV error: {exc}") from None


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
        try:
            parts = urlsplit(webhook_url)
            is_http = parts.scheme in {"http", "https"} and bool(parts.hostname)
        except ValueError:  # "http://[x": not even a URL
            is_http = False
        if not is_http:
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
    seen: set[_T] | None = set() if len(items) > 1 else None
    for item, line in zip(items, lines, strict=True):
        try:
            parsed = parse(item)
        except ValueError as exc:
            raise _field_error(source, line, name, str(exc)) from None
        if seen is not None:
            if parsed in seen:
                raise _field_error(source, line, name, f"{item!r} is listed twice")
            seen.add(parsed)
        out.append(parsed)
    return out


def _network(item: Any) -> IpNetwork:
    text = str(item).strip()
    match = _IPV4_CIDR_RE.fullmatch(text)
    if match is not None:  # the usual spelling, read without ipaddress' general parser
        a, b, c, d, length = map(int, match.groups())
        address = a << 24 | b << 16 | c << 8 | d
        if not address & ~_netmask(length, _IPV4_BITS):
            return ipaddress.IPv4Network((address, length))
    # What ipaddress.ip_network tries in turn: an IPv4 network never has a colon, an IPv6 one
    # always does.
    network_class = ipaddress.IPv6Network if ":" in text else ipaddress.IPv4Network
    try:
        return network_class(text)
    except ValueError:
        pass
    try:
        loose = network_class(text, strict=False)
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
