"""Who receives the notice for one image URL.

:meth:`Router.route` tries, in order, and writes each step into the route's ``trail`` in words
an analyst can read:

1. the hotline's directory, by domain (the URL's host or a parent domain);
2. the directory, by network (longest prefix; entries marked ``cdn`` included);
3. the built-in CDN ranges: the CDN's abuse desk receives the notice and forwards it to the
   origin host;
4. the directory, by AS number: the AS announcing the address, from the hotline's offline
   IP-to-AS table (:mod:`takedown.ip2asn`), listed in a provider's ``asns`` (``directory-asn``);
5. RDAP for the address (the registry the IANA bootstrap names): an origin AS number listed in
   the directory routes to that provider (``directory-asn``), else the network's RDAP abuse
   contact receives it (``rdap``), its further abuse addresses kept as fallbacks;
6. nobody (``unroutable``): the notice waits for an analyst. When the host has a registrable
   domain, ``abuse@`` that domain (RFC 2142) is offered as the route's ``suggested`` recipient,
   which is never used until an analyst approves it.

The AS number and name from the IP-to-AS table are set on every route whose address is in the
table, whatever decided the recipient, so notices can show them.

Independently of the outcome, when RDAP is available the registrable domain's registrar and its
abuse address are looked up for escalation, and a directory provider's ``upstream`` becomes the
route's ``upstream_abuse``. An IP-literal host skips the DNS and domain lookups.

Routing given an address is pure computation over the directory and the CDN ranges; the only I/O
is the DNS lookup (when no address is given) and RDAP. RDAP and DNS failures never raise out of
:meth:`Router.route`: they are noted in the trail and routing falls through to the next step.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import tldextract

from store.text import one_line
from takedown.directory import Provider, ProviderDirectory
from takedown.errors import RdapError
from takedown.ip2asn import IpToAsn
from takedown.model import Channel, Recipient, Route, RouteMethod
from takedown.rdap import IpNetworkInfo, RdapClient, RdapNotFound

__all__ = [
    "RDAP_CHANNEL",
    "RDAP_LANGUAGE",
    "Resolver",
    "Router",
    "registrable_domain",
    "system_resolve",
]

#: Looks a host name up in DNS and returns its addresses, first preferred.
Resolver = Callable[[str], list[str]]

#: Channel and template language for a recipient found only through RDAP.
RDAP_CHANNEL: Channel = "smtp"
RDAP_LANGUAGE = "en"
#: The mailbox RFC 2142 reserves for abuse reports, suggested when nobody else is found.
RFC2142_MAILBOX = "abuse"
#: Longest URL quoted in a trail step (a data: URL can be megabytes).
MAX_URL_IN_TRAIL = 120

# The bundled public suffix list snapshot: never fetched at run time.
_EXTRACT = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
)


def system_resolve(host: str) -> list[str]:
    """The host's addresses from the system resolver (``getaddrinfo``), in its order, unique."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    out: dict[str, None] = {}
    for info in infos:
        out.setdefault(str(info[4][0]).split("%", 1)[0], None)
    return list(out)


def registrable_domain(host: str) -> str | None:
    """The domain a registry sells for ``host`` (``a.b.example.co.uk`` -> ``example.co.uk``).

    Private public-suffix entries are looked through on purpose: for ``user.github.io`` the
    registry record, and so the registrar, is that of ``github.io``. ``None`` for IP addresses
    and hosts without a public suffix (``localhost``).
    """
    if _ip_or_none(host) is not None:
        return None
    return _EXTRACT(host).top_domain_under_registry_suffix or None


