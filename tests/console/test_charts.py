"""The console's SVG charts, parsed back with ElementTree: one accessible ``<svg>`` each, nothing
the Content-Security-Policy forbids, data escaped, bars in proportion to the figures fed in,
histogram buckets split exactly at their edges, ids unique across charts."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from hotline.console.charts import duration_label, removal_bars, removal_histogram, status_bars
from takedown.stats import ProviderStats

NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
FORBIDDEN_TAGS = {"script", "style", "image", "foreignObject", "iframe", "a", "use"}
NUMERIC_ATTRIBUTES = {"x", "y", "width", "height", "x1", "y1", "x2", "y2"}
ONE_DECIMAL = re.compile(r"^\d+\.\d$")
HOUR = 3600.0
HOSTILE = "<script>&\"'"
BUCKETS = ("<1 h", "1–6 h", "6–24 h", "1–3 d", "3–7 d", "7–30 d", ">30 d")


# -- helpers -----------------------------------------------------------------------------------


def local(tag: str) -> str:
    return tag.removeprefix(NS)


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def parse(chart: Markup) -> ET.Element:
    """The chart as a tree, after the checks every chart must pass."""
    assert isinstance(chart, Markup)
    root = ET.fromstring(str(chart))
    assert root.tag == f"{NS}svg"
    assert_accessible(root)
    assert_clean(root)
    return root


def assert_accessible(root: ET.Element) -> None:
    assert root.get("role") == "img"
    view_box = [float(part) for part in root.get("viewBox", "").split()]
    assert len(view_box) == 4
    assert view_box[2] == float(root.get("width", "nan")) > 0
    assert view_box[3] == float(root.get("height", "nan")) > 0
    title_id, desc_id = root.get("aria-labelledby", "").split()
    by_id = {child.get("id"): child for child in root}
    assert local(by_id[title_id].tag) == "title"
    assert local(by_id[desc_id].tag) == "desc"
    assert (by_id[title_id].text or "").strip()
    assert (by_id[desc_id].text or "").strip()


def assert_clean(root: ET.Element) -> None:
    """Nothing a strict CSP blocks or that could load or run anything; numbers finite, one
    decimal, never negative."""
    for element in root.iter():
        assert local(element.tag) not in FORBIDDEN_TAGS, element.tag
        for name, value in element.attrib.items():
            assert name not in {"style", "href", XLINK_HREF}, name
            assert not name.lower().startswith("on"), name
            if name in NUMERIC_ATTRIBUTES:
                assert ONE_DECIMAL.match(value), (name, value)
                assert math.isfinite(float(value))


def title_of(root: ET.Element) -> str:
    title_id = root.get("aria-labelledby", "").split()[0]
    return next(el.text or "" for el in root if el.get("id") == title_id)


def desc_of(root: ET.Element) -> str:
    desc_id = root.get("aria-labelledby", "").split()[1]
    return next(el.text or "" for el in root if el.get("id") == desc_id)


def texts(element: ET.Element, cls: str) -> list[str]:
    return [el.text or "" for el in element.iter(f"{NS}text") if cls in classes(el)]


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter(f"{NS}g") if cls in classes(el)]


def bar(group: ET.Element, cls: str = "bar") -> ET.Element:
    (found,) = [el for el in group.iter(f"{NS}rect") if {"bar", cls} <= classes(el)]
    return found


def rows_by_name(root: ET.Element) -> dict[str, ET.Element]:
    return {texts(row, "name")[0]: row for row in groups(root, "row")}


def width(element: ET.Element) -> float:
    return float(element.get("width", "nan"))


def height(element: ET.Element) -> float:
    return float(element.get("height", "nan"))


def histogram_counts(root: ET.Element) -> dict[str, int]:
    return {
        texts(bucket, "bucket")[0]: int(texts(bucket, "count")[0])
        for bucket in groups(root, "bucket")
    }


# -- every chart -------------------------------------------------------------------------------

CHARTS: dict[str, Callable[[], Markup]] = {
    "removal bars": lambda: removal_bars(
        [ProviderStats("example.net", removed=2, removal_upper=[3600.0, 7200.0])],
        title="Bars title",
    ),
    "removal bars, no rows": lambda: removal_bars([], title="Bars title"),
    "histogram": lambda: removal_histogram([10.0, 5000.0], title="Bars title"),
    "histogram, no values": lambda: removal_histogram([], title="Bars title"),
    "states": lambda: status_bars({"sent": 1, "removed": 0}, title="Bars title"),
    "states, none": lambda: status_bars({}, title="Bars title"),
}


@pytest.mark.parametrize("make", CHARTS.values(), ids=CHARTS.keys())
def test_every_chart_is_one_accessible_svg_without_forbidden_parts(make):
    chart = make()
    root = parse(chart)
    assert root.get("xmlns") is None  # the namespace is the svg's own, not an attribute
    assert str(chart).startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert str(chart).endswith("</svg>")
    assert title_of(root) == "Bars title"
    assert "<style" not in chart
    assert " style=" not in chart


def test_ids_are_unique_across_charts_on_one_page():
    charts = [make() for make in CHARTS.values()] + [make() for make in CHARTS.values()]
    page = ET.fromstring("<div>" + "".join(str(chart) for chart in charts) + "</div>")
    ids = [el.get("id") for el in page.iter() if el.get("id")]
    assert len(ids) == len(set(ids)) >= 3 * len(charts)  # the svg, its title, its desc
    first, second = (parse(removal_histogram([1.0], title="t")) for _ in range(2))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")


# -- removal bars ------------------------------------------------------------------------------


def test_removal_bars_are_proportional_to_median_and_p90():
    # A: everything at 1 h. B, sorted: five at 4 h, four at 6 h, one at 8 h; the nearest-rank
    # median is the 5th value (4 h) and the p90 the 9th (6 h), the largest figure shown (the
    # 10th value, 8 h, is neither).
    b_times = [8 * HOUR] + [6 * HOUR] * 4 + [4 * HOUR] * 5  # unsorted on purpose
    rows = [
        ProviderStats("a.example", removed=1, removal_upper=[1 * HOUR]),
        ProviderStats("b.example", removed=10, removal_upper=b_times),
    ]
    root = parse(removal_bars(rows))
    by_name = rows_by_name(root)
    assert list(by_name) == ["a.example", "b.example"]
    a, b = by_name["a.example"], by_name["b.example"]
    longest = width(bar(b, "p90"))
    assert longest == max(width(rect) for rect in root.iter(f"{NS}rect"))
    assert width(bar(b, "median")) == pytest.approx(4 * width(bar(a, "median")), rel=0.01)
    assert width(bar(b, "p90")) == pytest.approx(1.5 * width(bar(b, "median")), rel=0.01)
    assert width(bar(a, "median")) == pytest.approx(longest / 6, rel=0.01)
    assert width(bar(a, "p90")) == pytest.approx(width(bar(a, "median")), rel=0.01)
    assert texts(b, "value") == ["median 4 h", "p90 6 h"]
    assert texts(a, "value") == ["median 1 h", "p90 1 h"]
    assert desc_of(root) == "a.example: median 1 h, p90 1 h; b.example: median 4 h, p90 6 h"


def test_a_provider_without_removals_gets_text_instead_of_bars():
    rows = [
        ProviderStats("quiet.example", notices=3),
        ProviderStats("example.net", removed=2, removal_upper=[3600.0, 7200.0]),
    ]
    root = parse(removal_bars(rows))
    quiet, busy = rows_by_name(root)["quiet.example"], rows_by_name(root)["example.net"]
    assert list(quiet.iter(f"{NS}rect")) == []
    assert texts(quiet, "none") == ["no removals yet"]
    assert width(bar(busy, "p90")) > 0
    assert "quiet.example: no removals yet" in desc_of(root)
    assert "example.net: median 1 h, p90 2 h" in desc_of(root)


def test_no_rows_give_a_small_chart_saying_so():
    root = parse(removal_bars([]))
    assert texts(root, "empty") == ["No removals yet"]
    assert list(root.iter(f"{NS}rect")) == []
    assert title_of(root) == "Time to removal by provider"


def test_zero_and_unusable_times_never_make_nan_or_infinite_bars():
    rows = [
        ProviderStats("instant.example", removed=1, removal_upper=[0.0]),
        ProviderStats("odd.example", removed=3, removal_upper=[math.nan, math.inf, -5.0]),
    ]
    root = parse(removal_bars(rows))  # parse() checks every number is finite
    assert [width(rect) for rect in root.iter(f"{NS}rect") if "bar" in classes(rect)] == [0.0] * 4
    assert "nan" not in str(removal_bars(rows)).lower()


# -- histogram ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "start"),
    [
        ("1–6 h", 3600.0),
        ("6–24 h", 6 * 3600.0),
        ("1–3 d", 86400.0),
        ("3–7 d", 3 * 86400.0),
        ("7–30 d", 7 * 86400.0),
        (">30 d", 30 * 86400.0),
    ],
)
def test_histogram_buckets_include_their_lower_edge_and_exclude_the_upper(bucket, start):
    before = BUCKETS[BUCKETS.index(bucket) - 1]
    counts = histogram_counts(parse(removal_histogram([start - 1, start], title="t")))
    assert counts == {label: int(label in {before, bucket}) for label in BUCKETS}


def test_histogram_one_hour_exactly_is_not_under_an_hour():
    counts = histogram_counts(parse(removal_histogram([3599.0, 3600.0, 3600.0], title="t")))
    assert counts["<1 h"] == 1
    assert counts["1–6 h"] == 2
    assert sum(counts.values()) == 3


def test_histogram_heights_are_proportional_to_counts():
    values = [60.0, 120.0, 180.0, 2 * HOUR, 40 * 86400.0, 40 * 86400.0]  # 3, 1, 0, ..., 2
    root = parse(removal_histogram(values, title="Time to removal"))
    heights = {texts(g, "bucket")[0]: height(bar(g)) for g in groups(root, "bucket")}
    assert list(heights) == list(BUCKETS)
    assert heights["<1 h"] > 0
    assert heights["1–6 h"] == pytest.approx(heights["<1 h"] / 3, rel=0.01)
    assert heights[">30 d"] == pytest.approx(heights["<1 h"] * 2 / 3, rel=0.01)
    assert heights["6–24 h"] == 0.0
    for group in groups(root, "bucket"):  # bars stand on one baseline
        rect = bar(group)
        assert float(rect.get("y", "nan")) + height(rect) == pytest.approx(200.0, abs=0.2)
    assert desc_of(root).startswith("6 in all")


def test_histogram_without_values_says_so():
    root = parse(removal_histogram([], title="Time to removal"))
    assert texts(root, "empty") == ["No removals yet"]
    assert list(root.iter(f"{NS}rect")) == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=0.0), max_size=60))
def test_histogram_counts_add_up_and_heights_are_finite(values):
    root = parse(removal_histogram(values, title="t"))
    counts = histogram_counts(root)
    assert sum(counts.values()) == len(values)
    heights = [height(bar(g)) for g in groups(root, "bucket")]
    assert all(math.isfinite(h) and h >= 0 for h in heights)
    if values:
        fullest, tallest = max(counts.values()), max(heights)
        for group in groups(root, "bucket"):
            expected = tallest * int(texts(group, "count")[0]) / fullest
            assert height(bar(group)) == pytest.approx(expected, abs=0.1)


# -- states ------------------------------------------------------------------------------------


def test_status_bars_keep_order_and_zero_counts_and_are_proportional():
    counts = {"sent": 2, "removed": 8, "failed": 0, "escalated": 1}
    root = parse(status_bars(counts, title="Notices by state"))
    by_name = rows_by_name(root)
    assert list(by_name) == list(counts)
    assert [texts(row, "value")[0] for row in by_name.values()] == ["2", "8", "0", "1"]
    sent, removed, failed, escalated = (width(bar(row)) for row in by_name.values())
    assert removed == pytest.approx(4 * sent, rel=0.01)
    assert escalated == pytest.approx(sent / 2, rel=0.01)
    assert failed == 0.0
    assert removed == max(sent, removed, failed, escalated) > 0
    assert desc_of(root) == "sent: 2, removed: 8, failed: 0, escalated: 1"


def test_status_bars_all_zero_and_empty():
    root = parse(status_bars({"queued": 0, "sent": 0}, title="t"))
    assert [width(bar(row)) for row in groups(root, "row")] == [0.0, 0.0]
    assert texts(root, "value") == ["0", "0"]
    assert texts(parse(status_bars({}, title="t")), "empty") == ["No notices yet"]


# -- escaping ----------------------------------------------------------------------------------


def test_hostile_names_and_titles_are_escaped():
    rows = [ProviderStats(HOSTILE, removed=1, removal_upper=[HOUR]), ProviderStats(HOSTILE + "2")]
    charts = [
        removal_bars(rows, title=HOSTILE),
        status_bars({HOSTILE: 3}, title=HOSTILE),
        removal_histogram([1.0], title=HOSTILE),
    ]
    for chart in charts:
        assert "<script" not in chart
        root = parse(chart)
        assert title_of(root) == HOSTILE
        assert HOSTILE in texts(root, "title")
    bars_root = ET.fromstring(str(charts[0]))
    assert list(rows_by_name(bars_root)) == [HOSTILE, HOSTILE + "2"]
    assert desc_of(bars_root).startswith(f"{HOSTILE}: median 1 h")
    assert list(rows_by_name(ET.fromstring(str(charts[1])))) == [HOSTILE]


def test_markup_passed_as_a_title_is_still_text():
    root = parse(status_bars({"sent": 1}, title=Markup("<b>bold</b>")))
    assert title_of(root) == "<b>bold</b>"
    assert not [el for el in root.iter() if local(el.tag) == "b"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_name_still_gives_well_formed_svg(names):
    rows = [ProviderStats(name, removed=1, removal_upper=[HOUR]) for name in names]
    parse(removal_bars(rows, title="t" + names[0]))
    parse(status_bars(dict.fromkeys(names, 1), title="t" + names[-1]))


def test_long_names_are_cut_with_the_full_name_in_a_tooltip():
    name = "very-long-provider-name-" * 3 + "example"
    root = parse(removal_bars([ProviderStats(name, removed=1, removal_upper=[HOUR])]))
    (row,) = groups(root, "row")
    (label,) = texts(row, "name")
    assert len(label) < len(name)
    assert name.startswith(label.removesuffix("…"))
    assert [el.text for el in row if local(el.tag) == "title"] == [name]
    assert name in desc_of(root)


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (12 * 60, "12 min"),
        (90, "2 min"),
        (3600, "1 h"),
        (3599.7, "1 h"),
        (3 * 3600 + 5 * 60, "3 h 5 min"),
        (86400, "1 d"),
        (86399, "1 d"),
        (2 * 86400 + 4 * 3600, "2 d 4 h"),
        (45 * 86400, "45 d"),
        (-5, "0 s"),
        (math.nan, "-"),
        (math.inf, "-"),
    ],
)
def test_duration_label(seconds, label):
    assert duration_label(seconds) == label


@given(st.floats(min_value=0.0, max_value=1e9))
def test_duration_label_has_at_most_two_units_and_no_sign(seconds):
    label = duration_label(seconds)
    pairs = re.findall(r"(\d+) (s|min|h|d)", label)
    assert 1 <= len(pairs) <= 2
    assert " ".join(f"{n} {unit}" for n, unit in pairs) == label
    assert "-" not in label
