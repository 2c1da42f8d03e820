"""Property tests of RDAP document reading: documents shaped like RDAP (entities nested in
entities, jCards of every wrong shape, fields missing, extra or of the wrong type, deep
nesting, long arrays) give a record or one :class:`RdapError` on one line, never another
exception, within a time bound. First the pure parsers on decoded documents, then the same
documents (and broken bodies) through the client, its HTTP answered in process and its cache
in a dict."""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from typing import Any

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from takedown.errors import RdapError
from takedown.rdap import (
    MAX_DOCUMENT_DEPTH,
    DomainInfo,
    IpNetworkInfo,
    RdapClient,
    parse_domain,
    parse_ip_network,
)
from tests.helpers import PARSER_BOUND

BOUND = PARSER_BOUND
BASE = "http://rdap.test/"
URL = BASE + "ip/127.0.10.7"
#: What an address read from a document must look like: no white space, one "@", a dot inside.
ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# -- documents --------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
EMAILS = (
    st.sampled_from(
        [
            "abuse@example.net",
            "mailto:abuse@example.net",
            "MAILTO: noc@example.net ",
            "<abuse@example.org>",
            "a@b",
            "a@b.example\n",
            "a@b.example\n>",
            "a@.example",
            "a@example.",
            "a@@b.example",
            "@",
            " ",
            "a@" + "." * 300 + "@",
        ]
    )
    | st.emails().map(str)
    | st.text(max_size=20)
)
TEXTS = st.text(max_size=12) | st.sampled_from(["Example Networks", " ", "", "Registrar\nInc."])
VCARD_NAMES = st.sampled_from(["email", "EMAIL", " Email ", "fn", "FN", "org", "tel", "version"])
TYPE_PARAMS = st.sampled_from(["abuse", "Abuse", "work,abuse", " ABUSE ", "work", ""]) | JUNK
PARAMS = (
    st.fixed_dictionaries(
        {}, optional={"type": TYPE_PARAMS | st.lists(TYPE_PARAMS, max_size=3), "TYPE": TYPE_PARAMS}
    )
    | JUNK
)
VALUES = EMAILS | TEXTS | st.lists(EMAILS | TEXTS | st.lists(EMAILS, max_size=2), max_size=3)


@st.composite
def vcard_items(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 7)) == 0:
        return draw(JUNK)
    item = [
        draw(VCARD_NAMES | JUNK),
        draw(PARAMS),
        draw(st.sampled_from(["text", "uri"]) | JUNK),
        *draw(st.lists(VALUES | JUNK, max_size=3)),
    ]
    return item[: draw(st.integers(0, len(item)))] if draw(st.integers(0, 7)) == 0 else item


VCARDS = st.lists(vcard_items(), max_size=5).flatmap(
    lambda items: (
        st.sampled_from(
            [["vcard", items], ["vcard", items, "extra"], ["vcard"], [items], "vcard", {"x": items}]
        )
        | st.just(["vcard", items])
    )
)
ROLES = (
    st.lists(st.sampled_from(["abuse", "registrant", "registrar", "technical", " ABUSE "]))
    | st.sampled_from(["abuse", "registrar", " Registrant "])
    | JUNK
)
PUBLIC_IDS = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["IANA Registrar ID", "other"]) | JUNK},
        optional={"identifier": st.sampled_from(["9999", " 42 ", ""]) | JUNK},
    )
    | JUNK,
    max_size=2,
)


def entity_fields(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "objectClassName": st.just("entity"),
            "handle": TEXTS,
            "roles": ROLES,
            "vcardArray": VCARDS | JUNK,
            "publicIds": PUBLIC_IDS | JUNK,
            "entities": children,
        },
    )


ENTITIES = st.recursive(
    entity_fields(st.just([])),
    lambda inner: entity_fields(st.lists(inner | JUNK, max_size=3) | JUNK),
    max_leaves=8,
)
ADDRESSES = (
    st.sampled_from(
        [
            "127.0.10.0",
            "127.0.10.255/32",
            "074.125.000.000",
            "127.000.010.999",
            "::1",
            "2001:db8::/32",
            "256.1.1.1",
            "1.2.3",
            "fe80::1%eth0",
            "",
            " ",
        ]
    )
    | st.ip_addresses().map(str)
    | JUNK
)
LENGTHS = st.integers(-1, 200) | st.sampled_from(
    ["24", " 24 ", "²", "٢٤", "9" * 5000, "", "0x18", True, 24.0, None, [24]]
)
CIDRS = st.fixed_dictionaries(
    {}, optional={"v4prefix": ADDRESSES, "v6prefix": ADDRESSES, "length": LENGTHS | JUNK}
)
ASNS = st.integers(-1, 2**40) | st.sampled_from(
    ["AS64500", "as64500", " AS 1", "AS²", "AS" + "9" * 5000, "4294967296", "AS-1", True, None]
)
CLASS_NAMES = st.sampled_from(["ip network", "IP Network ", "domain", " DOMAIN", "entity", ""])
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "objectClassName": CLASS_NAMES | JUNK,
        "handle": TEXTS | JUNK,
        "name": TEXTS | JUNK,
        "startAddress": ADDRESSES,
        "endAddress": ADDRESSES,
        "cidr0_cidrs": st.lists(CIDRS | JUNK, max_size=3) | JUNK,
        "country": TEXTS | JUNK,
        "parentHandle": TEXTS | JUNK,
        "arin_originas0_originautnums": st.lists(ASNS | JUNK, max_size=3) | JUNK,
        "entities": st.lists(ENTITIES | JUNK, max_size=4) | JUNK,
        "ldhName": TEXTS | JUNK,
        "unicodeName": TEXTS | JUNK,
        "vcardArray": VCARDS,
    },
)


