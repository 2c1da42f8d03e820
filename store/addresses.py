"""Which IP addresses are public: the one judgement every outgoing connection of the
project makes (crawls, rechecks, workers; see :mod:`crawler.safety`).

An address is public when it is globally reachable unicast by the IANA special-purpose address
registries (IPv4 and IPv6), with every IPv4 address embedded in an IPv6 one judged as that
IPv4 address: IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``) and 6to4 (``2002:ab:cd::``). So
``64:ff9b::10.0.0.1`` or ``2002:a00:1::1``, which Python's ``is_global`` calls global, reach a
private network and are refused.

:class:`AddressPolicy` adds what a hotline opens on purpose (``--allow-private-networks``,
``--allow-network CIDR``); :func:`check_host` resolves a host name and refuses it when any of
its addresses is not allowed, for connections whose peer the project does not see itself (a
request through a configured proxy, RDAP, webhooks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "AddressPolicy",
    "AddressRefused",
    "HostUnresolved",
    "check_host",
    "embedded_ipv4",
    "is_public_address",
    "parse_address",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


class AddressRefused(ValueError):
    """A host the address policy refuses (or that does not resolve, so cannot be checked); the
    message is one line naming the host and its refused addresses."""


class HostUnresolved(AddressRefused):
    """A host that does not resolve, so the policy cannot judge it: a failure of the name,
    not a verdict of the policy."""


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


def _judged(address: str) -> IPAddress | None:
    """The address, an IPv6 one carrying an IPv4 address as that IPv4 address."""
    ip = parse_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return embedded_ipv4(ip) or ip
    return ip


@dataclass(frozen=True)
class AddressPolicy:
    """Which peers a connection may reach: public addresses always; any address when
    ``allow_private``; otherwise also those in ``allowed_networks``."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @property
    def open(self) -> bool:
        return self.allow_private

    def allows(self, address: str) -> bool:
        if self.allow_private:
            return True
        ip = _judged(address)
        if ip is None:
            return False
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return True
        return is_public_address(address)


def check_host(host: str, port: int, policy: AddressPolicy) -> tuple[str, ...]:
    """Resolve ``host`` (blocking) and return its addresses when the policy allows every one;
    raise :class:`AddressRefused` when any is refused or the host does not resolve."""
    if policy.open:
        return ()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolved(f"{host}: cannot be checked, it does not resolve ({exc})") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    refused = [address for address in addresses if not policy.allows(address)]
    if refused or not addresses:
        raise AddressRefused(
            f"{host} resolves to non-public address(es) {', '.join(sorted(refused))}"
            " (use --allow-private-networks to reach private networks)"
        )
    return addresses
