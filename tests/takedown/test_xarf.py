"""The X-ARF report: built as we mean it, and valid (and invalid) by the official schemas."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from store.queue import HitRecord
from takedown.errors import NoticeError
from takedown.model import Recipient, Route
from takedown.xarf import (
    CSAM_CLASSIFICATIONS,
    XARF_VERSION,
    build_xarf_report,
    report_id_for,
    utc_iso,
    validate_xarf,
    xarf_classification,
)
from tests import builders
from tests.builders import TEST_IDENTITY, label_hex
from tests.helpers import HOST_A

NOTICE_ID = "0123456789abcdef0123456789abcdef"
Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def make_hit(**changes: Any) -> HitRecord:
    """An exact match on host A (a list category of the list's own naming), fetched from the
    address the route names."""
    return builders.make_hit(
        7, "img.host-a.example", **{"ip": "192.0.2.10", "category": "vendor-7", **changes}
    )


def make_route(**changes: Any) -> Route:
    values: dict[str, Any] = {
        "host": "img.host-a.example",
        "ip": "192.0.2.10",
        "method": "directory-domain",
        "recipient": Recipient("Host A", "abuse@host-a.example", "smtp"),
        "provider": "Host A",
        "asn": 64500,
    }
    values.update(changes)
    return Route(**values)


def build(hit: HitRecord | None = None, route: Route | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "notice_id": NOTICE_ID,
        "kind": "notice",
        "sequence": 0,
        "first_seen": "2025-03-01T09:00:00+01:00",
        "last_verified": "2025-03-02T10:30:00Z",
        "reference": "HL-0123456789ab",
        "classification": "A1",
    }
    args.update(kw)
    return build_xarf_report(TEST_IDENTITY, hit or make_hit(), route or make_route(), **args)


def test_report_validates_and_carries_our_values() -> None:
    hit = make_hit()
    report = build(hit)
    validate_xarf(report)
    assert report["xarf_version"] == XARF_VERSION
    assert (report["category"], report["type"]) == ("content", "csam")
    assert report["url"] == hit.url
    assert report["source_identifier"] == "192.0.2.10"
    assert report["classification"] == "A1"
    assert report["detection_method"] == "hash_match"
    assert report["media_type"] == "image"
    assert report["content_removed"] is False
    assert report["hash_values"] == {"md5": hit.md5, "sha1": hit.sha1, "sha256": hit.sha256}
    assert report["reporter"] == {
        "org": "Example Hotline",
        "contact": "notices@hotline.example",
        "domain": "hotline.example",
    }
    assert report["sender"] == report["reporter"]
    assert report["domain"] == "img.host-a.example"
    assert report["asn"] == 64500
    assert report["hosting_provider"] == "Host A"
    assert hit.list in report["description"] and hit.entry in report["description"]


def test_version_is_the_one_the_shipped_schemas_describe() -> None:
    from xarf._version import SPEC_VERSION

    assert XARF_VERSION == SPEC_VERSION


def test_nothing_that_could_carry_content_or_a_score() -> None:
    report = build()
    for absent in ("confidence", "evidence", "screenshot_url", "_internal", "source_port"):
        assert absent not in report


def test_times_are_utc_with_z() -> None:
    report = build()
    assert report["timestamp"] == "2025-03-01T08:00:00Z"  # +01:00 converted
    assert report["verified_at"] == "2025-03-02T10:30:00Z"
    assert Z_TIME.match(report["timestamp"]) and Z_TIME.match(report["verified_at"])


def test_naive_or_garbled_times_are_refused() -> None:
    with pytest.raises(NoticeError, match="first_seen has no UTC offset"):
        build(first_seen="2025-03-01T09:00:00")
    with pytest.raises(NoticeError, match="last_verified is not an ISO 8601 time"):
        build(last_verified="yesterday")
    assert utc_iso("2025-03-01T23:30:00-02:00", "t") == "2025-03-02T01:30:00Z"


def test_report_id_is_a_deterministic_uuid_per_message() -> None:
    first = report_id_for(NOTICE_ID, "notice", 0)
    assert first == report_id_for(NOTICE_ID, "notice", 0)
    assert uuid.UUID(first).version == 5
    others = {
        report_id_for(NOTICE_ID, "reminder", 1),
        report_id_for(NOTICE_ID, "reminder", 2),
        report_id_for(NOTICE_ID, "escalation", 1),
        report_id_for("f" * 32, "notice", 0),
    }
    assert first not in others and len(others) == 4
    assert build()["report_id"] == first
    assert build(kind="reminder", sequence=2)["report_id"] == report_id_for(
        NOTICE_ID, "reminder", 2
    )


def test_the_classifications_are_the_schemas_enum() -> None:
    """Read from the shipped content-csam schema itself, so a new schema version that changes
    the values fails here rather than in a notice."""
    schema = json.loads(
        (resources.files("xarf") / "schemas" / "types" / "content-csam.json").read_text()
    )
    (properties,) = [part["properties"] for part in schema["allOf"] if "properties" in part]
    assert tuple(properties["classification"]["enum"]) == CSAM_CLASSIFICATIONS


@pytest.mark.parametrize(
    ("given", "expected"),
    [("A1", "A1"), ("b2", "B2"), ("baseline", "baseline"), (" Baseline ", "baseline")],
)
def test_the_given_classification_is_reported_as_the_schema_spells_it(
    given: str, expected: str
) -> None:
    assert xarf_classification(given) == expected
    report = build(make_hit(category=expected), classification=given)
    assert report["classification"] == expected
    validate_xarf(report)


@pytest.mark.parametrize("missing", [None, ""])
def test_no_report_without_a_classification(missing: str | None) -> None:
    """Nothing defaults to baseline: even a category spelt like an X-ARF value is not taken
    for one."""
    with pytest.raises(NoticeError, match="no X-ARF classification"):
        build(make_hit(category="baseline"), classification=missing)


@pytest.mark.parametrize("bad", ["A3", "national-only", "illegal"])
def test_a_classification_outside_the_schema_is_refused(bad: str) -> None:
    with pytest.raises(NoticeError, match="not an X-ARF classification"):
        build(classification=bad)


def test_data_url_is_reported_at_its_page() -> None:
    hit = make_hit(url=f"data:image/png;sha256={label_hex('fixture-8', 'sha256')}")
    report = build(hit)
    validate_xarf(report)
    assert report["url"] == hit.page
    assert "data:" not in report["url"]


def test_source_is_an_ip_else_the_host_and_ip_hosts_get_no_domain() -> None:
    report = build(make_hit(ip=None), make_route(ip=None, host="host-b.example"))
    assert report["source_identifier"] == "host-b.example"
    validate_xarf(report)
    report = build(make_hit(ip="192.0.2.99"), make_route(ip=None, host="host-b.example"))
    assert report["source_identifier"] == "192.0.2.99"  # the address the crawl connected to
    validate_xarf(report)
    report = build(route=make_route(host=HOST_A, ip=HOST_A, asn=None, provider=None))
    assert "domain" not in report and "asn" not in report and "hosting_provider" not in report
    validate_xarf(report)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(report: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = report
        for name in parents:
            node = node[name]
        node[last] = value

    return apply


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    def apply(report: dict[str, Any]) -> None:
        del report[name]

    return apply


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (_set("hash_values.sha256", "not-a-sha256"), "$.hash_values.sha256"),
        (_set("hash_values.md5", "abc"), "$.hash_values.md5"),
        (_drop("classification"), "$"),
        (_drop("detection_method"), "$"),
        (_drop("url"), "$"),
        (_drop("report_id"), "$"),
        (_set("classification", "severe"), "$.classification"),
        (_set("detection_method", "guess"), "$.detection_method"),
        (_set("media_type", "hologram"), "$.media_type"),
        (_set("timestamp", "soon"), "$.timestamp"),
        (_set("verified_at", "2025-13-40T99:00:00Z"), "$.verified_at"),
        (_set("url", "not a url"), "$.url"),
        (_set("report_id", "report-1"), "$.report_id"),
        (_set("xarf_version", "4.2"), "$.xarf_version"),
        (_set("reporter.contact", "nobody"), "$.reporter.contact"),
        (_set("reporter.domain", "bad domain"), "$.reporter.domain"),
        (_set("reporter.phone", "+49 30 0000"), "$.reporter"),
        (_set("content_removed", "no"), "$.content_removed"),
        (_set("asn", 0), "$.asn"),
        (_set("type", "no_such_type"), "$"),
    ],
)
def test_invalid_reports_are_rejected_naming_the_path(
    change: Callable[[dict[str, Any]], None], path: str
) -> None:
    report = copy.deepcopy(build())
    change(report)
    with pytest.raises(NoticeError) as caught:
        validate_xarf(report)
    message = str(caught.value)
    assert f"invalid at {path}:" in message
    assert "\n" not in message and len(message) < 400


def test_evidence_is_refused_even_when_the_schema_would_take_it() -> None:
    report = build()
    report["evidence"] = [{"content_type": "text/plain", "payload": "aGVsbG8="}]
    with pytest.raises(NoticeError, match=r"at \$\.evidence"):
        validate_xarf(report)


def test_the_reference_library_agrees_and_sees_no_unknown_fields() -> None:
    import xarf

    result = xarf.parse(build())
    assert result.errors == []
    assert result.warnings == []