def abuse_entity(email: str) -> dict[str, Any]:
    return {"roles": ["abuse"], "vcardArray": ["vcard", [["email", {}, "text", email]]]}


def nested_entities(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = abuse_entity("deep@example.net")
    for _ in range(depth):
        doc = {"roles": ["registrar"], "entities": [doc]}
    return doc


# -- what every answer must be ---------------------------------------------------------------


def check_record(info: IpNetworkInfo | DomainInfo) -> None:
    if isinstance(info, IpNetworkInfo):
        emails = info.abuse_emails
        for cidr in info.cidrs:
            ipaddress.ip_network(cidr)
        for address in (info.start_address, info.end_address):
            assert address is None or ipaddress.ip_address(address)
        assert all(0 <= asn <= 2**32 - 1 for asn in info.origin_asns)
        for text in (info.handle, info.name, info.country, info.org, info.parent_handle):
            assert text is None or (text and text == text.strip())
    else:
        emails = info.registrar_abuse_emails
        assert info.name == info.name.lower()
    assert all(ADDRESS.fullmatch(email) for email in emails), emails
    assert len({email.lower() for email in emails}) == len(emails)


def check_error(exc: RdapError, url: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert url in message, message


# -- the parsers ------------------------------------------------------------------------------


@BOUND
@given(doc=DOCUMENTS, url=st.sampled_from(["", URL]))
@example(doc={"cidr0_cidrs": [{"v4prefix": "127.0.10.0", "length": "²"}]}, url="")
@example(doc={"cidr0_cidrs": [{"v4prefix": "127.0.10.0", "length": "9" * 5000}]}, url="")
@example(doc={"arin_originas0_originautnums": ["AS²"]}, url="")
@example(doc={"arin_originas0_originautnums": ["AS" + "9" * 5000]}, url="")
@example(doc={"entities": [abuse_entity("abuse@example.net\n>")]}, url="")
@example(doc={"entities": [abuse_entity("a@" + "." * 50_000 + "@")]}, url="")  # backtracking
@example(doc={"entities": [abuse_entity(f"a{n}@example.net") for n in range(20_000)]}, url="")
@example(doc={"entities": [nested_entities(200)]}, url=URL)
def test_a_document_is_a_record_or_one_error_line(doc: dict[str, Any], url: str) -> None:
    before = json.dumps(doc, sort_keys=True)
    for parse in (parse_ip_network, parse_domain):
        try:
            info = parse(doc, url)
        except RdapError as exc:
            check_error(exc, url)
        else:
            check_record(info)
    assert json.dumps(doc, sort_keys=True) == before  # parsing leaves the document alone


# -- through the client: bodies as served, answers as cached ------------------------------------


class DictCache:
    def __init__(self) -> None:
        self.entries: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def set(self, key: str, value: str, ttl: int) -> None:
        self.entries[key] = value


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A document as JSON, or JSON broken as servers break it."""
    text = json.dumps(draw(DOCUMENTS | JUNK))
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return text.encode()
    if kind == 5:
        return text[: draw(st.integers(0, len(text)))].encode()
    if kind == 6:
        return b"\xef\xbb\xbf" + text.encode()
    if kind == 7:
        depth = draw(st.sampled_from([50, 900, 5000, 100_000]))
        return (b"[" * depth + b"]" * depth) if draw(st.booleans()) else b'{"a":' * depth
    if kind == 8:
        return draw(st.sampled_from([b"", b"NaN", b"1" * 5000, b"\xff\xfe", b"<html>"]))
    error = {"errorCode": 500, "title": draw(TEXTS | JUNK), "description": draw(JUNK)}
    return json.dumps(error).encode()


@BOUND
@given(status=st.sampled_from([200, 200, 200, 404, 429, 500]), body=bodies())
@example(status=200, body=b"[" * 100_000)
@example(status=500, body=b"[" * 100_000)
@example(status=500, body=json.dumps({"title": "down\nfor maintenance"}).encode())
def test_any_answer_is_a_record_or_one_error_line(status: int, body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    cache = DictCache()
    with httpx.Client(transport=transport) as http:
        client = RdapClient(BASE, http=http, cache=cache)
        outcomes: list[object] = []
        for _ in range(2):  # the second answer comes from the cache
            try:
                info = client.ip("127.0.10.7")
            except RdapError as exc:
                check_error(exc, URL)
                outcomes.append(type(exc))
            else:
                check_record(info)
                outcomes.append(info)
    assert outcomes[0] == outcomes[1]


def test_documents_nested_up_to_the_recursion_limit_are_one_error_line() -> None:
    # Just under the limit, the decoder gets through where the cache's JSON encoder (a few
    # frames deeper) used to run out of recursion; where exactly depends on the stack.
    limit = sys.getrecursionlimit()
    for depth in range(MAX_DOCUMENT_DEPTH - 2, limit + 5):
        body = b'{"x": ' + b"[" * depth + b"]" * depth + b"}"
        transport = httpx.MockTransport(
            lambda request, body=body: httpx.Response(200, content=body)
        )
        with httpx.Client(transport=transport) as http:
            client = RdapClient(BASE, http=http, cache=DictCache())
            try:
                client.ip("127.0.10.7")
            except RdapError as exc:
                check_error(exc, URL)
                assert depth + 1 > MAX_DOCUMENT_DEPTH
            else:
                assert depth + 1 <= MAX_DOCUMENT_DEPTH


def test_a_cache_entry_nested_too_deeply_is_refetched() -> None:
    cache = DictCache()
    cache.set(URL, "[" * 100_000, 60)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"{}"))
    with httpx.Client(transport=transport) as http:
        assert RdapClient(BASE, http=http, cache=cache).ip("127.0.10.7").url == URL
