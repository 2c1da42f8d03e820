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
#: The longest host name (RFC 1035: 253 characters in text form) and label (63).
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63


def host_name_problem(host: str) -> str | None:
    """Why DNS cannot hold the host name ``host`` (an empty label, a label over 63 or a name
    over 253 characters, not IDNA-encodable; one trailing dot allowed), or None. Such names
    made Twisted's resolver log tracebacks."""
    name = host[:-1] if host.endswith(".") else host
    if any(not label for label in name.split(".")):
        return "empty label"
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = name
        if all(len(label) <= MAX_LABEL_LENGTH for label in name.split(".")):
            return "not encodable as IDNA"
    if any(len(label) > MAX_LABEL_LENGTH for label in ascii_name.split(".")):
        return f"a label longer than {MAX_LABEL_LENGTH} characters"
    if len(ascii_name) > MAX_HOST_LENGTH:
        return f"longer than {MAX_HOST_LENGTH} characters"
    return None


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
