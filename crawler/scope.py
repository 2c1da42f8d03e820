"""Which URLs belong to a seed's site: same registrable domain, by the Public Suffix List.

The suffix list is the snapshot bundled with ``tldextract``; it is never fetched at run time
(a crawler that phones home for its own configuration is a crawler that breaks offline).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

# Private suffixes count (user.github.io and other.github.io are two owners, two sites).
_EXTRACT = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
)
HTTP_SCHEMES = frozenset({"http", "https"})


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


@lru_cache(maxsize=4096)
def site_of_host(host: str) -> str:
    """The registrable domain of ``host`` (``a.b.example.co.uk`` -> ``example.co.uk``).

    An IP address is its own site; a host without a public suffix (``localhost``, an intranet
    name) is its own site too.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    result = _EXTRACT(host)
    return result.top_domain_under_public_suffix or host


def site_of(url: str) -> str:
    return site_of_host(_host(url))


def same_site(url: str, seed: str) -> bool:
    """True when ``url`` is on the same registrable domain as ``seed``."""
    host = _host(url)
    return bool(host) and site_of_host(host) == site_of(seed)
