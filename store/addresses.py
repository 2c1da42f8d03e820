"""Which IP addresses are public: the one judgement every outgoing connection of the
project makes (crawls, rechecks, workers; see :mod:`crawler.safety`).

An address is public when it is globally reachable unicast by the IANA special-purpose address
registries (IPv4 and IPv6), with every IPv4 address embedded in an IPv6 one judged as that
IPv4 address: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``) and 6to4 (``2002:ab:cd::``). So
``64:ff9b::10.0.0.1`` or ``2002:a00:1::1``, which Python's ``is_global`` calls global, reach a
private network and are refused.
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["embedded_ipv4", "is_public_address", "parse_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4: Final = ipaddress.IPv4Network
_V6: Final = ipaddress.IPv6Network

#: IPv4 special-purpose blocks that are not globally reachable (IANA registry), besides what
#: ``ipaddress`` already knows; 192.0.0.0/24 whole (its two anycast /32s included: nothing a
#: crawl needs), the 6to4 relay anycast, and the multicast and reserved ranges.
_NOT_PUBLIC_V4: Final = tuple(
    _V4(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
#: IPv6 special-purpose blocks that are not globally reachable (IANA registry), and the
#: deprecated site-local range; the blocks embedding IPv4 are handled by :func:`embedded_ipv4`.
_NOT_PUBLIC_V6: Final = tuple(
    _V6(n)
    for n in (
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64: Final = _V6("64:ff9b::/96")
_LOW32: Final = 0xFFFFFFFF


def parse_address(text: str) -> IPAddress | None:
    """The address in ``text`` (an IPv6 zone suffix ``%eth0`` ignored), or None."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would reach (mapped, translated,
    compatible, NAT64, 6to4), or None."""
    value = int(ip)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if value >> 32 == 0xFFFF0000:  # ::ffff:0:a.b.c.d, IPv4-translated
        return ipaddress.IPv4Address(value & _LOW32)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d, IPv4-compatible (:: and ::1 excluded)
        return ipaddress.IPv4Address(value & _LOW32)
    if ip in _NAT64:
        return ipaddress.IPv4Address(value & _LOW32)
    return ip.sixtofour


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _NOT_PUBLIC_V4)


def is_public_address(address: str | IPAddress) -> bool:
    """True for globally reachable unicast addresses only (see the module docstring)."""
    ip = parse_address(address) if isinstance(address, str) else address
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    inner = embedded_ipv4(ip)
    if inner is not None:
        return _public_v4(inner)
    return ip.is_global and not any(ip in net for net in _NOT_PUBLIC_V6)
