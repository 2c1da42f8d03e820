"""RDAP answers in the style of each RIR and of domain registries, and the IANA bootstrap
registry that sends each query to the right one, all on loopback.

The documents in ``tests/takedown/data/rdap`` are modelled on public RFC 9083 answers of ARIN,
RIPE NCC, APNIC, LACNIC, AFRINIC, a gTLD and a ccTLD registry, with documentation addresses
and example names only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from takedown.bootstrap import (
    BOOTSTRAP_FILES,
    BUILTIN_BOOTSTRAP_DIR,
    Bootstrap,
    BootstrapError,
    parse_registry,
    update_bootstrap,
)
from takedown.errors import RdapError
from takedown.rdap import RdapClient, RdapNotFound, parse_address, parse_domain, parse_ip_network
from tests.servers.rdap import RdapServer

DATA = Path(__file__).parent / "data" / "rdap"


def doc(name: str) -> dict[str, Any]:
    loaded = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


# --- one document per registry ------------------------------------------------------------


def test_arin_abuse_nested_under_the_organisation_not_the_noc() -> None:
    info = parse_ip_network(doc("arin_ip"))
    assert info.abuse_emails == ("abuse@example.net",)
    assert info.origin_asns == (64500,)
    assert info.cidrs == ("198.51.100.0/24",)
    assert info.holder == "Example Networks LLC"


def test_ripe_document_without_object_class_name_is_read() -> None:
    info = parse_ip_network(doc("ripe_ip"))
    assert "objectClassName" not in doc("ripe_ip")
    assert info.abuse_emails == ("abuse@hosting.example.nl", "abuse-escalation@hosting.example.nl")
    assert info.abuse == "abuse@hosting.example.nl"
    assert info.holder == "Example Hosting B.V."
    assert info.country == "NL"
    assert info.start_address == "192.0.2.0"


def test_apnic_ipv6_with_every_abuse_address_kept_in_order() -> None:
    info = parse_ip_network(doc("apnic_ip"))
    assert info.abuse_emails == ("abuse@example.com.au", "security@example.com.au")
    assert info.cidrs == ("2001:db8::/32",)
    assert info.holder == "Example Australia Pty Ltd"


def test_lacnic_zero_padded_addresses_and_upper_case_vcard() -> None:
    info = parse_ip_network(doc("lacnic_ip"))
    assert info.start_address == "198.51.100.0"
    assert info.end_address == "198.51.100.255"
    assert info.cidrs == ("198.51.100.0/24",)  # summarised from the padded range
    assert info.abuse_emails == ("ABUSO@exemplo.example.br",)  # not the technical contact


def test_afrinic_typed_abuse_list_of_values_and_string_roles() -> None:
    info = parse_ip_network(doc("afrinic_ip"))
    assert info.abuse_emails == ("abuse@example.co.za", "abuse2@example.co.za")
    assert info.holder == "Example Africa (Pty) Ltd"  # roles given as one string


def test_gtld_registry_registrar_and_nested_abuse() -> None:
    info = parse_domain(doc("domain_gtld"))
    assert info.name == "example.net"
    assert info.registrar == "Example Registrar, Inc."
    assert info.registrar_iana_id == "9999"
    assert info.registrar_abuse_emails == ("abuse@registrar.example",)


def test_cctld_registry_without_class_and_abuse_typed_in_the_registrar_card() -> None:
    info = parse_domain(doc("domain_cctld"))
    assert info.registrar == "Voorbeeld Registrar B.V."
    assert info.registrar_abuse_emails == ("abuse@registrar.example.nl",)


def test_a_different_object_class_is_still_an_error() -> None:
    with pytest.raises(RdapError, match="is a 'domain' object, expected 'ip network'"):
        parse_ip_network(doc("domain_gtld"))


def test_vcard_oddities_are_skipped_not_fatal() -> None:
    document = doc("ripe_ip")
    card = document["entities"][0]["vcardArray"][1]
    card.append(["email", {"type": "abuse"}, "text", "not an address"])
    card.append(["email", {"type": "abuse"}, "text", "ABUSE@hosting.example.nl"])  # duplicate
    card.append(["email", "params-not-a-dict", "text", "mailto:extra@hosting.example.nl"])
    info = parse_ip_network(document)
    assert info.abuse_emails == (
        "abuse@hosting.example.nl",
        "abuse-escalation@hosting.example.nl",
        "extra@hosting.example.nl",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("074.125.000.000", "74.125.0.0"),
        ("010.000.000.001", "10.0.0.1"),  # decimal, never octal
        ("192.0.2.0/32", "192.0.2.0"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    assert parse_address(text) == expected


# --- the bootstrap registry -------------------------------------------------------------------


def registry_file(description: str, services: list[Any]) -> dict[str, Any]:
    return {
        "description": description,
        "publication": "2026-11-01T00:00:00Z",
        "version": "1.0",
        "services": services,
    }


def write_bootstrap(target: Path, servers: dict[str, RdapServer]) -> None:
    """Bootstrap files that send 127.0.10/24 to "arin", 127.0.20/24 and .nl to "ripe" etc."""
    target.mkdir(parents=True, exist_ok=True)
    base = {name: server.url + "/" for name, server in servers.items()}
    files = {
        "ipv4.json": [
            [["127.0.10.0/24"], [base["arin"]]],
            [["127.0.20.0/24", "127.0.0.0/8"], [base["ripe"]]],
        ],
        "ipv6.json": [[["fd00::/8"], [base["ripe"]]]],
        "asn.json": [[["64496-64511"], [base["arin"]]]],
        "dns.json": [[["net"], [base["gtld"]]], [["nl"], [base["ripe"]]]],
    }
    for name, services in files.items():
        (target / name).write_text(json.dumps(registry_file(name, services)), encoding="utf-8")


@pytest.fixture
def registries() -> Iterator[dict[str, RdapServer]]:
    with (
        RdapServer("127.0.0.11") as arin,
        RdapServer("127.0.0.12") as ripe,
        RdapServer("127.0.0.13") as gtld,
    ):
        yield {"arin": arin, "ripe": ripe, "gtld": gtld}


def test_the_shipped_bootstrap_names_the_five_rirs() -> None:
    bootstrap = Bootstrap.builtin()
    assert bootstrap.ip_base("193.0.6.139") == "https://rdap.db.ripe.net/"
    assert bootstrap.ip_base("8.8.8.8") == "https://rdap.arin.net/registry/"  # https preferred
    assert bootstrap.ip_base("1.1.1.1") == "https://rdap.apnic.net/"
    assert bootstrap.ip_base("200.160.2.3") == "https://rdap.lacnic.net/rdap/"
    assert bootstrap.ip_base("196.1.1.1") == "https://rdap.afrinic.net/rdap/"
    assert bootstrap.ip_base("2001:67c:2e8::1") == "https://rdap.db.ripe.net/"
    assert bootstrap.ip_base("127.0.0.1") is None
    assert bootstrap.asn_base(3333) == "https://rdap.db.ripe.net/"
    assert bootstrap.domain_base("www.example.com") == "https://rdap.verisign.com/com/v1/"
    assert set(bootstrap.publications()) == set(BOOTSTRAP_FILES)
    assert (BUILTIN_BOOTSTRAP_DIR / "NOTICE").is_file()


def test_queries_go_to_the_registry_the_bootstrap_names(
    registries: dict[str, RdapServer], tmp_path: Path
) -> None:
    registries["arin"].add_network("127.0.10.0/24", doc("arin_ip"))
    registries["ripe"].add_network("127.0.0.0/8", doc("ripe_ip"))
    registries["ripe"].add_network("fd00::/8", doc("apnic_ip"))
    registries["ripe"].add_domain("example.nl", doc("domain_cctld"))
    registries["gtld"].add_domain("example.net", doc("domain_gtld"))
    write_bootstrap(tmp_path, registries)
    with RdapClient(bootstrap=Bootstrap.load(tmp_path)) as client:
        assert client.ip("127.0.10.7").abuse == "abuse@example.net"
        assert client.ip("127.0.20.9").abuse == "abuse@hosting.example.nl"
        assert client.ip("127.0.30.1").abuse == "abuse@hosting.example.nl"  # the /8
        assert client.ip("fd00::1").abuse == "abuse@example.com.au"
        assert client.domain("example.net").registrar == "Example Registrar, Inc."
        assert client.domain("example.nl").registrar == "Voorbeeld Registrar B.V."
        with pytest.raises(RdapNotFound, match=r"no RDAP service for 10\.0\.0\.1"):
            client.ip("10.0.0.1")
        with pytest.raises(RdapNotFound, match=r"no RDAP service for example\.org"):
            client.domain("example.org")
    assert registries["arin"].hits("/ip/127.0.10.7") == 1
    assert registries["ripe"].hits("/ip/127.0.10.7") == 0
    assert registries["ripe"].hits("/ip/127.0.20.9") == 1
    assert registries["gtld"].total_hits == 1


def test_an_explicit_url_overrides_the_bootstrap(
    registries: dict[str, RdapServer], tmp_path: Path
) -> None:
    registries["gtld"].add_network("127.0.0.0/8", doc("lacnic_ip"))
    write_bootstrap(tmp_path, registries)
    with RdapClient(registries["gtld"].url, bootstrap=Bootstrap.load(tmp_path)) as client:
        assert client.ip("127.0.10.7").abuse == "ABUSO@exemplo.example.br"
    assert registries["arin"].total_hits == 0


def test_longest_label_and_prefix_win() -> None:
    dns = registry_file(
        "dns", [[["uk"], ["https://uk.example/"]], [["co.uk"], ["https://co-uk.example"]]]
    )
    registry = parse_registry("dns", json.dumps(dns), "dns.json")
    assert registry.labels["co.uk"] == "https://co-uk.example/"  # "/" appended
    files = {k: (BUILTIN_BOOTSTRAP_DIR / v).read_bytes() for k, v in BOOTSTRAP_FILES.items()}
    regs = {k: parse_registry(k, v, k) for k, v in files.items()}
    regs["dns"] = registry
    bootstrap = Bootstrap(regs)
    assert bootstrap.domain_base("shop.example.co.uk") == "https://co-uk.example/"
    assert bootstrap.domain_base("example.uk") == "https://uk.example/"


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("ipv4", "{not json", "ipv4.json: not JSON"),
        ("ipv4", "[]", "expected a JSON object"),
        ("ipv4", json.dumps({"version": "2.0"}), "field 'version': expected '1.0'"),
        ("ipv4", json.dumps(registry_file("x", [])), "field 'services'"),
        (
            "ipv4",
            json.dumps(registry_file("x", [[["10.0.0.0/33"], ["https://a/"]]])),
            "10.0.0.0/33",
        ),
        ("ipv4", json.dumps(registry_file("x", [[["2001:db8::/32"], ["https://a/"]]])), "ipv4"),
        ("ipv6", json.dumps(registry_file("x", [[["fd00::/8"], ["ftp://a/"]]])), "not an http"),
        ("asn", json.dumps(registry_file("x", [[["10-5"], ["https://a/"]]])), "'10-5'"),
        (
            "asn",
            json.dumps(registry_file("x", [[["1-10"], ["https://a/"]], [["5"], ["https://b/"]]])),
            "overlaps",
        ),
        ("dns", json.dumps(registry_file("x", [[["bad label!"], ["https://a/"]]])), "DNS label"),
        ("dns", json.dumps(registry_file("x", [["net", ["https://a/"]]])), "services[1]"),
    ],
)
def test_bad_bootstrap_files_name_the_file_and_the_entry(
    kind: str, content: str, message: str
) -> None:
    with pytest.raises(BootstrapError, match=message.replace("[", r"\[")) as caught:
        parse_registry(kind, content, f"{BOOTSTRAP_FILES[kind]}")
    assert "\n" not in str(caught.value)


# --- hotline rdap update, as a function --------------------------------------------------------


@pytest.fixture
def mirror(rdap_server: RdapServer) -> RdapServer:
    """A loopback mirror of data.iana.org/rdap/ serving the shipped files, republished."""
    for name in BOOTSTRAP_FILES.values():
        data = json.loads((BUILTIN_BOOTSTRAP_DIR / name).read_text(encoding="utf-8"))
        data["publication"] = "2026-12-01T00:00:00Z"
        rdap_server.raw(f"/rdap/{name}", json.dumps(data).encode(), "application/json")
    return rdap_server


def test_update_writes_all_four_files(mirror: RdapServer, tmp_path: Path) -> None:
    target = tmp_path / "rdap-bootstrap"
    updated = update_bootstrap(target, f"{mirror.url}/rdap")
    assert sorted(f.name for f in updated) == sorted(BOOTSTRAP_FILES.values())
    assert {f.publication for f in updated} == {"2026-12-01T00:00:00Z"}
    assert sorted(p.name for p in target.iterdir()) == sorted(BOOTSTRAP_FILES.values())
    loaded = Bootstrap.load(target)
    assert set(loaded.publications().values()) == {"2026-12-01T00:00:00Z"}
    assert loaded.ip_base("193.0.6.139") == "https://rdap.db.ripe.net/"


@pytest.mark.parametrize("broken", ["bad", "missing"])
def test_a_bad_file_leaves_the_old_ones(mirror: RdapServer, tmp_path: Path, broken: str) -> None:
    target = tmp_path / "rdap-bootstrap"
    target.mkdir()
    for name in BOOTSTRAP_FILES.values():
        (target / name).write_bytes((BUILTIN_BOOTSTRAP_DIR / name).read_bytes())
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    if broken == "bad":
        mirror.raw("/rdap/dns.json", b'{"version": "1.0", "services": []}', "application/json")
    else:
        mirror.fail("/rdap/dns.json", 404, "Not Found")
    with pytest.raises(BootstrapError, match=r"dns\.json"):
        update_bootstrap(target, f"{mirror.url}/rdap/")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
