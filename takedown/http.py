"""The one factory for HTTP clients that talk to registries and abuse desks (RDAP, webhooks),
and the bounded read of a streamed answer that both use.

Crawling never goes through here: the crawler fetches with Scrapy and its safety rules. This
client is for the hotline's own outbound calls, to addresses the hotline configured or that an
RDAP registry returned (a registry's answer or redirect could name any host). They obey the
crawler's address policy (:class:`store.addresses.AddressPolicy`): each request's host, every
redirect's too, is resolved and refused when any of its addresses is not public, unless
``HOTLINE_ALLOW_PRIVATE_NETWORKS`` is on or the address is in ``allowed_networks`` (``[network]
allowed_networks`` of the configuration, e.g. an internal ticket system's webhook). A refused
host fails as a connection error naming it. Tests point the clients at real servers on
loopback, with private networks allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import httpx

from store.addresses import (
    AddressPolicy,
    AddressRefused,
    HostUnresolved,
    check_host,
    parse_networks,
)
from store.environment import allow_private_networks

__all__ = [
    "DEFAULT_HTTP_TIMEOUT",
    "USER_AGENT",
    "HostRefused",
    "make_http_client",
    "outbound_policy",
    "read_at_most",
]

#: Seconds allowed for connecting and for each read or write.
DEFAULT_HTTP_TIMEOUT = 10.0
USER_AGENT = "hotline-crawler (notice and takedown)"


class HostRefused(httpx.ConnectError):
    """A request, or a redirect, to a host the address policy refuses: raised before any
    connection. A verdict of this configuration, not of the remote server (never cached).
    A host that does not resolve is an ordinary :class:`httpx.ConnectError`."""


def outbound_policy(allowed_networks: Iterable[str] = ()) -> AddressPolicy:
    """The address policy of the hotline's own calls: public addresses, ``allowed_networks``,
    everything with ``HOTLINE_ALLOW_PRIVATE_NETWORKS``."""
    return AddressPolicy(allow_private_networks(), parse_networks(allowed_networks))


def _checked_by(policy: AddressPolicy) -> list[Callable[[httpx.Request], None]]:
    """The request hook that refuses a host the policy refuses, before httpx connects."""

    def check(request: httpx.Request) -> None:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            check_host(host, port, policy)
        except HostUnresolved as exc:  # the name's failure, like any other connection's
            raise httpx.ConnectError(f"{request.url}: {exc}", request=request) from None
        except AddressRefused as exc:
            raise HostRefused(f"refused {request.url}: {exc}", request=request) from None

    return [] if policy.open else [check]


def make_http_client(
    *,
    timeout: float = DEFAULT_HTTP_TIMEOUT,
    follow_redirects: bool = True,
    policy: AddressPolicy | None = None,
) -> httpx.Client:
    """A synchronous client with the project's user agent, timeouts and redirect policy, held
    to ``policy`` (default: :func:`outbound_policy`).

    Environment proxies are ignored (``trust_env=False``): a hotline's notices must go where the
    configuration says, not through whatever proxy a shell happens to export.
    """
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=follow_redirects,
        max_redirects=5,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
        event_hooks={"request": _checked_by(policy or outbound_policy())},
    )


def read_at_most(response: httpx.Response, limit: int, *, into: bytearray) -> bool:
    """Append the streamed body of ``response`` to ``into`` until more than ``limit`` bytes.

    True when the body is longer than ``limit`` (the rest is left unread). A remote answer is
    never read whole without a bound. ``into`` keeps what was read if reading fails half-way
    (the :class:`httpx.HTTPError` propagates), so a caller can still quote the start.
    """
    for chunk in response.iter_bytes():
        into += chunk
        if len(into) > limit:
            return True
    return False
