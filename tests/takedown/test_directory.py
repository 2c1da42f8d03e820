"""The provider directory: YAML and CSV files, validation with exact lines, and lookups."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from takedown.cdn import load_builtin_cdns
from takedown.directory import Provider, ProviderDirectory
from takedown.errors import DirectoryError
from takedown.model import Recipient

YAML_DIRECTORY = """\
# The hotline's providers (test data: loopback networks, example domains).
providers:
  - name: Example Hosting
    cidrs:
      - 127.0.0.0/16
      - fd00:10::/32
    asns: [64500, "AS64501"]
    domains: [example.net]
    abuse: abuse@example.net
    upstream: abuse@transit.example.org

  - name: Example Images
    cidrs: [127.0.2.0/24]
    domains: [img.example.net]
    abuse: abuse@images.example.net
    language: de

  - name: Example Webhook Host
    cidrs: [127.0.2.128/25]
    channel: webhook
    webhook_url: https://abuse.example.org/api/notices
    abuse: abuse@example.org

  - name: Example Outbox Host
    channel: outbox
    domains: [files.example.org]

  - name: Example Edge
    cdn: true
    cidrs: [127.0.3.0/24]
    abuse: abuse@edge.example.net
"""

CSV_DIRECTORY = "\n".join(
    [
        "name,cidrs,asns,domains,abuse,channel,webhook_url,language,cdn,upstream",
        "# a comment row",
        "Example Hosting,127.0.0.0/16 | fd00:10::/32,AS64500 64501,example.net,"
        "abuse@example.net,,,,,abuse@transit.example.org",
        "Example Images,127.0.2.0/24,,img.example.net,abuse@images.example.net,,,de,,",
        "Example Webhook Host,127.0.2.128/25,,,abuse@example.org,webhook,"
        "https://abuse.example.org/api/notices,,,",
        "Example Outbox Host,,,files.example.org,,outbox,,,,",
        "",
        "Example Edge,127.0.3.0/24,,,abuse@edge.example.net,,,,yes,",
        "",
    ]
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=["yaml", "csv"])
def directory(request: pytest.FixtureRequest, tmp_path: Path) -> ProviderDirectory:
    """The same directory written as YAML and as CSV: both must load identically."""
    if request.param == "yaml":
        return ProviderDirectory.load(write(tmp_path, "providers.yaml", YAML_DIRECTORY))
    return ProviderDirectory.load(write(tmp_path, "providers.csv", CSV_DIRECTORY))


def test_yaml_and_csv_load_the_same_providers(tmp_path: Path) -> None:
    from_yaml = ProviderDirectory.load(write(tmp_path, "p.yml", YAML_DIRECTORY))
    from_csv = ProviderDirectory.load(write(tmp_path, "p.csv", CSV_DIRECTORY))
    assert from_yaml.providers == from_csv.providers  # origin is not compared
    assert len(from_yaml) == 5
    hosting = from_yaml.providers[0]
    assert hosting == Provider(
        name="Example Hosting",
        abuse="abuse@example.net",
        cidrs=(ipaddress.ip_network("127.0.0.0/16"), ipaddress.ip_network("fd00:10::/32")),
        asns=(64500, 64501),
        domains=("example.net",),
        upstream="abuse@transit.example.org",
    )
    assert hosting.origin.endswith("p.yml:3")
    assert from_csv.providers[0].origin.endswith("p.csv:3")
    assert from_csv.providers[4].origin.endswith("p.csv:8")


def test_recipient_carries_channel_language_and_webhook(directory: ProviderDirectory) -> None:
    images = directory.get("Example Images")
    webhook = directory.get("Example Webhook Host")
    outbox = directory.get("Example Outbox Host")
    assert images is not None and webhook is not None and outbox is not None
    assert images.recipient() == Recipient(
        provider="Example Images", address="abuse@images.example.net", channel="smtp", language="de"
    )
    assert webhook.recipient().channel == "webhook"
    assert webhook.recipient().webhook_url == "https://abuse.example.org/api/notices"
    assert outbox.recipient() == Recipient("Example Outbox Host", None, "outbox")
    edge = directory.get("Example Edge")
    assert edge is not None and edge.cdn
    assert not images.cdn


def test_domain_match_is_exact_or_subdomain_and_most_specific_wins(
    directory: ProviderDirectory,
) -> None:
    def who(host: str) -> tuple[str, str] | None:
        found = directory.match_domain(host)
        return None if found is None else (found[0].name, found[1])

    assert who("example.net") == ("Example Hosting", "example.net")
    assert who("www.example.net") == ("Example Hosting", "example.net")
    assert who("img.example.net") == ("Example Images", "img.example.net")
    assert who("a.b.IMG.Example.NET.") == ("Example Images", "img.example.net")
    assert who("notexample.net") is None  # a suffix of the text is not a parent domain
    assert who("example.org") is None
    assert who("files.example.org") == ("Example Outbox Host", "files.example.org")
    assert who("") is None


def test_ip_match_takes_the_longest_prefix(directory: ProviderDirectory) -> None:
    def who(ip: str) -> tuple[str, str] | None:
        found = directory.match_ip(ip)
        return None if found is None else (found[0].name, str(found[1]))

    assert who("127.0.9.9") == ("Example Hosting", "127.0.0.0/16")
    assert who("127.0.2.1") == ("Example Images", "127.0.2.0/24")
    assert who("127.0.2.200") == ("Example Webhook Host", "127.0.2.128/25")
    assert who("127.0.3.4") == ("Example Edge", "127.0.3.0/24")
    assert who("fd00:10::1") == ("Example Hosting", "fd00:10::/32")
    assert who("127.1.0.1") is None
    assert who("::1") is None
    assert who("not an address") is None


def test_asn_match_accepts_both_spellings(directory: ProviderDirectory) -> None:
    first, second = directory.match_asn(64500), directory.match_asn(64501)
    assert first is not None and second is not None
    assert first.name == second.name == "Example Hosting"
    assert directory.match_asn(64502) is None


def test_empty_directory_matches_nothing(tmp_path: Path) -> None:
    for directory in (
        ProviderDirectory.empty(),
        ProviderDirectory.load(write(tmp_path, "empty.yaml", "# nothing yet\n")),
        ProviderDirectory.load(write(tmp_path, "empty2.yaml", "providers:\n")),
        ProviderDirectory.load(write(tmp_path, "empty.csv", "name,abuse\n")),
    ):
        assert directory.providers == ()
        assert directory.match_domain("example.net") is None
        assert directory.match_ip("127.0.0.1") is None
        assert directory.match_asn(64500) is None


def test_top_level_list_is_accepted(tmp_path: Path) -> None:
    text = "- name: Example Hosting\n  abuse: abuse@example.net\n  domains: [example.net]\n"
    directory = ProviderDirectory.load(write(tmp_path, "list.yaml", text))
    assert [p.name for p in directory] == ["Example Hosting"]


def test_unicode_domains_are_stored_in_idna_form(tmp_path: Path) -> None:
    text = "- name: Example\n  abuse: abuse@example.net\n  domains: [bücher.example]\n"
    directory = ProviderDirectory.load(write(tmp_path, "idn.yaml", text))
    found = directory.match_domain("www.xn--bcher-kva.example")
    assert found is not None and found[1] == "xn--bcher-kva.example"
    assert directory.match_domain("www.bücher.example") is not None


# --- errors: one line, FILE:LINE, the field ------------------------------------------------

YAML_ERRORS = [
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    cidrs:\n"
        "      - 127.0.0.0/8\n      - 10.0.0.0/33\n",
        6,
        "field 'cidrs': '10.0.0.0/33' is not a network",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    cidr: [127.0.0.0/8]\n",
        4,
        "unknown field 'cidr'",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n\n"
        "  - name: A\n    abuse: b@example.net\n",
        5,
        "field 'name': 'A' is already used",
    ),
    (
        "providers:\n  - name: A\n    domains: [example.net]\n",
        2,
        "field 'abuse': provider 'A' uses smtp but has no abuse address",
    ),
    (
        "providers:\n  - name: A\n    abuse: ''\n",
        3,
        "field 'abuse': provider 'A' uses smtp but has no abuse address",
    ),
    (
        "providers:\n  - name: A\n    abuse: not-an-address\n",
        3,
        "field 'abuse': 'not-an-address' is not an email address",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    channel: fax\n",
        4,
        "field 'channel': 'fax' is not one of smtp, webhook, outbox",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    channel: webhook\n",
        4,
        "field 'webhook_url': channel webhook needs a webhook_url",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n"
        "    webhook_url: https://abuse.example.net/\n",
        4,
        "field 'webhook_url': only used with channel webhook, not smtp",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n"
        "    asns:\n      - 64500\n      - ASX\n",
        6,
        "field 'asns': 'ASX' is not an AS number",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    domains: ['*.example.net']\n",
        4,
        "field 'domains': '*.example.net' is not a domain name",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    cidrs: [127.0.0.1/8]\n",
        4,
        "'127.0.0.1/8' is not a network (host bits set; did you mean '127.0.0.0/8'?)",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    cdn: maybe\n",
        4,
        "field 'cdn': 'maybe' is not true or false",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    domains: [example.net]\n"
        "  - name: B\n    abuse: b@example.net\n    domains: [EXAMPLE.net]\n",
        5,
        "field 'domains': 'example.net' is already listed by provider 'A'",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    cidrs: [127.0.0.0/8]\n"
        "  - name: B\n    abuse: b@example.net\n    cidrs: [127.0.0.0/8]\n",
        5,
        "field 'cidrs': '127.0.0.0/8' is already listed by provider 'A'",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    abuse: b@example.net\n",
        4,
        "field 'abuse' is given twice",
    ),
    ("providers:\n  - name: A\n    abuse: [a@example.net\n", 4, "YAML syntax error"),
    ("provider:\n  - name: A\n", 1, "unknown top-level key 'provider'"),
    ("providers:\n  - just a string\n", 2, "each provider must be a mapping"),
    ("providers:\n  - abuse: a@example.net\n", 2, "field 'name': every provider needs a name"),
]


CSV_HEADER = "name,cidrs,asns,domains,abuse,channel,webhook_url,language,cdn,upstream\n"
CSV_ERRORS = [
    (
        CSV_HEADER + "A,127.0.0.0/8,,,a@example.net,,,,,\nB,10.0.0.0/33,,,b@example.net,,,,,\n",
        3,
        "field 'cidrs': '10.0.0.0/33' is not a network",
    ),
    (
        # a quoted cell spanning two lines: the next row's line number still counts them
        CSV_HEADER + 'A,,,,a@example.net,,,,,"abuse@up.example.org"\n'
        '"Multi\nline",,AS-1,,b@example.net,,,,,\n'
        "C,,,,,,,,,\n",
        3,
        "field 'asns': 'AS-1' is not an AS number",
    ),
    (
        CSV_HEADER + '"Multi\nline",,,,b@example.net,,,,,\n\nC,,,,,,,,,\n',
        5,
        "field 'abuse': provider 'C' uses smtp but has no abuse address",
    ),
    ("name,abuse,cidr\nA,a@example.net,127.0.0.0/8\n", 1, "unknown field 'cidr'"),
    ("name,abuse\nA,a@example.net,extra\n", 2, "3 cells but the header names 2 columns"),
    ("name,abuse\nA,a@example.net\nA,b@example.net\n", 3, "field 'name': 'A' is already used"),
    ("name,abuse,channel\nA,a@example.net,webhook\n", 2, "channel webhook needs a webhook_url"),
    ("name,abuse,cdn\nA,a@example.net,perhaps\n", 2, "field 'cdn': 'perhaps' is not true"),
]


# Expanded, an alias bomb of nine lines holds 9**9 strings (the directory loader ran out of
# memory at 5 GB); deep nesting overflowed the recursion. Both are one line now.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
YAML_ERRORS += [
    (ALIAS_BOMB, 1, "anchors (&name) are not allowed"),
    ("providers:\n  - name: A\n    abuse: *mail\n", 3, "aliases (*name) are not allowed"),
    ("providers: " + "[" * 100_000 + "]" * 100_000 + "\n", 1, "nested deeper than 32 levels"),
]


FILE_ERRORS = [("providers.yaml", *case) for case in YAML_ERRORS] + [
    ("providers.csv", *case) for case in CSV_ERRORS
]


@pytest.mark.parametrize(("name", "text", "line", "message"), FILE_ERRORS)
def test_errors_name_file_line_and_field(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DirectoryError) as caught:
        ProviderDirectory.load(path)
    error = str(caught.value)
    assert error.startswith(f"{path}:{line}: "), error
    assert message in error
    assert "\n" not in error


def test_unknown_extension_and_missing_file_are_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=r"unknown directory format '\.json'"):
        ProviderDirectory.load(write(tmp_path, "providers.json", "[]"))
    with pytest.raises(DirectoryError, match="cannot read the provider directory"):
        ProviderDirectory.load(tmp_path / "missing.yaml")


def test_constructor_rejects_conflicting_providers() -> None:
    net = ipaddress.ip_network("127.0.0.0/24")
    with pytest.raises(ValueError, match="already listed by provider 'A'"):
        ProviderDirectory(
            [
                Provider("A", "a@example.net", cidrs=(net,)),
                Provider("B", "b@example.net", cidrs=(net,)),
            ]
        )


# --- built-in CDN ranges ------------------------------------------------------------------------


def test_builtin_cdns_are_cloudflare_published_ranges() -> None:
    cdns = load_builtin_cdns()
    assert [p.name for p in cdns] == ["Cloudflare"]
    cloudflare = cdns.providers[0]
    assert cloudflare.cdn
    # Never e-mail (Cloudflare auto-replies with a pointer to its form and API): its API,
    # with its abuse form as the fallback.
    assert cloudflare.recipient() == Recipient(
        "Cloudflare", None, "cloudflare", "en", form_url="https://abuse.cloudflare.com/"
    )
    versions = {n.version for n in cloudflare.cidrs}
    assert versions == {4, 6}
    for inside, network in [
        ("104.16.0.1", "104.16.0.0/13"),
        ("172.67.1.1", "172.64.0.0/13"),
        ("2606:4700::6810:84e5", "2606:4700::/32"),
    ]:
        found = cdns.match_ip(inside)
        assert found is not None and str(found[1]) == network
    assert cdns.match_ip("127.0.0.1") is None
    assert cdns.match_ip("192.0.2.1") is None  # TEST-NET-1: nobody's CDN
    assert load_builtin_cdns() is cdns  # parsed once
