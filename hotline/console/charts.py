"""Server-rendered SVG charts for the analyst console: no script, no style, no external resource.

Each chart is one ``<svg>`` element (``role="img"``, labelled by its own ``<title>`` and a
``<desc>`` that says in words what the bars show). The console's Content-Security-Policy
forbids inline styles, so the default look comes from presentation attributes (``fill``,
``stroke``, ``font-size``) and ``class`` attributes (``bar median``, ``bar p90``, ``axis``,
``label``) let ``console.css`` restyle it. Every text that comes from data is stripped of the
characters XML cannot carry and escaped; every number is written with one decimal and is
finite, whatever the input (an empty input, a zero maximum, a value that is not finite).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from markupsafe import Markup

from store.clock import DAY, HOUR, MINUTE
from takedown.stats import ProviderStats, nearest_rank

__all__ = ["duration_label", "removal_bars", "removal_histogram", "status_bars"]

SVG_NS: Final = "http://www.w3.org/2000/svg"
#: Width of every chart in user units (the viewBox width; CSS may scale it).
CHART_WIDTH: Final = 640.0
FONT_FAMILY: Final = "system-ui, sans-serif"
FONT_SIZE: Final = 12
TEXT_FILL: Final = "#222"
MUTED_FILL: Final = "#666"
AXIS_STROKE: Final = "#888"
MEDIAN_FILL: Final = "#1b6ca8"
P90_FILL: Final = "#9cc3e0"
HISTOGRAM_FILL: Final = "#1b6ca8"
STATUS_FILL: Final = "#4f7d5c"
#: Baseline of the visible title, and the top of what follows it.
TITLE_BASELINE: Final = 18.0
#: Height of the chart shown for an empty input (title and one line of text).
EMPTY_HEIGHT: Final = 48.0
#: Provider and state names longer than this are cut (the full name is in a tooltip).
NAME_CHARS: Final = 26
#: Horizontal bar charts: the name column on the left, the value column on the right.
NAME_WIDTH: Final = 180.0
VALUE_WIDTH: Final = 120.0
BAR_LENGTH: Final = CHART_WIDTH - NAME_WIDTH - VALUE_WIDTH
BAR_HEIGHT: Final = 12.0
BAR_GAP: Final = 2.0
ROW_GAP: Final = 12.0
#: Where the provider rows of :func:`removal_bars` start (under the title and the legend).
REMOVAL_TOP: Final = 48.0
#: Where the state rows of :func:`status_bars` start (under the title).
STATUS_TOP: Final = 30.0
BOTTOM_MARGIN: Final = 8.0
#: :func:`removal_histogram`: the plot area, its bars' share of each slot, the label line.
HISTOGRAM_SIDE: Final = 16.0
HISTOGRAM_TOP: Final = 40.0
HISTOGRAM_BASE: Final = 200.0
HISTOGRAM_BAR_SHARE: Final = 0.7
HISTOGRAM_HEIGHT: Final = 228.0
#: Time-to-removal buckets: a label and the lower bound (inclusive) in seconds; each bucket
#: ends where the next begins, the last one never.
HISTOGRAM_BUCKETS: Final = (
    ("<1 h", 0.0),
    ("1–6 h", HOUR),
    ("6–24 h", 6 * HOUR),
    ("1–3 d", DAY),
    ("3–7 d", 3 * DAY),
    ("7–30 d", 7 * DAY),
    (">30 d", 30 * DAY),
)
_BUCKET_STARTS: Final = [start for _, start in HISTOGRAM_BUCKETS]
#: Characters XML 1.0 cannot carry, even escaped.
_XML_INVALID: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Ids unique within the process, so several charts on one page never share one.
_CHART_IDS: Final = itertools.count(1)


def duration_label(seconds: float) -> str:
    """A duration as a person reads it, in two units at most: ``45 s``, ``12 min``,
    ``3 h 5 min``, ``2 d 4 h``.

    Rounded to the smaller unit shown; a negative duration reads ``0 s`` and one that is not
    a number (NaN, infinity) reads ``-``. The units are those of :mod:`store.clock`, whose
    :func:`~store.clock.format_duration` writes the compact machine form (``2.5h``).
    """
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if _rounded(seconds) < MINUTE:
        return f"{_rounded(seconds)} s"
    minutes = _rounded(seconds / MINUTE)
    if minutes < HOUR / MINUTE:
        return f"{minutes} min"
    if minutes < DAY / MINUTE:
        hours, minutes = divmod(minutes, int(HOUR / MINUTE))
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(_rounded(seconds / HOUR), int(DAY / HOUR))
    return f"{days} d {hours} h" if hours else f"{days} d"


def removal_bars(
    rows: Sequence[ProviderStats], *, title: str = "Time to removal by provider"
) -> Markup:
    """Median and 90th percentile of each provider's time to removal (``removal_upper``), as
    two horizontal bars per provider in the order given, scaled to the largest figure of all.

    A provider without removal times gets a line of text instead of bars; no rows at all, a
    small chart that says so. Times that are not finite are left out; negative ones count
    as zero.
    """
    if not rows:
        return _empty_chart("removal-bars", title, "No removals yet")
    figures = [(row, _median_p90(row.removal_upper)) for row in rows]
    largest = max((value for _, pair in figures if pair for value in pair), default=0.0)
    row_height = 2 * BAR_HEIGHT + BAR_GAP + ROW_GAP
    body = [_legend()]
    summary = []
    for index, (row, pair) in enumerate(figures):
        top = REMOVAL_TOP + index * row_height
        if pair is None:
            note = "no removals yet" if row.removed == 0 else "no removal times recorded"
            body.append(_removal_row_without_bars(row.provider, top, note))
            summary.append(f"{row.provider}: {note}")
        else:
            body.append(_removal_row(row.provider, top, pair, largest))
            median, p90 = (duration_label(value) for value in pair)
            summary.append(f"{row.provider}: median {median}, p90 {p90}")
    height = REMOVAL_TOP + len(rows) * row_height + BOTTOM_MARGIN
    body.append(_axis(NAME_WIDTH, REMOVAL_TOP - 4, NAME_WIDTH, height - BOTTOM_MARGIN))
    return _chart("removal-bars", title, "; ".join(summary), height, body)


def removal_histogram(values: Sequence[float], *, title: str) -> Markup:
    """How many times to removal (in seconds) fall in each of the buckets ``<1 h``, ``1–6 h``,
    ``6–24 h``, ``1–3 d``, ``3–7 d``, ``7–30 d`` and ``>30 d`` (lower bound inclusive, upper
    exclusive), as vertical bars scaled to the fullest bucket, each labelled with its count.

    Negative times count as zero, infinite ones as ``>30 d``; NaN is left out. No values at
    all give a small chart that says so.
    """
    counts = _bucket_counts(values)
    total = sum(counts)
    if not total:
        return _empty_chart("removal-histogram", title, "No removals yet")
    fullest = max(counts)
    slot = (CHART_WIDTH - 2 * HISTOGRAM_SIDE) / len(HISTOGRAM_BUCKETS)
    bar_width = slot * HISTOGRAM_BAR_SHARE
    body = []
    for index, ((label, _), count) in enumerate(zip(HISTOGRAM_BUCKETS, counts, strict=True)):
        bar_height = _scaled(count, fullest, HISTOGRAM_BASE - HISTOGRAM_TOP)
        top = HISTOGRAM_BASE - bar_height
        centre = HISTOGRAM_SIDE + (index + 0.5) * slot
        body.append(
            _group(
                "bucket",
                _rect("bar", centre - bar_width / 2, top, bar_width, bar_height, HISTOGRAM_FILL),
                _text("label count", centre, top - 4, str(count), anchor="middle"),
                _text("label bucket", centre, HISTOGRAM_BASE + 16, label, anchor="middle"),
            )
        )
    body.append(_axis(HISTOGRAM_SIDE, HISTOGRAM_BASE, CHART_WIDTH - HISTOGRAM_SIDE, HISTOGRAM_BASE))
    buckets = ", ".join(
        f"{label}: {count}" for (label, _), count in zip(HISTOGRAM_BUCKETS, counts, strict=True)
    )
    return _chart("removal-histogram", title, f"{total} in all; {buckets}", HISTOGRAM_HEIGHT, body)


def status_bars(counts: Mapping[str, int], *, title: str) -> Markup:
    """One horizontal bar per notice state, in the mapping's order, scaled to the largest
    count and labelled with it; a zero count keeps its row (a bar of length zero and ``0``).

    Negative counts are shown as zero. An empty mapping gives a small chart that says so.
    """
    if not counts:
        return _empty_chart("status-bars", title, "No notices yet")
    shown = [(state, max(0, count)) for state, count in counts.items()]
    largest = max(count for _, count in shown)
    body = []
    for index, (state, count) in enumerate(shown):
        top = STATUS_TOP + index * (BAR_HEIGHT + ROW_GAP)
        length = _scaled(count, largest, BAR_LENGTH)
        baseline = top + BAR_HEIGHT - 2
        body.append(
            _group(
                "row",
                _tooltip(state),
                _text("label name", NAME_WIDTH - 8, baseline, _clip(state), anchor="end"),
                _rect("bar count", NAME_WIDTH, top, length, BAR_HEIGHT, STATUS_FILL),
                _text("label value", NAME_WIDTH + length + 4, baseline, str(count)),
            )
        )
    height = STATUS_TOP + len(shown) * (BAR_HEIGHT + ROW_GAP) + BOTTOM_MARGIN
    body.append(_axis(NAME_WIDTH, STATUS_TOP - 4, NAME_WIDTH, height - BOTTOM_MARGIN))
    summary = ", ".join(f"{state}: {count}" for state, count in shown)
    return _chart("status-bars", title, summary, height, body)


# -- the figures -------------------------------------------------------------------------------


def _median_p90(values: Iterable[float]) -> tuple[float, float] | None:
    """The nearest-rank median and 90th percentile of the finite values (negatives as zero)."""
    usable = [max(0.0, value) for value in values if math.isfinite(value)]
    median, p90 = nearest_rank(usable, 50), nearest_rank(usable, 90)
    if median is None or p90 is None:
        return None
    return median, p90


def _bucket_counts(values: Iterable[float]) -> list[int]:
    counts = [0] * len(HISTOGRAM_BUCKETS)
    for value in values:
        if math.isnan(value):
            continue
        counts[bisect.bisect_right(_BUCKET_STARTS, max(0.0, value)) - 1] += 1
    return counts


def _scaled(value: float, largest: float, length: float) -> float:
    """``value`` as a share of ``length``, ``largest`` taking all of it (0 when it is 0)."""
    if largest <= 0:
        return 0.0
    return max(0.0, min(value, largest)) / largest * length


def _rounded(value: float) -> int:
    """Half up, not to even: 2.5 minutes read 3 min."""
    return math.floor(value + 0.5)


# -- the markup: built from literal templates whose every argument Markup.format escapes -------


def _chart(kind: str, title: str, summary: str, height: float, body: Iterable[Markup]) -> Markup:
    """The ``<svg>`` element around ``body``, titled, described and labelled by both."""
    chart_id = f"chart-{next(_CHART_IDS)}"
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return Markup(
        '<svg xmlns="{ns}" id="{id}" class="chart {kind}" role="img"'
        ' width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' aria-labelledby="{title_id} {desc_id}"'
        ' font-family="{font}" font-size="{size}" fill="{fill}">'
        '<title id="{title_id}">{title}</title><desc id="{desc_id}">{desc}</desc>'
        "{heading}{body}</svg>"
    ).format(
        ns=SVG_NS,
        id=chart_id,
        kind=kind,
        width=_number(CHART_WIDTH),
        height=_number(height),
        title_id=title_id,
        desc_id=desc_id,
        font=FONT_FAMILY,
        size=FONT_SIZE,
        fill=TEXT_FILL,
        title=_xml_text(title),
        desc=_xml_text(summary),
        heading=_text("title", 8, TITLE_BASELINE, title, bold=True),
        body=Markup("").join(body),
    )


def _empty_chart(kind: str, title: str, message: str) -> Markup:
    note = _text("label empty", 8, TITLE_BASELINE + 20, message, fill=MUTED_FILL)
    return _chart(kind, title, message, EMPTY_HEIGHT, [note])


def _legend() -> Markup:
    top = TITLE_BASELINE + 10
    return _group(
        "legend",
        _rect("swatch median", NAME_WIDTH, top, 10, 10, MEDIAN_FILL),
        _text("label", NAME_WIDTH + 14, top + 9, "median"),
        _rect("swatch p90", NAME_WIDTH + 80, top, 10, 10, P90_FILL),
        _text("label", NAME_WIDTH + 94, top + 9, "p90 (90th percentile)"),
    )


def _removal_row(provider: str, top: float, pair: tuple[float, float], largest: float) -> Markup:
    parts = [
        _tooltip(provider),
        _text("label name", NAME_WIDTH - 8, top + BAR_HEIGHT + 4, _clip(provider), anchor="end"),
    ]
    for offset, kind, fill, value in (
        (0.0, "median", MEDIAN_FILL, pair[0]),
        (BAR_HEIGHT + BAR_GAP, "p90", P90_FILL, pair[1]),
    ):
        length = _scaled(value, largest, BAR_LENGTH)
        baseline = top + offset + BAR_HEIGHT - 2
        label = f"{kind} {duration_label(value)}"
        parts.append(_rect(f"bar {kind}", NAME_WIDTH, top + offset, length, BAR_HEIGHT, fill))
        parts.append(_text(f"label value {kind}", NAME_WIDTH + length + 4, baseline, label))
    return _group("row", *parts)


def _removal_row_without_bars(provider: str, top: float, note: str) -> Markup:
    baseline = top + BAR_HEIGHT + 4
    return _group(
        "row",
        _tooltip(provider),
        _text("label name", NAME_WIDTH - 8, baseline, _clip(provider), anchor="end"),
        _text("label none", NAME_WIDTH + 4, baseline, note, fill=MUTED_FILL),
    )


def _group(cls: str, *children: Markup) -> Markup:
    return Markup('<g class="{}">{}</g>').format(cls, Markup("").join(children))


def _tooltip(name: str) -> Markup:
    """A ``<title>`` with the full name when the label has to cut it."""
    if len(name) <= NAME_CHARS:
        return Markup("")
    return Markup("<title>{}</title>").format(_xml_text(name))


def _clip(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _rect(cls: str, x: float, y: float, width: float, height: float, fill: str) -> Markup:
    return Markup('<rect class="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"/>').format(
        cls, _number(x), _number(y), _number(width), _number(height), fill
    )


def _text(
    cls: str,
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    fill: str | None = None,
    bold: bool = False,
) -> Markup:
    extra = Markup("")
    if fill:
        extra += Markup(' fill="{}"').format(fill)
    if bold:
        extra += Markup(' font-weight="bold"')
    return Markup('<text class="{}" x="{}" y="{}" text-anchor="{}"{}>{}</text>').format(
        cls, _number(x), _number(y), anchor, extra, _xml_text(content)
    )


def _axis(x1: float, y1: float, x2: float, y2: float) -> Markup:
    return Markup('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>').format(
        _number(x1), _number(y1), _number(x2), _number(y2), AXIS_STROKE
    )


def _xml_text(text: str) -> str:
    """``text`` as a plain string XML can carry (invalid characters replaced), never Markup:
    :meth:`Markup.format` escapes it, whatever the caller passed."""
    return _XML_INVALID.sub("\ufffd", str.__str__(text))


def _number(value: float) -> str:
    """A coordinate with one decimal; a value that is not finite is a bug, not a picture."""
    if not math.isfinite(value):
        raise ValueError(f"chart coordinate is not finite: {value!r}")
    return f"{value + 0.0:.1f}"
