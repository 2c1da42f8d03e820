"""The provider directory: YAML and CSV files, validation with exact lines, and lookups."""

from __future__ import annotations

import csv
import gc
import io
import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

import takedown.directory as directory_module
from takedown.cdn import load_builtin_cdns
from takedown.directory import (
    FIELDS,
    MAX_NUMBER_LENGTH,
    MAX_YAML_DEPTH,
    Provider,
    ProviderDirectory,
    normalize_domain,
)
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
DEEP = MAX_YAML_DEPTH + 8  # deeper than allowed, well within libyaml's own limit (1000)
#: Refused by the directory's reader itself, whichever parser reads the events.
REFUSALS = [
    (ALIAS_BOMB, 1, "anchors (&name) are not allowed"),
    ("providers:\n  - name: A\n    abuse: *mail\n", 3, "aliases (*name) are not allowed"),
    (
        "providers:\n  - name: &n A\n    abuse: a@example.net\n",
        2,
        "anchors (&name) are not allowed",
    ),
    ("providers: " + "[" * DEEP + "]" * DEEP + "\n", 1, "nested deeper than 32 levels"),
    ("providers:\n" + "".join(f"{' ' * i}- \n" for i in range(DEEP)), 33, "nested deeper than 32"),
    ("- name: A\n  abuse: a@example.net\n---\n- name: B\n", 3, "but found another document"),
]
#: Nested past libyaml's own limit: its error sends the file to PyYAML's parser, whose words the
#: message has always used.
TOO_DEEP_FOR_LIBYAML = "providers: " + "[" * 100_000 + "]" * 100_000 + "\n"
YAML_ERRORS += [*REFUSALS, (TOO_DEEP_FOR_LIBYAML, 1, "nested deeper than 32 levels")]