def _ip_or_none(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


@dataclass
class _Draft:
    """A route being built: the fields of :class:`Route` plus the trail so far."""

    host: str
    ip: str | None = None
    trail: list[str] = field(default_factory=list)
    method: RouteMethod = "unroutable"
    recipient: Recipient | None = None
    provider: str | None = None
    asn: int | None = None
    network: str | None = None
    cdn: str | None = None
    upstream_abuse: str | None = None
    as_name: str | None = None
    suggested: Recipient | None = None

    def note(self, text: str) -> None:
        self.trail.append(text)

    def take(self, method: RouteMethod, provider: Provider, *, network: str | None) -> None:
        self.method = method
        self.recipient = provider.recipient()
        self.provider = provider.name
        self.network = network
        self.upstream_abuse = provider.upstream
        if provider.cdn:
            self.cdn = provider.name

    def route(self) -> Route:
        return Route(
            host=self.host,
            ip=self.ip,
            method=self.method,
            recipient=self.recipient,
            provider=self.provider,
            asn=self.asn,
            network=self.network,
            cdn=self.cdn,
            upstream_abuse=self.upstream_abuse,
            trail=tuple(self.trail),
            as_name=self.as_name,
            suggested=self.suggested,
        )


class Router:
    """Finds the recipient of a notice; see the module docstring for the order of steps.

    ``directory`` is the hotline's provider directory, ``cdns`` the CDN ranges (usually
    :func:`takedown.cdn.load_builtin_cdns`), ``rdap`` a client or ``None`` to work offline,
    ``resolve`` the DNS lookup (default: the system resolver), ``asn_table`` the hotline's
    IP-to-AS table or ``None``.
    """

    def __init__(
        self,
        directory: ProviderDirectory,
        cdns: ProviderDirectory,
        rdap: RdapClient | None,
        *,
        resolve: Resolver | None = None,
        asn_table: IpToAsn | None = None,
    ) -> None:
        self.asn_table = asn_table
        self.directory = directory
        self.cdns = cdns
        self.rdap = rdap
        self._resolve: Resolver = resolve if resolve is not None else system_resolve

    def route(self, url: str, ip: str | None = None) -> Route:
        """Route the image at ``url``; ``ip`` is the address it was fetched from, if known."""
        host = _host(url)
        draft = _Draft(host=host)
        if not host:
            shown = url if len(url) <= MAX_URL_IN_TRAIL else url[:MAX_URL_IN_TRAIL] + "..."
            draft.note(f"no host name in {shown!r}; nothing to route")
            return draft.route()
        literal = _ip_or_none(host)
        draft.ip = self._address(draft, host, literal, ip)
        self._as_of(draft)
        if not self._find_recipient(draft, host, literal):
            draft.note("no recipient found: the notice waits for an analyst")
            self._suggest(draft, host, literal)
        route = draft.route()
        if literal is None:
            route = self._add_registrar(route, host)
        return route

    # --- steps ----------------------------------------------------------------------------

    def _address(self, draft: _Draft, host: str, literal: str | None, ip: str | None) -> str | None:
        if ip is not None:
            given = _ip_or_none(ip.strip())
            if given is not None:
                draft.note(f"{host} was fetched from {given}")
                return given
            draft.note(f"ignoring {ip!r}: not an IP address")
        if literal is not None:
            draft.note(f"the host is an IP address ({literal}); no DNS lookup needed")
            return literal
        try:
            addresses = [a for a in (_ip_or_none(x) for x in self._resolve(host)) if a]
        except (OSError, UnicodeError) as exc:
            draft.note(f"DNS lookup of {host} failed: {one_line(exc)}")
            return None
        if not addresses:
            draft.note(f"DNS lookup of {host} returned no address")
            return None
        draft.note(f"{host} resolves to {addresses[0]}")
        return addresses[0]

    def _find_recipient(self, draft: _Draft, host: str, literal: str | None) -> bool:
        """Run steps 1 to 4; true when one of them found a recipient."""
        if literal is None:
            by_domain = self.directory.match_domain(host)
            if by_domain is not None:
                provider, domain = by_domain
                draft.take("directory-domain", provider, network=None)
                draft.note(
                    f"directory: {host} is under {domain}, listed for provider "
                    f"{provider.name!r}{_at(provider)}"
                )
                self._note_cdn(draft, provider)
                return True
            draft.note(f"directory: no domain entry covers {host}")
        ip = draft.ip
        if ip is None:
            draft.note("no IP address, so no network lookups")
            return False
        by_network = self.directory.match_ip(ip)
        if by_network is not None:
            provider, network = by_network
            draft.take("directory-cidr", provider, network=str(network))
            draft.note(
                f"directory: {ip} is in {network}, listed for provider "
                f"{provider.name!r}{_at(provider)}"
            )
            self._note_cdn(draft, provider)
            return True
        draft.note(f"directory: no network entry contains {ip}")
        by_cdn = self.cdns.match_ip(ip)
        if by_cdn is not None:
            provider, network = by_cdn
            draft.take("cdn", provider, network=str(network))
            draft.cdn = provider.name
            draft.note(f"CDN ranges: {ip} is in {network}, published by {provider.name}")
            self._note_cdn(draft, provider)
            return True
        draft.note(f"CDN ranges: {ip} is not in any built-in CDN range")
        if draft.asn is not None and self.asn_table is not None:
            by_asn = self.directory.match_asn(draft.asn)
            if by_asn is not None:
                draft.take("directory-asn", by_asn, network=None)
                draft.note(
                    f"directory: AS{draft.asn} is listed for provider {by_asn.name!r}{_at(by_asn)}"
                )
                self._note_cdn(draft, by_asn)
                return True
            draft.note(f"directory: AS{draft.asn} is not listed")
        return self._rdap_network(draft, ip)

    def _as_of(self, draft: _Draft) -> None:
        """The AS announcing the address, from the IP-to-AS table."""
        if self.asn_table is None or draft.ip is None:
            return
        found = self.asn_table.lookup(draft.ip)
        if found is None:
            draft.note(f"IP-to-AS table: {draft.ip} is not announced by any AS it lists")
            return
        draft.asn, draft.as_name = found.number, found.name or None
        draft.note(f"IP-to-AS table: {draft.ip} is announced by {found}")

    def _suggest(self, draft: _Draft, host: str, literal: str | None) -> None:
        """RFC 2142: offer ``abuse@`` the registrable domain, for an analyst to approve."""
        domain = None if literal is not None else registrable_domain(host)
        if domain is None:
            return
        address = f"{RFC2142_MAILBOX}@{domain}"
        draft.suggested = Recipient(
            provider=domain, address=address, channel=RDAP_CHANNEL, language=RDAP_LANGUAGE
        )
        draft.note(
            f"suggested: {address} (RFC 2142 mailbox of {domain}); sent only once an analyst "
            "approves it"
        )

    def _rdap_network(self, draft: _Draft, ip: str) -> bool:
        if self.rdap is None:
            draft.note("RDAP: not configured, skipped")
            return False
        try:
            info = self.rdap.ip(ip)
        except RdapError as exc:
            draft.note(f"RDAP: lookup of {ip} failed: {exc}")
            return False
        draft.network = info.network
        if draft.asn is None:
            draft.asn = info.asn
        draft.note(f"RDAP: {ip} is in {_describe(info)} ({info.url})")
        if info.asn is not None:
            provider = self.directory.match_asn(info.asn)
            if provider is not None:
                draft.take("directory-asn", provider, network=info.network)
                draft.note(
                    f"directory: AS{info.asn} is listed for provider "
                    f"{provider.name!r}{_at(provider)}"
                )
                self._note_cdn(draft, provider)
                return True
            draft.note(f"directory: AS{info.asn} is not listed")
        if info.abuse is None:
            draft.note("RDAP: the record names no abuse contact")
            return False
        holder = info.holder or ip
        draft.method = "rdap"
        draft.provider = holder
        draft.recipient = Recipient(
            provider=holder,
            address=info.abuse,
            channel=RDAP_CHANNEL,
            language=RDAP_LANGUAGE,
            fallbacks=info.abuse_emails[1:],
        )
        draft.note(f"RDAP: abuse contact {info.abuse} of {holder} receives the notice")
        if len(info.abuse_emails) > 1:
            draft.note(f"RDAP: fallback addresses {', '.join(info.abuse_emails[1:])}")
        return True

    @staticmethod
    def _note_cdn(draft: _Draft, provider: Provider) -> None:
        if provider.cdn:
            draft.note(
                f"{provider.name} is a CDN: it receives the notice and forwards it to the "
                "origin host"
            )

    def _add_registrar(self, route: Route, host: str) -> Route:
        """The registrar and its abuse address, for escalation (never changes the recipient)."""
        if self.rdap is None:
            return route
        trail = list(route.trail)
        domain = registrable_domain(host)
        if domain is None:
            trail.append(f"registrar: {host} has no registrable domain; skipped")
            return replace(route, trail=tuple(trail))
        try:
            info = self.rdap.domain(domain)
        except RdapNotFound as exc:
            trail.append(f"registrar: {exc}")
            return replace(route, trail=tuple(trail))
        except RdapError as exc:
            trail.append(f"registrar: lookup of {domain} failed: {exc}")
            return replace(route, trail=tuple(trail))
        if info.registrar is None:
            trail.append(f"registrar: the record for {domain} names no registrar")
        else:
            abuse = info.registrar_abuse or "no abuse address"
            trail.append(
                f"registrar: {domain} is registered through {info.registrar} ({abuse}), "
                "kept for escalation"
            )
        return replace(
            route,
            registrar=info.registrar,
            registrar_abuse=info.registrar_abuse,
            trail=tuple(trail),
        )


def _at(provider: Provider) -> str:
    return f" ({provider.origin})" if provider.origin else ""


def _describe(info: IpNetworkInfo) -> str:
    parts = [info.network or info.handle or "an unnamed network"]
    if info.handle and info.handle != parts[0]:
        parts[0] += f" (handle {info.handle})"
    if info.holder:
        parts.append(f"held by {info.holder}")
    if info.asn is not None:
        parts.append(f"origin AS{info.asn}")
    return ", ".join(parts)
