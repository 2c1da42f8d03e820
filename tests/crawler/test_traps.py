"""Trap shapes, path templates and the budgets of crawler.traps."""

from __future__ import annotations

import pytest

from crawler.traps import (
    FREE_PAGES,
    MAX_HELD,
    PAGES_PER_PRODUCTIVE,
    TrapGuard,
    path_template,
    strip_session,
    trap_shape,
)


@pytest.mark.parametrize(
    ("url", "shape"),
    [
        ("http://h/a/b/a/b/", "repeated_segments"),
        ("http://h/x/a/y/a/z/a", "repeated_segments"),
        ("http://h/docs/api/docs/api/index.html", "repeated_segments"),
        ("http://h/a/b/a/", None),  # twice is not yet a loop
        ("http://h/2024/01/01/", None),  # numbers repeat in dates
        ("http://h/photos/photos/", None),
        ("http://h/gallery/12", None),
    ],
)
def test_loops_are_told_by_their_shape(url: str, shape: str | None) -> None:
    assert trap_shape(url) == shape


@pytest.mark.parametrize(
    ("url", "template", "family"),
    [
        ("http://h/gallery/12", "h/gallery/{n}", "h/gallery/{n}"),
        ("http://h/calendar?month=2026-12", "h/calendar?month", "h/calendar"),
        ("http://h/events/2026-12-06/", "h/events/{date}/", "h/events/{date}/"),
        ("http://h/archive/December/2026", "h/archive/{month}/{date}", "h/archive/{month}/{date}"),
        ("http://h/item/4f3a9c2e1b77", "h/item/{id}", "h/item/{id}"),
        ("http://h/p/ab12cd", "h/p/ab{n}cd", "h/p/ab{n}cd"),
        ("http://h/article17.html", "h/article{n}.html", "h/article{n}.html"),
        ("http://h/About", "h/about", "h/about"),
        ("http://h/search?size=m&color=red", "h/search?color&size", "h/search"),
        ("http://h/shop;jsessionid=A1B2?sid=9f&q=1", "h/shop?q", "h/shop"),
    ],
)
def test_templates_generalise_numbers_dates_and_ids(url: str, template: str, family: str) -> None:
    assert path_template(url) == (template, family)


def test_session_ids_are_left_out_and_nothing_else_is() -> None:
    assert (
        strip_session("http://h/shop;jsessionid=A1?PHPSESSID=x&q=1&s=2") == "http://h/shop?q=1&s=2"
    )
    assert strip_session("http://h/a?sid=1") == "http://h/a"
    assert strip_session("http://h/a?page=2") == "http://h/a?page=2"


def test_a_template_gets_free_pages_then_pages_for_each_productive_one() -> None:
    guard: TrapGuard[int] = TrapGuard()
    months = [f"http://h/calendar?month=2026-{m:02d}" for m in range(1, 13)]
    admitted = [url for url in months if guard.admit(url) is None]
    assert admitted == months[:FREE_PAGES]
    assert guard.admit(months[FREE_PAGES]) == "template_budget"
    for n, url in enumerate(months[FREE_PAGES:]):
        assert guard.hold(url, n)
    assert guard.still_held() == {"h/calendar?month": len(months) - FREE_PAGES}
    # A productive page releases as many held pages as it earns, in the order they came.
    released = guard.productive(months[0])
    assert released == [(months[FREE_PAGES + n], n) for n in range(PAGES_PER_PRODUCTIVE)]
    assert guard.still_held() == {"h/calendar?month": len(months) - FREE_PAGES - 2}
    # Other templates keep their own budgets; a shape is refused whatever the budget.
    assert guard.admit("http://h/gallery/1") is None
    assert guard.admit("http://h/a/b/a/b/") == "repeated_segments"


def test_the_family_bounds_every_facet_combination_together() -> None:
    guard: TrapGuard[int] = TrapGuard()
    facets = [
        "http://h/search?color=red",
        "http://h/search?color=red&size=m",
        "http://h/search?size=m&sort=new",
        "http://h/search?color=red&size=m&sort=new",
    ]
    assert [guard.admit(url) for url in facets] == [
        None,
        None,
        "template_budget",
        "template_budget",
    ]


def test_held_pages_are_bounded_per_template() -> None:
    guard: TrapGuard[int] = TrapGuard()
    urls = [f"http://h/day/{n}" for n in range(MAX_HELD + FREE_PAGES + 1)]
    for url in urls[:FREE_PAGES]:
        assert guard.admit(url) is None
    results = [guard.hold(url, 0) for url in urls[FREE_PAGES:]]
    assert results.count(True) == MAX_HELD and results[-1] is False
