"""Routing with real registry documents, the offline IP-to-AS table and the RFC 2142
suggestion, against loopback RDAP registries found through a bootstrap registry.

Host names are resolved by a table; every address contacted is in 127.0.0.0/8.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from takedown.bootstrap import Bootstrap
from takedown.cdn import load_builtin_cdns
from takedown.directory import ProviderDirectory
from takedown.ip2asn import AsInfo, Ip2AsnError, IpToAsn
from takedown.model import Recipient, Route
from takedown.rdap import RdapClient
from takedown.routing import Router
from takedown.settings import SettingsError, TakedownSettings
from tests.servers.rdap import RdapServer

DATA = Path(__file__).parent / "data" / "rdap"

IP2ASN = """\
127.0.0.0\t127.0.9.255\t0\tNone\tNot routed
127.0.10.0\t127.0.10.255\t64500\tUS\tEXAMPLE-NETWORKS - Example Networks LLC
127.0.20.0\t127.0.29.255\t64501\tNL\tEXAMPLE-HOSTING-AS
127.0.40.0\t127.0.40.255\t64502\tZA\tAFRICA-EXAMPLE-AS
fd00::\tfd00::ffff\t64503\tAU\tEXAMPLE-AP-AS
"""

HOSTS = {
    "img.example.net": ["127.0.10.7"],
    "photos.example.nl": ["127.0.20.9"],
    "files.example.co.za": ["127.0.40.4"],
    "nobody.example.org": ["127.0.50.1"],
    "v6.example.com.au": ["fd00::5"],
}


def table_resolve(host: str) -> list[str]:
    try:
        return list(HOSTS[host])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


def doc(name: str) -> dict[str, object]:
    loaded = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def rir(tmp_path: Path) -> Iterator[tuple[RdapServer, Bootstrap]]:
    """One loopback "RIR" with a RIPE, an ARIN, an AFRINIC and an APNIC style record, and a
    bootstrap registry that names it for 127.0.0.0/8 and fd00::/8 (and no TLD)."""
    with RdapServer("127.0.0.21") as server:
        server.add_network("127.0.10.0/24", doc("arin_ip"))
        server.add_network("127.0.20.0/24", doc("ripe_ip"))
        server.add_network("127.0.40.0/24", doc("afrinic_ip"))
        server.add_network("fd00::/8", doc("apnic_ip"))
        base = server.url + "/"
        for name, services in {
            "ipv4.json": [[["127.0.0.0/8"], [base]]],
            "ipv6.json": [[["fd00::/8"], [base]]],
            "asn.json": [[["64496-64511"], [base]]],
            "dns.json": [[["test"], ["http://127.0.0.1:9/"]]],
        }.items():
            (tmp_path / name).write_text(
                json.dumps(
                    {"version": "1.0", "publication": "2026-11-01T00:00:00Z", "services": services}
                ),
                encoding="utf-8",
            )
        yield server, Bootstrap.load(tmp_path)


def make_router(
    bootstrap: Bootstrap, directory: str = "[]", table: IpToAsn | None = None
) -> Iterator[Router]:
    with RdapClient(bootstrap=bootstrap, timeout=5.0) as rdap:
        yield Router(
            ProviderDirectory.from_yaml(directory, source="providers.yaml"),
            load_builtin_cdns(),
            rdap,
            resolve=table_resolve,
            asn_table=table,
        )


def test_ripe_document_without_object_class_routes_to_its_abuse_contact(
    rir: tuple[RdapServer, Bootstrap],
) -> None:
    server, bootstrap = rir
    [route] = [r.route("https://photos.example.nl/a.jpg") for r in make_router(bootstrap)]
    assert route.method == "rdap"
    assert route.recipient == Recipient(
        "Example Hosting B.V.",
        "abuse@hosting.example.nl",
        "smtp",
        "en",
        fallbacks=("abuse-escalation@hosting.example.nl",),
    )
    assert any("fallback addresses abuse-escalation@" in step for step in route.trail)
    assert server.hits("/ip/127.0.20.9") == 1
    # the route survives its JSON form (the notice store keeps it so)
    assert Route.from_json(route.to_json()) == route


def test_afrinic_and_apnic_style_records_route_with_fallbacks(
    rir: tuple[RdapServer, Bootstrap],
) -> None:
    _, bootstrap = rir
    for router in make_router(bootstrap):
        africa = router.route("http://files.example.co.za/x.png")
        v6 = router.route("http://v6.example.com.au/x.png")
    assert africa.recipient is not None and v6.recipient is not None
    assert (africa.recipient.address, africa.recipient.fallbacks) == (
        "abuse@example.co.za",
        ("abuse2@example.co.za",),
    )
    assert (v6.recipient.address, v6.recipient.fallbacks) == (
        "abuse@example.com.au",
        ("security@example.com.au",),
    )


def test_every_address_gets_its_as_number_and_name_from_the_table(
    rir: tuple[RdapServer, Bootstrap],
) -> None:
    _, bootstrap = rir
    table = IpToAsn.from_text(IP2ASN)
    for router in make_router(bootstrap, table=table):
        ripe = router.route("https://photos.example.nl/a.jpg")  # RIPE publishes no origin AS
        v6 = router.route("http://v6.example.com.au/x.png")
    assert (ripe.asn, ripe.as_name) == (64501, "EXAMPLE-HOSTING-AS")
    assert (v6.asn, v6.as_name) == (64503, "EXAMPLE-AP-AS")
    assert ripe.method == "rdap"
    assert any("announced by AS64501 (EXAMPLE-HOSTING-AS)" in step for step in ripe.trail)


def test_the_directory_asns_entry_routes_by_the_table_before_rdap(
    rir: tuple[RdapServer, Bootstrap],
) -> None:
    server, bootstrap = rir
    directory = """
