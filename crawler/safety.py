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

Proxies: none from the environment (``HTTPPROXY_ENABLED`` is off). A proxy configured with
``CRAWL_PROXY`` (``http://host:port``) resolves the target hosts itself, out of the resolver's
reach, so the middleware resolves each request's host first, in a thread, and refuses the
request when any of its addresses is refused (``safety/refused_private``); only then does the
request go to the proxy. The proxy's own host is exempt (it is configured, not reported). What
is left: the proxy resolves the host again, so a host that answers differently to the two
lookups (DNS rebinding) can still reach what the proxy can; a hotline that proxies its crawls
should have its proxy refuse private destinations too.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingHostnameResolver
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from store.addresses import AddressPolicy, AddressRefused, check_host, parse_networks
from store.environment import allow_private_networks, crawl_proxy

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.interfaces import IAddress

logger = logging.getLogger(__name__)


def literal_ip(url: str) -> str | None:
    """The host of ``url`` when it is an IP literal."""
    try:
        host = urlsplit(url).hostname or ""
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


#: Seconds a host's checked addresses are trusted before a proxied request looks again.
CHECK_CACHE_SECONDS = 60.0
#: Hosts whose check is remembered.
CHECK_CACHE_SIZE = 1024


def proxy_from_settings(settings: BaseSettings) -> str:
    """``CRAWL_PROXY``, else ``$HOTLINE_CRAWL_PROXY``: ``""`` or an ``http://host:port`` URL
    (``ValueError`` otherwise)."""
    proxy = str(settings.get("CRAWL_PROXY") or "").strip() or crawl_proxy()
    if not proxy:
        return ""
    try:
        parts = urlsplit(proxy)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValueError(f"CRAWL_PROXY: expected http://host:port, got {proxy!r}")
    return proxy


def policy_from_settings(settings: BaseSettings) -> AddressPolicy:
    """The crawl's address policy. The environment is read (and a bad value refused) even
    when the setting is on; a bad network is a hard error, never NotConfigured (that would
    silently switch the middleware, and with it the guard, off)."""
    from_env = allow_private_networks()
    allow = settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS") or from_env
    return AddressPolicy(allow, parse_networks(settings.getlist("SAFETY_ALLOWED_NETWORKS")))


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

    def __init__(
        self, reactor: Any, cache_size: int, policy: AddressPolicy, exempt: str = ""
    ) -> None:
        self.reactor = reactor
        self.inner = CachingHostnameResolver(reactor, cache_size)
        self.policy = policy
        self.exempt = exempt.lower()  # the configured proxy's host
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
        proxy = proxy_from_settings(settings)
        exempt = urlsplit(proxy).hostname or "" if proxy else ""
        return cls(reactor, cache, policy_from_settings(settings), exempt)

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
            if self.policy.open or (self.exempt and hostName.lower() == self.exempt)
            else _FilteringReceiver(
                resolutionReceiver, hostName, self.policy, self._remember_refused
            )
        )
        return self.inner.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )


class PrivateNetworkMiddleware:
    """Downloader middleware: refuse IP-literal private URLs, drop private peers; with a
    configured proxy, check each host's addresses before the request goes to the proxy."""

    def __init__(self, stats: StatsCollector, policy: AddressPolicy, proxy: str = "") -> None:
        self.stats = stats
        self.policy = policy
        self.proxy = proxy
        self._checked: OrderedDict[tuple[str, int], float] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateNetworkMiddleware:
        if crawler.stats is None:
            raise NotConfigured("PrivateNetworkMiddleware needs a stats collector")
        policy = policy_from_settings(crawler.settings)
        if crawler.settings.getbool("HTTPPROXY_ENABLED") and not policy.open:
            # A hard error, never NotConfigured (that would switch the guard off).
            raise ValueError(
                "HTTPPROXY_ENABLED: a proxy from the environment resolves the target hosts "
                "itself, out of the address policy's reach; configure one with CRAWL_PROXY "
                "(checked first), or crawl without one"
            )
        return cls(crawler.stats, policy, proxy_from_settings(crawler.settings))

    async def process_request(self, request: Request) -> None:
        proxy = request.meta.get("proxy")
        if proxy and proxy != self.proxy and not self.policy.open:
            self.stats.inc_value("safety/refused_proxy")
            message = f"refused {request.url}: a proxy that is not CRAWL_PROXY escapes the policy"
            logger.warning(message)
            raise IgnoreRequest(message)
        ip = literal_ip(request.url)
        if ip is not None and not self.policy.allows(ip):
            self._refuse(
                request,
                f"{ip} is not a public address "
                "(use --allow-private-networks to crawl private networks)",
            )
        if not self.proxy:
            return
        if ip is None and not self.policy.open:
            await self._check_host(request)
        request.meta["proxy"] = self.proxy

    async def _check_host(self, request: Request) -> None:
        """The request's host, resolved here, must be allowed whole (the proxy resolves it
        again, out of the resolver's reach); a recent check is reused."""
        parts = urlsplit(request.url)
        key = (
            (parts.hostname or "").lower(),
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        checked = self._checked.get(key)
        if checked is not None and time.monotonic() - checked < CHECK_CACHE_SECONDS:
            return
        try:
            await maybe_deferred_to_future(deferToThread(check_host, key[0], key[1], self.policy))
        except AddressRefused as exc:
            self._refuse(request, str(exc))
        self._checked[key] = time.monotonic()
        self._checked.move_to_end(key)
        while len(self._checked) > CHECK_CACHE_SIZE:
            self._checked.popitem(last=False)

    def _refuse(self, request: Request, why: str) -> None:
        self.stats.inc_value("safety/refused_private")
        message = f"refused {request.url}: {why}"
        logger.warning(message)
        raise IgnoreRequest(message)

    def process_response(self, request: Request, response: Response) -> Response:
        if self.policy.open or response.ip_address is None:
            return response
        if self.proxy and request.meta.get("proxy") == self.proxy:
            return response  # the peer is the proxy; the host was checked before
        if not self.policy.allows(str(response.ip_address)):
            self.stats.inc_value("safety/refused_private")
            message = (
                f"dropped {response.url}: served from non-public address {response.ip_address}"
            )
            logger.warning(message)
            raise IgnoreRequest(message)
        return response
