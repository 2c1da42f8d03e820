import asyncio

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.safety import PrivateNetworkMiddleware, literal_ip, proxy_from_settings
from store.addresses import AddressPolicy, is_public_address, parse_networks
from tests.helpers import HOST_A, HOST_B


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        HOST_A,
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "not-an-ip",
        "192.0.2.10",
        # Judged public before (Python's is_global): an IPv4 network behind IPv6, or a
        # special-purpose block.
        "64:ff9b::10.0.0.1",  # NAT64 of a private address
        "64:ff9b::7f00:1",  # NAT64 of loopback
        "64:ff9b:1::a00:1",  # local-use NAT64
        "::10.0.0.1",  # IPv4-compatible
        "::127.0.0.1",
        "::ffff:0:10.0.0.1",  # IPv4-translated
        "::ffff:0:127.0.0.1",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of loopback
        "fec0::1",  # site-local
        "192.0.0.8",  # IPv4 dummy address
        "192.0.0.9",
        "192.88.99.1",  # 6to4 relay anycast
        "2001:db8::1",
        "3fff::1",
        "5f00::1",
        "100::1",
        "[::1]",
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)
    assert not AddressPolicy().allows(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of a public address reaches it
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(address)


def test_literal_ip() -> None:
    assert literal_ip(f"http://{HOST_A}:8080/x") == HOST_A
    assert literal_ip("http://[::1]/") == "::1"
    assert literal_ip("http://example.org/") is None


def _middleware(*, allow: bool) -> tuple[PrivateNetworkMiddleware, MemoryStatsCollector]:
    crawler = get_crawler()
    stats = MemoryStatsCollector(crawler)
    return PrivateNetworkMiddleware(stats, AddressPolicy(allow_private=allow)), stats


def _process(mw: PrivateNetworkMiddleware, request: Request) -> None:
    """The middleware's process_request, without a reactor (no proxy: nothing to resolve)."""
    asyncio.run(mw.process_request(request))


def test_middleware_refuses_private_literals_and_private_peers() -> None:
    mw, stats = _middleware(allow=False)
    with pytest.raises(IgnoreRequest, match="not a public address"):
        _process(mw, Request("http://10.0.0.1/admin"))
    _process(mw, Request("http://example.org/"))  # names are checked by the resolver
    import ipaddress

    response = Response("http://example.org/", ip_address=ipaddress.ip_address("192.168.0.7"))
    with pytest.raises(IgnoreRequest, match="non-public address"):
        mw.process_response(Request("http://example.org/"), response)
    assert stats.get_value("safety/refused_private") == 2


def test_middleware_lets_everything_through_when_allowed() -> None:
    mw, stats = _middleware(allow=True)
    _process(mw, Request(f"http://{HOST_A}/"))
    assert stats.get_value("safety/refused_private") is None


def test_allowed_networks_open_only_what_they_name() -> None:
    policy = AddressPolicy(allowed_networks=parse_networks([f"{HOST_A}/32", "fd00::/8"]))
    assert policy.allows(HOST_A)
    assert policy.allows("fd12::1")
    assert not policy.allows(HOST_B)
    assert not policy.allows("10.0.0.1")
    assert policy.allows("8.8.8.8")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not a network"):
        parse_networks(["10.0.0.300"])


def test_no_request_goes_through_a_proxy_while_the_policy_is_closed() -> None:
    mw, stats = _middleware(allow=False)
    with pytest.raises(IgnoreRequest, match="a proxy that is not CRAWL_PROXY"):
        _process(mw, Request("http://example.org/", meta={"proxy": "http://relay:3128"}))
    assert stats.get_value("safety/refused_proxy") == 1
    # Turning Scrapy's proxy middleware on does not start a crawl, unless the policy is open.
    crawler = get_crawler(settings_dict={"HTTPPROXY_ENABLED": True})
    with pytest.raises(ValueError, match="HTTPPROXY_ENABLED"):
        PrivateNetworkMiddleware.from_crawler(crawler)
    opened = get_crawler(
        settings_dict={"HTTPPROXY_ENABLED": True, "SAFETY_ALLOW_PRIVATE_NETWORKS": True}
    )
    assert PrivateNetworkMiddleware.from_crawler(opened).policy.open


def test_the_proxy_is_configured_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_CRAWL_PROXY", raising=False)
    assert proxy_from_settings(Settings()) == ""
    monkeypatch.setenv("HOTLINE_CRAWL_PROXY", " http://relay.example:3128 ")
    assert proxy_from_settings(Settings()) == "http://relay.example:3128"
    assert proxy_from_settings(Settings({"CRAWL_PROXY": "http://other:8080"})) == (
        "http://other:8080"
    )
    for bad in ("relay:3128", "http://relay", "socks5://relay:1080", "http://[::1/", "http://:80"):
        with pytest.raises(ValueError, match="CRAWL_PROXY: expected http://host:port"):
            proxy_from_settings(Settings({"CRAWL_PROXY": bad}))
