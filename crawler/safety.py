"""The crawler's own safety: a reported URL must not aim it at the hotline's own network.

Two layers, both switched off together by ``SAFETY_ALLOW_PRIVATE_NETWORKS`` (or the
environment variable ``HOTLINE_ALLOW_PRIVATE_NETWORKS=1``), which tests and the demo use:

* :class:`SafeResolver`, installed as ``TWISTED_DNS_RESOLVER``, drops every non-public address
  from each DNS answer before Twisted connects, so a hostname that resolves to 10.0.0.1, and a
  redirect to such a hostname, fail as an unresolvable host. This is the layer that matters:
  the check and the connection use the same answer, so DNS rebinding cannot slip between them.
* :class:`PrivateNetworkMiddleware` refuses IP-literal URLs up front (with a clear stat and log
  line) and drops any response whose peer address is not public, as a second line of defence.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingHostnameResolver
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.interfaces import IAddress

logger = logging.getLogger(__name__)

ENV_ALLOW_PRIVATE = "HOTLINE_ALLOW_PRIVATE_NETWORKS"
_TRUE = frozenset({"1", "true", "yes", "on"})


def allow_private_from(settings_value: bool) -> bool:
    """The setting, or the environment variable, lifts the guard."""
    return settings_value or os.environ.get(ENV_ALLOW_PRIVATE, "").strip().lower() in _TRUE


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses only (no private, loopback, link-local,
    shared, reserved, multicast or unspecified ranges; IPv4-mapped IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_ip(url: str) -> str | None:
    """The host of ``url`` when it is an IP literal."""
    try:
        host = urlsplit(url).hostname or ""
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


@implementer(IResolutionReceiver)
class _PublicOnlyReceiver:
    # Typed as Any: mypy reads zope Interface methods as unbound functions.
    def __init__(self, receiver: Any, host: str) -> None:
        self.receiver = receiver
        self.host = host
        self.refused: list[str] = []

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        host = getattr(address, "host", "")
        if is_public_address(host):
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
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class SafeResolver:
    """A caching hostname resolver that hands Twisted public addresses only."""

    def __init__(self, reactor: Any, cache_size: int, *, allow_private: bool) -> None:
        self.reactor = reactor
        self.inner = CachingHostnameResolver(reactor, cache_size)
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> SafeResolver:
        settings = crawler.settings
        cache = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        allow = allow_private_from(settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS"))
        return cls(reactor, cache, allow_private=allow)

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        receiver: Any = (
            resolutionReceiver
            if self.allow_private
            else _PublicOnlyReceiver(resolutionReceiver, hostName)
        )
        return self.inner.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )


class PrivateNetworkMiddleware:
    """Downloader middleware: refuse IP-literal private URLs, drop private peers."""

    def __init__(self, stats: StatsCollector, *, allow_private: bool) -> None:
        self.stats = stats
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateNetworkMiddleware:
        if crawler.stats is None:
            raise NotConfigured("PrivateNetworkMiddleware needs a stats collector")
        allow = allow_private_from(crawler.settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS"))
        return cls(crawler.stats, allow_private=allow)

    def process_request(self, request: Request) -> None:
        if self.allow_private:
            return
        ip = literal_ip(request.url)
        if ip is not None and not is_public_address(ip):
            self.stats.inc_value("safety/refused_private")
            raise IgnoreRequest(
                f"refused {request.url}: {ip} is not a public address "
                "(use --allow-private-networks to crawl private networks)"
            )

    def process_response(self, request: Request, response: Response) -> Response:
        if self.allow_private or response.ip_address is None:
            return response
        if not is_public_address(str(response.ip_address)):
            self.stats.inc_value("safety/refused_private")
            raise IgnoreRequest(
                f"dropped {response.url}: served from non-public address {response.ip_address}"
            )
        return response
