"""The crawler's own safety: a reported URL must not aim it at the hotline's own network.

An :class:`AddressPolicy` decides which peer addresses a crawl may connect to: public unicast
addresses always; private, loopback, link-local, shared and reserved ones only when
``SAFETY_ALLOW_PRIVATE_NETWORKS`` is on (``--allow-private-networks``, or the environment
variable ``HOTLINE_ALLOW_PRIVATE_NETWORKS=1``, read by :mod:`store.environment`: a value that
is not a yes/no stops the crawl with an error naming the variable), or when they fall in one
of the networks listed in ``SAFETY_ALLOWED_NETWORKS`` (``--allow-network CIDR``, e.g. a
hotline's own test lab).

It is enforced twice:

* :class:`SafeResolver`, installed as ``TWISTED_DNS_RESOLVER``, drops every refused address
  from each DNS answer before Twisted connects, so a hostname that resolves to 10.0.0.1, and a
  redirect to such a hostname, fail as an unresolvable host. The check and the connection use
  the same answer, so DNS rebinding cannot slip between them.
* :class:`PrivateNetworkMiddleware` refuses IP-literal URLs (also each redirect target, which
  passes through the downloader again) with a clear stat and log line, and drops any response
  whose peer address is refused, as a second line of defence.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingHostnameResolver
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from store.addresses import embedded_ipv4, is_public_address, parse_address
from store.environment import allow_private_networks

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.interfaces import IAddress

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(address: str) -> IPAddress | None:
    """The address, an IPv6 one carrying an IPv4 address as that IPv4 address."""
    ip = parse_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return embedded_ipv4(ip) or ip
    return ip


def literal_ip(url: str) -> str | None:
    """The host of ``url`` when it is an IP literal."""
    try:
        host = urlsplit(url).hostname or ""
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks; ``ValueError`` names the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(
                f"SAFETY_ALLOWED_NETWORKS: {value!r} is not a network ({exc})"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> AddressPolicy:
        # The environment is read (and a bad value refused) even when the setting is on.
        from_env = allow_private_networks()
        allow = settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS") or from_env
        # A bad network is a hard error, never NotConfigured: that would silently switch the
        # middleware, and with it the guard, off.
        return cls(allow, parse_networks(settings.getlist("SAFETY_ALLOWED_NETWORKS")))

    @property
    def open(self) -> bool:
        return self.allow_private

    def allows(self, address: str) -> bool:
        if self.allow_private:
            return True
        ip = _parse_ip(address)
        if ip is None:
            return False
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return True
        return is_public_address(address)


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    # Typed as Any: mypy reads zope Interface methods as unbound functions.
    def __init__(
        self, receiver: Any, host: str, policy: AddressPolicy, on_refused: Any = None
    ) -> None:
        self.receiver = receiver
        self.host = host
        self.policy = policy
        self.on_refused = on_refused
        self.refused: list[str] = []
        self.allowed = 0

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        host = getattr(address, "host", "")
        if self.policy.allows(host):
            self.allowed += 1
            self.receiver.addressResolved(address)
        else:
            self.refused.append(host)

    def resolutionComplete(self) -> None:
        if self.refused:
            logger.warning(
                "refused non-public address(es) %s for host %s "
                "(use --allow-private-networks to crawl private networks)",
                ", ".join(sorted(set(self.refused))),
                self.host,
            )
            if not self.allowed and self.on_refused is not None:
                self.on_refused(self.host, tuple(sorted(set(self.refused))))
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class SafeResolver:
    """A caching hostname resolver that hands Twisted allowed addresses only.

    It remembers the last hosts whose every address the policy refused
    (:meth:`refused_addresses`), so a failed request can be told apart: "this host does not
    resolve" is a fact about the host, "the policy refused it" a fact about the configuration.
    """

    #: How many refused hosts are remembered.
    REMEMBERED: int = 256

    def __init__(self, reactor: Any, cache_size: int, policy: AddressPolicy) -> None:
        self.reactor = reactor
        self.inner = CachingHostnameResolver(reactor, cache_size)
        self.policy = policy
        self._refused: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def _remember_refused(self, host: str, addresses: tuple[str, ...]) -> None:
        key = host.lower()
        self._refused[key] = addresses
        self._refused.move_to_end(key)
        while len(self._refused) > self.REMEMBERED:
            self._refused.popitem(last=False)

    def refused_addresses(self, host: str) -> tuple[str, ...]:
        """The addresses of ``host`` the policy refused on its last lookup, when it refused
        them all (empty when the host resolved to an allowed address, or was not looked up)."""
        return self._refused.get(host.lower(), ())

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> SafeResolver:
        settings = crawler.settings
        cache = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache, AddressPolicy.from_settings(settings))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        receiver: Any = (
            resolutionReceiver
            if self.policy.open
            else _FilteringReceiver(
                resolutionReceiver, hostName, self.policy, self._remember_refused
            )
        )
        return self.inner.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )


class PrivateNetworkMiddleware:
    """Downloader middleware: refuse IP-literal private URLs, drop private peers."""

    def __init__(self, stats: StatsCollector, policy: AddressPolicy) -> None:
        self.stats = stats
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateNetworkMiddleware:
        if crawler.stats is None:
            raise NotConfigured("PrivateNetworkMiddleware needs a stats collector")
        policy = AddressPolicy.from_settings(crawler.settings)
        if crawler.settings.getbool("HTTPPROXY_ENABLED") and not policy.open:
            # A hard error, never NotConfigured (that would switch the guard off).
            raise ValueError(
                "HTTPPROXY_ENABLED: a proxy resolves the target hosts itself, out of the "
                "address policy's reach; crawl without one (or with --allow-private-networks)"
            )
        return cls(crawler.stats, policy)

    def process_request(self, request: Request) -> None:
        if self.policy.open:
            return
        if request.meta.get("proxy"):
            self.stats.inc_value("safety/refused_proxy")
            message = f"refused {request.url}: requests through a proxy escape the address policy"
            logger.warning(message)
            raise IgnoreRequest(message)
        ip = literal_ip(request.url)
        if ip is not None and not self.policy.allows(ip):
            self.stats.inc_value("safety/refused_private")
            message = (
                f"refused {request.url}: {ip} is not a public address "
                "(use --allow-private-networks to crawl private networks)"
            )
            logger.warning(message)
            raise IgnoreRequest(message)

    def process_response(self, request: Request, response: Response) -> Response:
        if self.policy.open or response.ip_address is None:
            return response
        if not self.policy.allows(str(response.ip_address)):
            self.stats.inc_value("safety/refused_private")
            message = (
                f"dropped {response.url}: served from non-public address {response.ip_address}"
            )
            logger.warning(message)
            raise IgnoreRequest(message)
        return response
