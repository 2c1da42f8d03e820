"""Routing: directory, CDN ranges and RDAP in order, against a real loopback RDAP registry.

Host names are resolved by a table (the ``resolve`` hook) so no DNS server is needed; every
address is in 127.0.0.0/8 except the CDN ones, which are only computed with, never contacted.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from takedown.cdn import load_builtin_cdns
from takedown.directory import ProviderDirectory
from takedown.model import Recipient, Route
from takedown.rdap import RdapClient
from takedown.routing import Router, registrable_domain, system_resolve
from tests.servers.rdap import RdapServer, load_doc

DIRECTORY = """\
providers:
  - name: Example Hosting
    domains: [example.net]
    cidrs: [127.0.0.0/22]
    abuse: abuse@hosting.example.net
    upstream: abuse@transit.example.org
  - name: Example Images
    cidrs: [127.0.2.0/24]
    abuse: abuse@images.example.org
    language: de
  - name: Example ASN Host
    asns: [AS64500]
    abuse: abuse@asn-host.example.org
    upstream: abuse@upstream.example.org
  - name: Example Edge
    cdn: true
    cidrs: [127.0.3.0/24]
    abuse: abuse@edge.example.net
"""

HOSTS = {
    "img.example.net": ["127.0.2.5"],
    "files.example.org": ["127.0.2.5", "127.0.0.9"],
    "edge.example.org": ["127.0.3.9"],
    "arin.example.org": ["127.0.10.7"],
    "photos.example.org": ["127.0.20.9"],
    "nobody.example.org": ["127.0.50.1"],
    "intranet": ["127.0.10.7"],
}


def table_resolve(host: str) -> list[str]:
    try:
        return list(HOSTS[host])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


def no_resolve(host: str) -> list[str]:
    raise AssertionError(f"routing resolved {host} although it had the address")


@pytest.fixture
def directory() -> ProviderDirectory:
    return ProviderDirectory.from_yaml(DIRECTORY, source="providers.yaml")


@pytest.fixture
def registry(rdap_server: RdapServer) -> RdapServer:
    """The loopback registry with an ARIN-style, a RIPE-style and a domain record."""
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    rdap_server.add_network("127.0.20.0/24", load_doc("ripe_ip"))
    rdap_server.add_domain("example.net", load_doc("domain_registry"))
    return rdap_server


@pytest.fixture
def rdap(registry: RdapServer) -> Iterator[RdapClient]:
    with RdapClient(registry.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def router(directory: ProviderDirectory, rdap: RdapClient) -> Router:
    return Router(directory, load_builtin_cdns(), rdap, resolve=table_resolve)


def mentions(route: Route, *phrases: str) -> bool:
    text = "\n".join(route.trail)
    return all(phrase in text for phrase in phrases)


# --- the directory first ------------------------------------------------------------------------


def test_directory_domain_beats_directory_network(router: Router) -> None:
    route = router.route("https://img.example.net/a/b.jpg")
    assert route.method == "directory-domain"
    assert route.host == "img.example.net"
    assert route.ip == "127.0.2.5"  # resolved and recorded even though the domain decided
    assert route.provider == "Example Hosting"
    assert route.recipient == Recipient("Example Hosting", "abuse@hosting.example.net", "smtp")
    assert route.upstream_abuse == "abuse@transit.example.org"
    assert route.cdn is None
    assert mentions(
        route,
        "img.example.net resolves to 127.0.2.5",
        "img.example.net is under example.net, listed for provider 'Example Hosting' "
        "(providers.yaml:2)",
    )


def test_registrar_is_looked_up_for_escalation(router: Router, registry: RdapServer) -> None:
    route = router.route("https://img.example.net/a/b.jpg")
    assert route.registrar == "Example Registrar, Inc."
    assert route.registrar_abuse == "abuse@registrar.example.org"
    assert registry.hits("/domain/example.net") == 1
    assert mentions(route, "registered through Example Registrar, Inc.", "escalation")
    # the recipient is still the directory's: the registrar is only an escalation path
    assert route.method == "directory-domain"


def test_directory_network_longest_prefix(router: Router, registry: RdapServer) -> None:
    route = router.route("http://files.example.org/x.png")
    assert route.method == "directory-cidr"
    assert route.ip == "127.0.2.5"  # the resolver's first address
    assert route.provider == "Example Images"  # /24 beats Example Hosting's /22
    assert route.network == "127.0.2.0/24"
    assert route.recipient is not None and route.recipient.language == "de"
    assert route.upstream_abuse is None
    assert mentions(route, "directory: no domain entry covers files.example.org")
    assert registry.hits("/ip/127.0.2.5") == 0  # the directory decided; no RDAP network query
    assert mentions(route, "registrar: no RDAP record at", "/domain/example.org (HTTP 404)")


def test_directory_cdn_entry_says_it_forwards(router: Router) -> None:
    route = router.route("http://edge.example.org/x.png")
    assert route.method == "directory-cidr"
    assert route.cdn == "Example Edge"
    assert route.recipient is not None and route.recipient.address == "abuse@edge.example.net"
    assert mentions(route, "Example Edge is a CDN", "forwards it to the origin host")


def test_caller_supplied_address_skips_dns(directory: ProviderDirectory, rdap: RdapClient) -> None:
    router = Router(directory, load_builtin_cdns(), rdap, resolve=no_resolve)
    route = router.route("http://files.example.org/x.png", ip="127.0.0.9")
    assert route.ip == "127.0.0.9"
    assert route.provider == "Example Hosting"
    assert mentions(route, "files.example.org was fetched from 127.0.0.9")


# --- built-in CDN ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ip", "network"),
    [
        ("https://img.example.org/photo.jpg", "104.16.0.10", "104.16.0.0/13"),
        ("https://img.example.org/photo.jpg", "2606:4700::6810:a", "2606:4700::/32"),
        ("https://[2606:4700::6810:b]/photo.jpg", None, "2606:4700::/32"),
        ("https://172.67.0.1/photo.jpg", None, "172.64.0.0/13"),
    ],
)
def test_cloudflare_ranges_route_to_cloudflare(
    directory: ProviderDirectory, url: str, ip: str | None, network: str
) -> None:
    """Pure computation: no DNS (the resolver refuses) and no RDAP; nothing is contacted."""
    router = Router(directory, load_builtin_cdns(), None, resolve=no_resolve)
    route = router.route(url, ip=ip)
    assert route.method == "cdn"
    assert route.cdn == route.provider == "Cloudflare"
    assert route.network == network
    assert route.recipient == Recipient(
        "Cloudflare", None, "cloudflare", "en", form_url="https://abuse.cloudflare.com/"
    )
    assert mentions(route, "published by Cloudflare", "forwards it to the origin host")


def test_directory_overrides_the_builtin_cdn_ranges() -> None:
    text = "- name: Cloudflare via our contact\n  cidrs: [104.16.0.0/16]\n  abuse: a@example.org\n"
    directory = ProviderDirectory.from_yaml(text)
    router = Router(directory, load_builtin_cdns(), None, resolve=no_resolve)
    route = router.route("https://img.example.org/p.jpg", ip="104.16.0.10")
    assert route.method == "directory-cidr"
    assert route.provider == "Cloudflare via our contact"


# --- RDAP ---------------------------------------------------------------------------------------


def test_arin_origin_asn_listed_in_the_directory(router: Router, registry: RdapServer) -> None:
    route = router.route("http://127.0.10.7/img/1.png")
    assert route.method == "directory-asn"
    assert route.provider == "Example ASN Host"
    assert route.asn == 64500
    assert route.network == "127.0.10.0/24"
    assert route.recipient == Recipient("Example ASN Host", "abuse@asn-host.example.org", "smtp")
    assert route.upstream_abuse == "abuse@upstream.example.org"
    assert mentions(
        route,
        "the host is an IP address (127.0.10.7); no DNS lookup needed",
        "origin AS64500",
        "AS64500 is listed for provider 'Example ASN Host'",
    )
    # an IP-literal host has no domain: no registrar lookup
    assert registry.total_hits == 1
    assert route.registrar is None


def test_arin_nested_abuse_contact_when_the_asn_is_not_listed(
    rdap: RdapClient, registry: RdapServer
) -> None:
    router = Router(ProviderDirectory.empty(), load_builtin_cdns(), rdap, resolve=table_resolve)
    route = router.route("https://arin.example.org/p.jpg")
    assert route.method == "rdap"
    assert route.provider == "Example Networks"
    assert route.recipient == Recipient("Example Networks", "abuse@example.net", "smtp", "en")
    assert route.asn == 64500
    assert mentions(route, "directory: AS64500 is not listed", "abuse contact abuse@example.net")
    assert registry.hits("/ip/127.0.10.7") == 1
    assert registry.hits("/domain/example.org") == 1


def test_ripe_style_top_level_abuse_contact(router: Router) -> None:
    route = router.route("https://photos.example.org/album/7.jpg")
    assert route.method == "rdap"
    assert route.ip == "127.0.20.9"
    assert route.provider == "Example Org Hosting B.V."
    assert route.recipient == Recipient(
        "Example Org Hosting B.V.", "abuse@example.org", "smtp", "en"
    )
    assert route.asn is None  # RIPE documents carry no origin AS
    assert route.network == "127.0.20.0/24"
    assert route.upstream_abuse is None
    assert mentions(route, "CDN ranges: 127.0.20.9 is not in any built-in CDN range")


def test_rdap_through_a_bootstrap_redirector(directory: ProviderDirectory) -> None:
    with RdapServer("127.0.0.5") as bootstrap, RdapServer("127.0.0.6") as registry:
        registry.add_network("127.0.20.0/24", load_doc("ripe_ip"))
        bootstrap.redirect("/ip/127.0.20.9", f"{registry.url}/ip/127.0.20.9")
        with RdapClient(bootstrap.url) as rdap:
            router = Router(directory, load_builtin_cdns(), rdap, resolve=table_resolve)
            route = router.route("https://photos.example.org/album/7.jpg")
    assert route.method == "rdap"
    assert route.recipient is not None and route.recipient.address == "abuse@example.org"
    assert mentions(route, f"({registry.url}/ip/127.0.20.9)")


def test_no_abuse_contact_is_unroutable(rdap_server: RdapServer) -> None:
    doc = load_doc("ripe_ip")
    doc["entities"] = [e for e in doc["entities"] if "abuse" not in e["roles"]]
    rdap_server.add_network("127.0.20.0/24", doc)
    with RdapClient(rdap_server.url) as rdap:
        router = Router(ProviderDirectory.empty(), load_builtin_cdns(), rdap, resolve=table_resolve)
        route = router.route("https://photos.example.org/album/7.jpg")
    assert route.method == "unroutable"
    assert route.recipient is None
    assert mentions(route, "RDAP: the record names no abuse contact", "waits for an analyst")


def test_unroutable_when_nothing_knows_the_address(router: Router) -> None:
    route = router.route("http://nobody.example.org/x.gif")
    assert route.method == "unroutable"
    assert route.recipient is None
    assert not route.routable
    assert route.ip == "127.0.50.1"
    assert mentions(route, "RDAP: lookup of 127.0.50.1 failed: no RDAP record")
    assert Route.from_json(route.to_json()) == route


# --- failures never raise: they go into the trail -----------------------------------------------


def broken(server: RdapServer, how: str) -> None:
    for path in ("/ip/127.0.20.9", "/domain/example.org"):
        if how == "500":
            server.fail(path, 500, "Internal Server Error")
        elif how == "malformed":
            server.raw(path, b'{"objectClassName": "ip network", "entities": [')
        elif how == "wrong-object":
            server.add(path, {"objectClassName": "autnum", "handle": "AS64500"})


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("500", "answered HTTP 500"),
        ("malformed", "is not JSON"),
        ("wrong-object", "is a 'autnum' object"),
    ],
)
def test_rdap_errors_fall_through(
    directory: ProviderDirectory, rdap_server: RdapServer, how: str, expected: str
) -> None:
    broken(rdap_server, how)
    with RdapClient(rdap_server.url) as rdap:
        router = Router(directory, load_builtin_cdns(), rdap, resolve=table_resolve)
        route = router.route("https://photos.example.org/album/7.jpg")
    assert route.method == "unroutable"
    assert mentions(route, "RDAP: lookup of 127.0.20.9 failed:", expected)
    assert mentions(route, "registrar: lookup of example.org failed:")
    assert all("\n" not in step for step in route.trail)


def test_rdap_server_down(directory: ProviderDirectory) -> None:
    with RdapServer() as server:
        url = server.url
    with RdapClient(url, timeout=2.0) as rdap:
        router = Router(directory, load_builtin_cdns(), rdap, resolve=table_resolve)
        unroutable = router.route("https://photos.example.org/album/7.jpg")
        by_domain = router.route("https://img.example.net/a.jpg")
    assert unroutable.method == "unroutable"
    assert mentions(unroutable, f"RDAP: lookup of 127.0.20.9 failed: RDAP request to {url}/ip/")
    # a directory decision stands when RDAP is down; only the registrar is missing
    assert by_domain.method == "directory-domain"
    assert by_domain.registrar is None
    assert mentions(by_domain, "registrar: lookup of example.net failed")


def test_dns_failure_is_noted_and_routing_goes_on(router: Router) -> None:
    route = router.route("http://unknown.example.net/x.png")
    assert route.ip is None
    assert route.method == "directory-domain"  # the domain alone decides
    assert mentions(route, "DNS lookup of unknown.example.net failed")

    route = router.route("http://unknown.example.org/x.png")
    assert route.method == "unroutable"
    assert mentions(route, "no IP address, so no network lookups")


def test_without_rdap_there_are_no_lookups(directory: ProviderDirectory) -> None:
    router = Router(directory, load_builtin_cdns(), None, resolve=table_resolve)
    route = router.route("https://photos.example.org/album/7.jpg")
    assert route.method == "unroutable"
    assert route.registrar is None
    assert mentions(route, "RDAP: not configured")


def test_hosts_without_a_registrable_domain_skip_the_registrar(
    router: Router, registry: RdapServer
) -> None:
    route = router.route("http://intranet/x.png")
    assert route.method == "directory-asn"
    assert mentions(route, "registrar: intranet has no registrable domain")
    assert registry.hits("/domain/intranet") == 0


def test_urls_without_a_host_are_unroutable(router: Router) -> None:
    for url in ("not a url", "data:image/png;base64,AAAA", "http://[::1/x"):
        route = router.route(url)
        assert route.method == "unroutable"
        assert route.recipient is None


def test_registrable_domain() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("img.example.net") == "example.net"
    # a private suffix is looked through: the registry knows github.io, not user.github.io
    assert registrable_domain("a.user.github.io") == "github.io"
    assert registrable_domain("localhost") is None
    assert registrable_domain("127.0.0.1") is None
    assert registrable_domain("::1") is None


def test_system_resolver_on_localhost() -> None:
    addresses = system_resolve("localhost")
    assert addresses
    assert all(a in {"127.0.0.1", "::1"} for a in addresses)