# Values PyYAML's constructor cannot build used to escape as ConstructorError / ValueError
# (several lines, or no file and line at all); a webhook URL urlsplit refuses, as ValueError.
YAML_ERRORS += [
    (
        "providers:\n  - name: !!python/name:os.system x\n    abuse: a@example.net\n",
        2,
        "field 'name': cannot read the value: could not determine a constructor for the tag",
    ),
    (
        "providers:\n  - name: 2001-02-30\n    abuse: a@example.net\n",
        2,
        "field 'name': cannot read the value: day is out of range for month",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    asns: [64500, 0x_]\n",
        4,
        "field 'asns': cannot read the value: invalid literal for int()",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    language: !!timestamp x\n",
        4,
        "field 'language': cannot read the value: not a valid !!timestamp",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    <<: {cdn: true}\n",
        4,
        "cannot read the value: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:merge'",
    ),
    (  # as an integer it has 4 800 digits: too many to print, even in an error message
        "providers:\n  - name: 0x" + "f" * 4000 + "\n    abuse: a@example.net\n",
        2,
        f"field 'name': cannot read the value: a number longer than {MAX_NUMBER_LENGTH}",
    ),
    (
        "providers:\n  - name: A\n    abuse: a@example.net\n    channel: webhook\n"
        "    webhook_url: http://[x\n",
        5,
        "field 'webhook_url': 'http://[x' is not an http(s) URL",
    ),
    (  # PyYAML's scanner called chr() beyond Unicode: OverflowError
        'providers:\n  - name: "\\U800010000"\n',
        2,
        "YAML syntax error: unreadable text",
    ),
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


# --- the YAML readers: libyaml's events (the default) and PyYAML's own -----------------------

needs_libyaml = pytest.mark.skipif(
    directory_module._LIBYAML_PARSER is None, reason="PyYAML is built without libyaml"
)


def yaml_outcome(text: str, libyaml: bool) -> list[tuple[Provider, str]] | str:
    """What one reader makes of ``text``: the providers with their origins, or the error."""
    parser = directory_module._LIBYAML_PARSER if libyaml else None
    try:
        directory = ProviderDirectory._from_yaml(text, "p.yaml", parser)
    except DirectoryError as exc:
        return str(exc)
    return [(provider, provider.origin) for provider in directory]


@needs_libyaml
@pytest.mark.parametrize(("text", "line", "message"), REFUSALS)
def test_libyaml_reader_refuses_aliases_anchors_and_depth_itself(
    monkeypatch: pytest.MonkeyPatch, text: str, line: int, message: str
) -> None:
    readers: list[str] = []
    read = directory_module._yaml_entries

    def spy(events: directory_module._Events, source: str) -> object:
        readers.append(type(events).__name__)
        return read(events, source)

    monkeypatch.setattr(directory_module, "_yaml_entries", spy)
    with pytest.raises(DirectoryError) as caught:
        ProviderDirectory.from_yaml(text, source="p.yaml")
    assert str(caught.value).startswith(f"p.yaml:{line}: YAML syntax error: {message}")
    assert readers == ["CSafeLoader"]  # refused while reading libyaml's events: no second pass
    readers.clear()
    with pytest.raises(DirectoryError):
        ProviderDirectory.from_yaml(TOO_DEEP_FOR_LIBYAML, source="p.yaml")
    assert readers == ["CSafeLoader", "_PyYamlEvents"]


@needs_libyaml
@pytest.mark.parametrize(("text", "line", "message"), YAML_ERRORS)
def test_both_yaml_readers_report_the_same_error(text: str, line: int, message: str) -> None:
    fast, fallback = yaml_outcome(text, libyaml=True), yaml_outcome(text, libyaml=False)
    assert isinstance(fast, str) and fast.startswith(f"p.yaml:{line}: ") and message in fast
    assert fast == fallback


REALISTIC_YAML = """\
%YAML 1.1
---
# Every style a hand-kept or exported directory uses.
providers:
- name: "Example Hosting, Inc."
  cidrs:
  - 127.0.0.0/16
  - fd00:10::/32        # announced since 2020
  asns: [64500, "AS64501",
         as64502]
  domains: [example.net, bücher.example]
  abuse: 'abuse@example.net'
  upstream: abuse@transit.example.org
- name: >-
    Example
    Images
  cidrs: 127.0.2.0/24 | 127.0.4.0/24
  domains:
    - img.example.net
  abuse: abuse@images.example.net
  language: de
  cdn: no
- {name: Example Webhook Host, channel: webhook, abuse: abuse@example.org,
   webhook_url: "https://abuse.example.org/api/notices", cidrs: [127.0.2.128/25]}
- name: !!str 64503
  channel: OUTBOX
  domains: files.example.org
  asns: 64503
- name: Example Edge
  cdn: yes
  cidrs: ["127.0.3.0/24"]
  abuse: abuse@edge.example.net
  channel: cloudflare
  form_url: https://abuse.edge.example.net/report
...
"""


def generated_yaml(count: int) -> str:
    """``count`` providers as yaml.safe_dump writes them, block and flow style mixed."""
    providers = [
        {
            "name": f"Provider {i}",
            "cidrs": [f"127.{i // 256}.{i % 256}.0/24", f"fd00:{i:x}::/48"],
            "asns": [64512 + i] if i % 2 else [f"AS{64512 + i}"],
            "domains": [f"provider-{i}.example", f"cdn-{i}.example.net"][: 1 + i % 2],
            "abuse": f"abuse@provider-{i}.example",
            **({"language": "de", "cdn": True} if i % 3 == 0 else {}),
        }
        for i in range(count)
    ]
    block = yaml.safe_dump({"providers": providers[: count // 2]}, default_flow_style=False)
    flow = yaml.safe_dump(providers[count // 2 :], default_flow_style=None, width=60)
    return block + flow  # both lists at column 0: the flow-style entries continue the first


@needs_libyaml
@pytest.mark.parametrize("text", [REALISTIC_YAML, generated_yaml(400)])
def test_both_yaml_readers_build_the_same_directory(text: str) -> None:
    fast, fallback = yaml_outcome(text, libyaml=True), yaml_outcome(text, libyaml=False)
    assert not isinstance(fast, str), fast
    assert fast == fallback
    assert len(fast) in (5, 400)


def test_realistic_yaml_reads_as_written() -> None:
    directory = ProviderDirectory.from_yaml(REALISTIC_YAML)
    hosting, images, webhook, outbox, edge = directory.providers
    assert hosting.name == "Example Hosting, Inc." and hosting.asns == (64500, 64501, 64502)
    assert hosting.domains == ("example.net", "xn--bcher-kva.example")
    assert hosting.origin == "<yaml>:5"
    assert images.name == "Example Images" and not images.cdn and len(images.cidrs) == 2
    assert webhook.channel == "webhook" and webhook.origin == "<yaml>:23"
    assert (outbox.name, outbox.channel, outbox.asns) == ("64503", "outbox", (64503,))
    assert edge.cdn and edge.recipient().form_url == "https://abuse.edge.example.net/report"


def test_loading_leaves_the_garbage_collector_as_it_was() -> None:
    bad = "providers:\n  - name: A\n"
    assert gc.isenabled()
    ProviderDirectory.from_yaml(YAML_DIRECTORY)
    with pytest.raises(DirectoryError):
        ProviderDirectory.from_csv("name\nA\n")
    assert gc.isenabled()
    gc.disable()
    try:
        with pytest.raises(DirectoryError):
            ProviderDirectory.from_yaml(bad)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- property tests: a directory or the documented one-line error, never another exception ---

#: Generous: a parser that hangs or backtracks blows far past it; a busy machine does not.
BOUND = settings(max_examples=200, deadline=timedelta(seconds=5))

#: Values near what a directory holds, and a few that PyYAML reads into something else.
NEAR_VALUES = [
    "127.0.0.0/8",
    "127.0.0.1/8",
    "fd00::/8",
    "::1/128",
    "AS64500",
    "64500",
    "4294967296",
    "example.net",
    "*.example.net",
    "bücher.example",
    "a\n.example",
    "abuse@example.net",
    "not-an-address",
    "smtp",
    "webhook",
    "outbox",
    "form",
    "cloudflare",
    "https://abuse.example.net/api",
    "http://[x",
    "de",
    "yes",
    "maybe",
    "",
    " ",
    "~",
    "0x_",
    "2001-02-30",
    "1:30",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(NEAR_VALUES),
    st.text(max_size=20),
)
KEYS = st.sampled_from((*FIELDS, "cidr", "providers")) | st.text(max_size=6)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
ENTRIES = st.lists(st.dictionaries(KEYS, VALUES, max_size=8), max_size=4)
#: Inserted into a dumped document: anchors, aliases, tags, broken syntax, odd line breaks.
YAML_TOKENS = [
    *("&a ", "*a", "!!python/object ", "!!timestamp ", "!!binary ", "!!int ", "!!str "),
    *("<<: ", "[", "]", "{", "}", "- ", ": ", "? ", ",", "'", '"', "#", "\\", "|\n  "),
    *(">-\n  ", "\n  ", "---\n", "%TAG ! x\n", "\t", "\r", "\x85", "\u2028", "\ufeff"),
]


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    """A YAML dump of a near-valid directory, then up to three insertions."""
    document = draw(ENTRIES | st.fixed_dictionaries({"providers": ENTRIES}) | VALUES)
    text = yaml.safe_dump(
        document,
        default_flow_style=draw(st.sampled_from([False, True, None])),
        allow_unicode=draw(st.booleans()),
    )
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=3)) + text[at:]
    return text


TAGS = ["", "!!str ", "!!int ", "!!float ", "!!bool ", "!!timestamp ", "!!binary ", "!!set "]
PLAIN = st.sampled_from([v for v in NEAR_VALUES if v.strip() and "\n" not in v]) | st.from_regex(
    r"[0-9a-zA-Z:._x+-]{1,12}", fullmatch=True
)


@st.composite
def tagged_entries(draw: st.DrawFn) -> str:
    """Entries written by hand, values with explicit tags: what the safe constructor builds
    from a tag and a plain scalar (a date, bytes, a number in any base), or fails to."""
    lines = ["providers:"]
    for _ in range(draw(st.integers(1, 3))):
        fields = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=5, unique=True))
        for index, name in enumerate(fields):
            value = draw(st.sampled_from(TAGS)) + draw(PLAIN)
            if name in ("cidrs", "asns", "domains") and draw(st.booleans()):
                value = f"[{value}, {draw(st.sampled_from(TAGS))}{draw(PLAIN)}]"
            lines.append(f"{'  - ' if index == 0 else '    '}{name}: {value}")
    return "\n".join(lines) + "\n"


#: Refusals of the directory's own reader (the other syntax errors are the parser's).
OWN_SYNTAX_ERRORS = ("aliases (*name)", "anchors (&name)", "nested deeper", "another document")


@BOUND
@given(yaml_documents() | tagged_entries())
@example('- name: "\\U800010000"\n')  # PyYAML's scanner: OverflowError from chr()
@example("- name: !!python/name:os.system x\n  abuse: a@example.net\n")  # ConstructorError
@example("- name: 2001-02-30\n  abuse: a@example.net\n")  # ValueError
@example("- name: A\n  abuse: a@example.net\n  channel: webhook\n  webhook_url: http://[x\n")
@example("- name: 0x" + "f" * 4000 + "\n  abuse: a@example.net\n")  # int too long to print
@example("providers:\n  - name: !!bool 127.0.0.0/8\n")  # KeyError
@example("[0? ]\n")  # libyaml reads it (a plain "0?"), PyYAML does not
def test_a_yaml_directory_is_a_directory_or_a_one_line_error(text: str) -> None:
    fast = yaml_outcome(text, libyaml=directory_module._LIBYAML_PARSER is not None)
    fallback = yaml_outcome(text, libyaml=False)
    for outcome in (fast, fallback):
        assert not isinstance(outcome, str) or (
            outcome.startswith("p.yaml:") and "\n" not in outcome
        )
    parser_error = isinstance(fallback, str) and "YAML syntax error" in fallback
    if parser_error and not any(problem in fallback for problem in OWN_SYNTAX_ERRORS):
        return  # PyYAML's parser gave up where libyaml may read on (tabs, "0?" in a list)
    assert fast == fallback  # what PyYAML reads, libyaml reads the same, to the line


CSV_CELLS = (
    st.sampled_from(NEAR_VALUES)
    | st.text(max_size=12)
    | st.sampled_from(
        ["127.0.0.0/8 | fd00::/8", "AS64500 64501", "a.example b.example", "#", '"', ",", "\r\n"]
    )
)


@st.composite
def csv_documents(draw: st.DrawFn) -> str:
    """A header of real (now and then unknown or repeated) columns, rows of near values."""
    header = draw(st.lists(st.sampled_from((*FIELDS, "cidr")), min_size=1, max_size=8))
    rows = draw(st.lists(st.lists(CSV_CELLS, max_size=len(header) + 1), max_size=5))
    if draw(st.booleans()):  # written by a CSV writer: quoting always right
        out = io.StringIO()
        csv.writer(out).writerows([header, *rows])
        return out.getvalue()
    return "\n".join(",".join(row) for row in [header, *rows])  # quoting left to chance


@BOUND
@given(csv_documents() | st.text(max_size=200))
@example("name,abuse,channel,webhook_url\nA,a@example.net,webhook,http://[x\n")
def test_a_csv_directory_is_a_directory_or_a_one_line_error(text: str) -> None:
    try:
        directory = ProviderDirectory.from_csv(text, source="p.csv")
    except DirectoryError as exc:
        assert str(exc).startswith("p.csv:") and "\n" not in str(exc)
    else:
        assert all(provider.origin.startswith("p.csv:") for provider in directory)


# --- lookups ------------------------------------------------------------------------------

NETWORKS = st.one_of(
    st.builds(
        lambda value, length: ipaddress.IPv4Network((value, length), strict=False),
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    ),
    st.builds(
        lambda value, length: ipaddress.IPv6Network((value, length), strict=False),
        st.integers(0, 2**32 - 1) | st.integers(0, 2**128 - 1),  # ::a.b.c.d as well
        st.integers(0, 128),
    ),
)
ADDRESSES = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)) | st.builds(
    ipaddress.IPv6Address, st.integers(0, 2**32 - 1) | st.integers(0, 2**128 - 1)
)


@BOUND
@given(st.lists(NETWORKS, unique=True, max_size=12), st.lists(ADDRESSES, max_size=12))
def test_match_ip_is_the_longest_prefix_of_all(
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    providers = [Provider(f"P{i}", "a@example.net", cidrs=(n,)) for i, n in enumerate(networks)]
    directory = ProviderDirectory(providers)
    for address in addresses + [n.network_address for n in networks]:
        covering = [p for p in providers if address in p.cidrs[0]]
        best = max(covering, key=lambda p: p.cidrs[0].prefixlen, default=None)
        expected = None if best is None else (best, best.cidrs[0])
        assert directory.match_ip(address) == expected
        assert directory.match_ip(str(address)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Example.NET.", "example.net"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("_dmarc.example", "_dmarc.example"),
        ("a\n.example", None),  # "$" matched before the newline: accepted before
        ("a..example", None),
        ("-a.example", None),
        ("a" * 64 + ".example", None),
        ("a." * 126 + "ex", None),  # 254 characters
    ],
)
def test_normalize_domain(name: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            normalize_domain(name)
    else:
        assert normalize_domain(name) == expected
