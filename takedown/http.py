"""The one factory for HTTP clients that talk to registries and abuse desks (RDAP, webhooks),
and the bounded read of a streamed answer that both use.

Crawling never goes through here: the crawler fetches with Scrapy and its safety rules. This
client is for the hotline's own outbound calls, to addresses the hotline configured or that an
RDAP registry returned. Tests point it at real servers on loopback.
"""

from __future__ import annotations

import httpx

__all__ = ["DEFAULT_HTTP_TIMEOUT", "USER_AGENT", "make_http_client", "read_at_most"]

#: Seconds allowed for connecting and for each read or write.
DEFAULT_HTTP_TIMEOUT = 10.0
USER_AGENT = "hotline-crawler (notice and takedown)"


def make_http_client(
    *, timeout: float = DEFAULT_HTTP_TIMEOUT, follow_redirects: bool = True
) -> httpx.Client:
    """A synchronous client with the project's user agent, timeouts and redirect policy.

    Environment proxies are ignored (``trust_env=False``): a hotline's notices must go where the
    configuration says, not through whatever proxy a shell happens to export.
    """
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=follow_redirects,
        max_redirects=5,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
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
