"""The RDAP client against a real loopback registry serving documents shaped like real ones."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator

import httpx
import pytest
import redis

from takedown.errors import RdapError
from takedown.rdap import (
    MAX_DOCUMENT_BYTES,
    RDAP_NEGATIVE_TTL,
    DomainInfo,
    IpNetworkInfo,
    RdapClient,
    RdapNotFound,
    RedisRdapCache,
    parse_domain,
    parse_ip_network,
)
from tests.helpers import Clock
from tests.servers.rdap import RdapServer, load_doc


@pytest.fixture
def client(rdap_server: RdapServer) -> Iterator[RdapClient]:
    with RdapClient(rdap_server.url, timeout=5.0) as client:
        yield client


# --- parsing ----------------------------------------------------------------------------------


def test_arin_style_network_with_abuse_nested_under_the_org() -> None:
    info = parse_ip_network(load_doc("arin_ip"), "http://registry.test/ip/127.0.10.7")
    assert info == IpNetworkInfo(
        url="http://registry.test/ip/127.0.10.7",
        handle="NET-127-0-10-0-1",
        name="EXAMPLE-NETWORKS-1",
        cidrs=("127.0.10.0/24",),
        start_address="127.0.10.0",
        end_address="127.0.10.255",
        country=None,
        org="Example Networks",
        abuse_emails=("abuse@example.net",),  # the NOC's address is not an abuse contact
        origin_asns=(64500,),
        parent_handle="NET-127-0-0-0-0",
    )
    assert info.asn == 64500
    assert info.abuse == "abuse@example.net"
    assert info.holder == "Example Networks"


def test_ripe_style_network_with_top_level_abuse_entity() -> None:
    info = parse_ip_network(load_doc("ripe_ip"))
    assert info.handle == "127.0.20.0 - 127.0.20.255"
    assert info.cidrs == ("127.0.20.0/24",)
    assert info.country == "NL"
    assert info.org == "Example Org Hosting B.V."
    assert info.abuse_emails == ("abuse@example.org",)  # not the org's info@ address
    assert info.origin_asns == ()
    assert info.asn is None
    assert info.parent_handle == "127.0.0.0 - 127.0.255.255"


def test_range_without_cidr0_is_summarized() -> None:
    doc = load_doc("ripe_ip")
    del doc["cidr0_cidrs"]
    # older RIR answers append a prefix length to the addresses
    doc["startAddress"], doc["endAddress"] = "127.0.20.0/32", "127.0.21.127/32"
    info = parse_ip_network(doc)
    assert info.start_address == "127.0.20.0"
    assert info.cidrs == ("127.0.20.0/24", "127.0.21.0/25")
    assert info.network == "127.0.20.0/24, 127.0.21.0/25"


def test_registrant_without_vcard_falls_back_to_network_name() -> None:
    doc = load_doc("ripe_ip")
    doc["entities"] = [e for e in doc["entities"] if e["handle"] != "ORG-EXO1-RIPE"]
    info = parse_ip_network(doc)
    assert info.org is None
    assert info.holder == "EXAMPLE-ORG-HOSTING"
    assert info.abuse == "abuse@example.org"


def test_mailto_uris_and_odd_shapes_are_tolerated() -> None:
    doc = load_doc("ripe_ip")
    abuse = doc["entities"][0]
    abuse["vcardArray"][1].append(["email", {}, "uri", "mailto:abuse2@example.org"])
    abuse["vcardArray"][1].append(["email", {}])  # too short: skipped
    doc["entities"].append("not an entity")
    doc["arin_originas0_originautnums"] = ["AS64510", True, "x"]
    info = parse_ip_network(doc)
    assert info.abuse_emails == ("abuse@example.org", "abuse2@example.org")
    assert info.origin_asns == (64510,)


def test_domain_registrar_and_its_nested_abuse_contact() -> None:
    info = parse_domain(load_doc("domain_registry"), "http://registry.test/domain/example.net")
    assert info == DomainInfo(
        url="http://registry.test/domain/example.net",
        name="example.net",
        handle="D1000001-EXAMPLE",
        registrar="Example Registrar, Inc.",
        registrar_iana_id="9999",
        registrar_abuse_emails=("abuse@registrar.example.org",),
    )
    assert info.registrar_abuse == "abuse@registrar.example.org"


def test_wrong_object_class_is_an_error() -> None:
    with pytest.raises(RdapError, match="is a 'domain' object, expected 'ip network'"):
        parse_ip_network(load_doc("domain_registry"), "http://registry.test/ip/127.0.0.1")
    with pytest.raises(RdapError, match="expected 'domain'"):
        parse_domain(load_doc("arin_ip"))


# --- the client against a real server -----------------------------------------------------------


def test_ip_lookup_uses_the_most_specific_registered_network(
    rdap_server: RdapServer, client: RdapClient
) -> None:
    rdap_server.add_network("127.0.0.0/8", load_doc("ripe_ip"))
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    info = client.ip("127.0.10.7")
    assert info.handle == "NET-127-0-10-0-1"
    assert info.url == f"{rdap_server.url}/ip/127.0.10.7"
    assert client.ip("127.0.99.1").handle == "127.0.20.0 - 127.0.20.255"
    assert rdap_server.hits("/ip/127.0.10.7") == 1


def test_ipv6_query_uses_the_compressed_form(rdap_server: RdapServer, client: RdapClient) -> None:
    doc = load_doc("ripe_ip")
    doc["cidr0_cidrs"] = [{"v6prefix": "fd00:20::", "length": 32}]
    rdap_server.add_network("fd00:20::/32", doc)
    assert client.ip("FD00:0020:0:0::5").cidrs == ("fd00:20::/32",)
    assert rdap_server.hits("/ip/fd00:20::5") == 1


def test_domain_lookup(rdap_server: RdapServer, client: RdapClient) -> None:
    rdap_server.add_domain("example.net", load_doc("domain_registry"))
    info = client.domain("Example.NET.")
    assert info.registrar == "Example Registrar, Inc."
    assert rdap_server.hits("/domain/example.net") == 1


def test_not_found_is_rdap_not_found(rdap_server: RdapServer, client: RdapClient) -> None:
    with pytest.raises(RdapNotFound, match=r"no RDAP record at http://127\.0\.0\.1:\d+/ip/"):
        client.ip("127.0.50.1")
    with pytest.raises(RdapNotFound):
        client.domain("example.org")


def test_server_error_names_the_url_and_the_title(
    rdap_server: RdapServer, client: RdapClient
) -> None:
    rdap_server.fail("/ip/127.0.10.7", 500, "Database unavailable")
    with pytest.raises(RdapError) as caught:
        client.ip("127.0.10.7")
    assert not isinstance(caught.value, RdapNotFound)
    assert str(caught.value) == (
        f"RDAP server answered HTTP 500 for {rdap_server.url}/ip/127.0.10.7: Database unavailable"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (b"<html>rate limited</html>", "is not JSON"),
    ],
)
def test_malformed_documents_are_errors(
    rdap_server: RdapServer, client: RdapClient, body: bytes, message: str
) -> None:
    rdap_server.raw("/ip/127.0.10.7", body)
    with pytest.raises(RdapError, match=message) as caught:
        client.ip("127.0.10.7")
    assert f"{rdap_server.url}/ip/127.0.10.7" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_oversized_document_is_refused(rdap_server: RdapServer, client: RdapClient) -> None:
    rdap_server.raw("/ip/127.0.10.7", b" " * (MAX_DOCUMENT_BYTES + 1))
    with pytest.raises(RdapError, match="larger than"):
        client.ip("127.0.10.7")


def test_server_down_is_an_error_naming_the_url() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    expected = rf"RDAP request to http://127\.0\.0\.1:{port}/ip/127\.0\.10\.7 failed: "
    with (
        RdapClient(f"http://127.0.0.1:{port}", timeout=2.0) as client,
        pytest.raises(RdapError, match=expected),
    ):
        client.ip("127.0.10.7")


def test_redirects_are_followed_to_another_registry(rdap_server: RdapServer) -> None:
    """rdap_server plays the bootstrap redirector (like rdap.org); a second one the registry."""
    with RdapServer("127.0.0.5") as registry:
        registry.add_network("127.0.10.0/24", load_doc("arin_ip"))
        registry.redirect("/registry/ip/127.0.10.7", f"{registry.url}/ip/127.0.10.7", 301)
        rdap_server.redirect("/ip/127.0.10.7", f"{registry.url}/registry/ip/127.0.10.7")
        with RdapClient(rdap_server.url) as client:
            info = client.ip("127.0.10.7")
        assert info.abuse == "abuse@example.net"
        assert info.url == f"{registry.url}/ip/127.0.10.7"
        assert rdap_server.hits("/ip/127.0.10.7") == 1
        assert registry.hits("/ip/127.0.10.7") == 1


def test_redirect_loop_is_an_error(rdap_server: RdapServer, client: RdapClient) -> None:
    rdap_server.redirect("/ip/127.0.10.7", f"{rdap_server.url}/ip/127.0.10.7")
    with pytest.raises(RdapError, match="redirect"):
        client.ip("127.0.10.7")


def test_bad_queries_and_base_urls() -> None:
    with pytest.raises(RdapError, match="not an http"):
        RdapClient("rdap.example.net")
    with RdapClient("http://127.0.0.1:9") as client:
        with pytest.raises(RdapError, match="not an IP address"):
            client.ip("example.net")
        with pytest.raises(RdapError, match="not a domain name"):
            client.domain("a/b")


def test_a_caller_supplied_http_client_stays_open(rdap_server: RdapServer) -> None:
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    with httpx.Client() as http:
        with RdapClient(rdap_server.url + "/", http=http) as client:
            assert client.ip("127.0.10.1").asn == 64500
        assert not http.is_closed


# --- cache --------------------------------------------------------------------------------------


def test_redis_cache_serves_repeat_lookups(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    rdap_server.add_domain("example.net", load_doc("domain_registry"))
    cache = RedisRdapCache(redis_client, redis_prefix, ttl=600)
    with RdapClient(rdap_server.url, cache=cache) as client:
        first = client.ip("127.0.10.7")
        second = client.ip("127.0.10.7")
        assert client.domain("example.net") == client.domain("example.net")
    assert first.abuse == second.abuse == "abuse@example.net"
    assert rdap_server.hits("/ip/127.0.10.7") == 1
    assert rdap_server.hits("/domain/example.net") == 1

    # keyed by the service's base URL and the query, not by the address alone
    key = f"{redis_prefix}rdap:doc:{rdap_server.url}/ip/127.0.10.7"
    assert cache.key(f"{rdap_server.url}/ip/127.0.10.7") == key
    stored = redis_client.get(key)
    assert isinstance(stored, bytes)
    assert json.loads(stored)["doc"]["handle"] == "NET-127-0-10-0-1"
    assert 0 < redis_client.ttl(key) <= 600  # the cache's ttl caps the client's day
    assert redis_client.exists(f"{redis_prefix}rdap:doc:{rdap_server.url}/domain/example.net")


def test_two_services_do_not_share_cache_entries(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    cache = RedisRdapCache(redis_client, redis_prefix)
    with RdapServer("127.0.0.6") as other:
        other.add_network("127.0.10.0/24", load_doc("ripe_ip"))
        with (
            RdapClient(rdap_server.url, cache=cache) as one,
            RdapClient(other.url, cache=cache) as two,
        ):
            assert one.ip("127.0.10.7").handle == "NET-127-0-10-0-1"
            assert two.ip("127.0.10.7").handle == "127.0.20.0 - 127.0.20.255"
        assert other.hits("/ip/127.0.10.7") == 1
    assert rdap_server.hits("/ip/127.0.10.7") == 1


def test_a_failed_answer_is_retried_after_the_negative_ttl(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    clock = Clock()
    cache = RedisRdapCache(redis_client, redis_prefix, clock=clock)
    rdap_server.fail("/ip/127.0.10.7", 503, "Try later")
    with RdapClient(rdap_server.url, cache=cache, negative_ttl=300, clock=clock) as client:
        for _ in range(2):  # the second failure comes from the cache
            with pytest.raises(RdapError, match="HTTP 503"):
                client.ip("127.0.10.7")
        assert rdap_server.hits("/ip/127.0.10.7") == 1
        key = cache.key(f"{rdap_server.url}/ip/127.0.10.7")
        assert 0 < redis_client.ttl(key) <= 300  # never kept a day
        rdap_server.add("/ip/127.0.10.7", load_doc("arin_ip"))
        clock.advance(299)
        with pytest.raises(RdapError):
            client.ip("127.0.10.7")
        assert rdap_server.hits("/ip/127.0.10.7") == 1
        clock.advance(2)
        assert client.ip("127.0.10.7").abuse == "abuse@example.net"
    assert rdap_server.hits("/ip/127.0.10.7") == 2


def test_a_not_found_answer_stays_not_found_from_the_cache(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    clock = Clock()
    cache = RedisRdapCache(redis_client, redis_prefix, clock=clock)
    with RdapClient(rdap_server.url, cache=cache, negative_ttl=60, clock=clock) as client:
        for _ in range(2):
            with pytest.raises(RdapNotFound):
                client.ip("127.0.10.7")
        clock.advance(61)
        with pytest.raises(RdapNotFound):
            client.ip("127.0.10.7")
    assert rdap_server.hits("/ip/127.0.10.7") == 2


def test_an_unreadable_document_is_only_cached_briefly(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    """The old cache kept a document that failed to parse for a day."""
    clock = Clock()
    cache = RedisRdapCache(redis_client, redis_prefix, clock=clock)
    rdap_server.add("/ip/127.0.10.7", load_doc("domain_registry"))  # the wrong kind of object
    with RdapClient(rdap_server.url, cache=cache, clock=clock) as client:
        with pytest.raises(RdapError, match="expected 'ip network'"):
            client.ip("127.0.10.7")
        rdap_server.add("/ip/127.0.10.7", load_doc("arin_ip"))
        clock.advance(RDAP_NEGATIVE_TTL + 1)
        assert client.ip("127.0.10.7").asn == 64500
    assert rdap_server.hits("/ip/127.0.10.7") == 2


def test_the_redis_cache_is_bounded_oldest_first(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    clock = Clock()
    cache = RedisRdapCache(redis_client, redis_prefix, max_entries=3, clock=clock)
    for n in range(5):
        cache.set(f"http://registry.test/ip/127.0.0.{n}", "{}", 600)
        clock.advance(1)
    assert len(cache) == 3
    kept = [n for n in range(5) if cache.get(f"http://registry.test/ip/127.0.0.{n}")]
    assert kept == [2, 3, 4]
    assert redis_client.zcard(cache.index) == 3


def test_a_corrupt_cache_entry_is_refetched(rdap_server: RdapServer) -> None:
    url = f"{rdap_server.url}/ip/127.0.10.7"

    class DictCache:
        def __init__(self) -> None:
            self.data: dict[str, str] = {url: "{corrupt"}

        def get(self, key: str) -> str | None:
            return self.data.get(key)

        def set(self, key: str, value: str, ttl: int) -> None:
            self.data[key] = value

    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    cache = DictCache()
    with RdapClient(rdap_server.url, cache=cache) as client:
        assert client.ip("127.0.10.7").asn == 64500
    assert json.loads(cache.data[url])["doc"]["objectClassName"] == "ip network"
    assert rdap_server.hits("/ip/127.0.10.7") == 1


def test_redis_cache_validates_its_settings(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="key prefix"):
        RedisRdapCache(redis_client, "bad prefix with spaces")
    with pytest.raises(ValueError, match="ttl"):
        RedisRdapCache(redis_client, "t:", ttl=0)
    with pytest.raises(ValueError, match="max_entries"):
        RedisRdapCache(redis_client, "t:", max_entries=0)


def test_documents_are_not_modified_by_parsing() -> None:
    doc = load_doc("arin_ip")
    before = copy.deepcopy(doc)
    parse_ip_network(doc)
    assert doc == before
