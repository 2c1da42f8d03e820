"""The address policy of the hotline's own calls (RDAP, webhooks): a registry's answer or
redirect cannot aim them at the hotline's network."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from store.addresses import AddressPolicy, parse_networks
from store.environment import ENV_ALLOW_PRIVATE
from takedown.errors import RdapError, RdapRefused
from takedown.http import make_http_client, outbound_policy
from takedown.rdap import RdapClient, RedisRdapCache
from takedown.settings import SettingsError, TakedownSettings
from tests.servers.rdap import RdapServer, load_doc


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy as in production: private networks closed."""
    monkeypatch.delenv(ENV_ALLOW_PRIVATE)


@pytest.mark.usefixtures("closed")
def test_a_private_host_is_refused_before_any_connection(rdap_server: RdapServer) -> None:
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    with (
        make_http_client() as http,
        pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.1 is not|non-public address"),
    ):
        http.get(f"{rdap_server.url}/ip/127.0.10.7")
    with (
        RdapClient(rdap_server.url) as client,
        pytest.raises(RdapError, match="non-public address"),
    ):
        client.ip("127.0.10.7")
    assert rdap_server.hits("/ip/127.0.10.7") == 0


@pytest.mark.usefixtures("closed")
def test_a_redirect_to_a_private_host_is_refused(rdap_server: RdapServer) -> None:
    """The redirector is opened on purpose (an allowed network); where it sends the client
    is checked again."""
    with RdapServer("127.0.0.5") as registry:
        registry.add_network("127.0.10.0/24", load_doc("arin_ip"))
        rdap_server.redirect("/ip/127.0.10.7", f"{registry.url}/ip/127.0.10.7")
        policy = AddressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
        with (
            make_http_client(policy=policy) as http,
            RdapClient(rdap_server.url, http=http) as client,
            pytest.raises(RdapError, match=r"127\.0\.0\.5"),
        ):
            client.ip("127.0.10.7")
        assert rdap_server.hits("/ip/127.0.10.7") == 1
        assert registry.hits("/ip/127.0.10.7") == 0


@pytest.mark.usefixtures("closed")
def test_allowed_networks_and_the_environment_open_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not outbound_policy().allows("127.0.0.1")
    assert outbound_policy(["127.0.0.0/8"]).allows("127.0.0.1")
    assert not outbound_policy(["127.0.0.0/8"]).allows("10.0.0.1")
    assert outbound_policy().allows("8.8.8.8")
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "1")
    assert outbound_policy().allows("10.0.0.1")


def test_the_configuration_names_the_networks_notices_may_reach(tmp_path: Path) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text('[network]\nallowed_networks = ["10.1.2.0/24", "fd00::/8"]\n')
    settings = TakedownSettings.load(config, {})
    assert settings.allowed_networks == ("10.1.2.0/24", "fd00::/8")
    assert outbound_policy(settings.allowed_networks).allows("10.1.2.9")
    config.write_text('[network]\nallowed_networks = ["10.1.2.300/24"]\n')
    with pytest.raises(SettingsError, match=r"\[network\] allowed_networks: '10\.1\.2\.300/24'"):
        TakedownSettings.load(config, {})
    config.write_text('[network]\nallowed_networks = "10.1.2.0/24"\n')
    with pytest.raises(SettingsError, match="expected a list of CIDRs"):
        TakedownSettings.load(config, {})


@pytest.mark.usefixtures("closed")
def test_a_refused_registry_is_asked_once_the_policy_allows_it(
    rdap_server: RdapServer, redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A refusal is this configuration's verdict: cached like a failed lookup, it outlived a
    change of ``allowed_networks`` by the negative ttl (five minutes)."""
    rdap_server.add_network("127.0.10.0/24", load_doc("arin_ip"))
    cache = RedisRdapCache(redis_client, redis_prefix)
    with (
        RdapClient(rdap_server.url, cache=cache) as client,
        pytest.raises(RdapRefused, match="non-public address"),
    ):
        client.ip("127.0.10.7")
    assert rdap_server.hits("/ip/127.0.10.7") == 0
    opened = AddressPolicy(allowed_networks=parse_networks(["127.0.0.1/32"]))
    with (
        make_http_client(policy=opened) as http,
        RdapClient(rdap_server.url, cache=cache, http=http) as client,
    ):
        assert client.ip("127.0.10.7").abuse == "abuse@example.net"
    assert rdap_server.hits("/ip/127.0.10.7") == 1


@pytest.mark.usefixtures("closed")
def test_a_registry_that_does_not_resolve_is_cached_as_a_failure(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """Unlike a refusal, a name that does not resolve is the registry's failure: asked again
    only after the negative ttl. (A label of 64 characters fails in the resolver's IDNA
    step, before any DNS query.)"""
    cache = RedisRdapCache(redis_client, redis_prefix)
    base = f"http://{'a' * 64}.example"
    with RdapClient(base, cache=cache) as client:
        with pytest.raises(RdapError, match="does not resolve") as first:
            client.ip("192.0.2.7")
        assert not isinstance(first.value, RdapRefused)
        with pytest.raises(RdapError, match=r"does not resolve .*\(cached for at most 300 s\)"):
            client.ip("192.0.2.7")