- name: Example Hosting AS
  asns: [AS64501]
  abuse: abuse@as64501.example.org
"""
    table = IpToAsn.from_text(IP2ASN)
    for router in make_router(bootstrap, directory, table):
        route = router.route("https://photos.example.nl/a.jpg")
    assert route.method == "directory-asn"
    assert route.recipient is not None
    assert route.recipient.address == "abuse@as64501.example.org"
    assert route.as_name == "EXAMPLE-HOSTING-AS"
    assert server.hits("/ip/127.0.20.9") == 0  # no RDAP query was needed


def test_nobody_found_suggests_the_rfc2142_mailbox_but_routes_nowhere(
    rir: tuple[RdapServer, Bootstrap],
) -> None:
    _, bootstrap = rir
    for router in make_router(bootstrap):
        route = router.route("http://cdn.nobody.example.org/x.gif")
        literal = router.route("http://127.0.50.1/x.gif")
    assert route.method == "unroutable"
    assert route.recipient is None
    assert route.suggested == Recipient("example.org", "abuse@example.org", "smtp", "en")
    assert any("sent only once an analyst approves it" in step for step in route.trail)
    assert literal.suggested is None  # an IP address has no domain to suggest
    assert Route.from_json(route.to_json()).suggested == route.suggested


# --- the IP-to-AS table -----------------------------------------------------------------------


def test_ip2asn_lookup_at_the_edges_of_ranges() -> None:
    table = IpToAsn.from_text(IP2ASN)
    assert table.lookup("127.0.10.0") == AsInfo(
        64500, "EXAMPLE-NETWORKS - Example Networks LLC", "US"
    )
    assert table.lookup("127.0.10.255") is not None
    assert table.lookup("127.0.11.0") is None
    assert table.lookup("127.0.29.255") == AsInfo(64501, "EXAMPLE-HOSTING-AS", "NL")
    assert table.lookup("127.0.0.5") is None  # "Not routed" (AS 0) is no AS
    assert table.lookup("::ffff:127.0.10.1") == table.lookup("127.0.10.1")
    assert table.lookup("fd00::ffff") == AsInfo(64503, "EXAMPLE-AP-AS", "AU")
    assert table.lookup("fd00::1:0") is None
    assert table.lookup("not an ip") is None
    assert len(table) == 4
    assert str(AsInfo(64500, "X")) == "AS64500 (X)"


def test_ip2asn_reads_gzip_and_several_files_in_any_order(tmp_path: Path) -> None:
    v4, v6 = IP2ASN.splitlines()[:4], IP2ASN.splitlines()[4:]
    gz = tmp_path / "ip2asn-v4.tsv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(reversed(v4)) + "\n")
    plain = tmp_path / "ip2asn-v6.tsv"
    plain.write_text("\n".join(v6) + "\n", encoding="utf-8")
    table = IpToAsn.load([gz, plain])
    assert table.lookup("127.0.20.1") == AsInfo(64501, "EXAMPLE-HOSTING-AS", "NL")
    assert table.lookup("fd00::1") is not None
    assert table.sources == (str(gz), str(plain))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("127.0.0.0\t127.0.0", "ip2asn.tsv:2: expected 5 tab-separated fields"),
        ("127.0.0\t127.0.0.9\t1\tUS\tX", "ip2asn.tsv:2: field 'range_start': '127.0.0'"),
        ("127.0.0.0\tfd00::\t1\tUS\tX", "ip2asn.tsv:2: field 'range_end': fd00:: is not of"),
        ("127.0.0.9\t127.0.0.0\t1\tUS\tX", "ip2asn.tsv:2: field 'range_end': 127.0.0.0 is before"),
        ("127.0.0.0\t127.0.0.9\tASX\tUS\tX", "ip2asn.tsv:2: field 'AS_number': 'ASX'"),
    ],
)
def test_ip2asn_bad_lines_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "ip2asn.tsv"
    path.write_text(f"127.0.1.0\t127.0.1.255\t64500\tUS\tOK\n{line}\n", encoding="utf-8")
    with pytest.raises(Ip2AsnError) as caught:
        IpToAsn.load([path])
    assert str(caught.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(caught.value)


def test_ip2asn_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(Ip2AsnError, match="cannot read"):
        IpToAsn.load([tmp_path / "missing.tsv"])
    broken = tmp_path / "broken.tsv.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(Ip2AsnError, match="not a readable gzip file"):
        IpToAsn.load([broken])


# --- configuration ------------------------------------------------------------------------------


def test_routing_settings(tmp_path: Path) -> None:
    defaults = TakedownSettings.defaults({})
    assert defaults.rdap_url == "bootstrap"  # no third-party service by default
    assert (defaults.rdap_negative_ttl, defaults.rdap_cache_entries) == (300, 10_000)
    assert defaults.ip_to_asn == ()
    path = tmp_path / "hotline.toml"
    path.write_text(
        '[rdap]\nnegative_ttl = "2m"\ncache_entries = 50\n'
        '[routing]\nip_to_asn = ["v4.tsv.gz", "/abs/v6.tsv"]\n',
        encoding="utf-8",
    )
    loaded = TakedownSettings.load(path, {})
    assert (loaded.rdap_negative_ttl, loaded.rdap_cache_entries) == (120, 50)
    assert loaded.ip_to_asn == (tmp_path / "v4.tsv.gz", Path("/abs/v6.tsv"))
    path.write_text('[rdap]\nnegative_ttl = "1d"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\[rdap\] negative_ttl: at most 1h"):
        TakedownSettings.load(path, {})
    path.write_text("[routing]\nip_to_asn = 5\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\[routing\] ip_to_asn: expected a path"):
        TakedownSettings.load(path, {})
