"""Crawl options as one value from the command line to the run record and back: the stored
object's keys, defaults for older and ``scrapy crawl`` records, refusal of bad values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from store.options import DEFAULT_DEPTH, DEFAULT_MAX_PAGES_PER_SEED, OPTION_KEYS, CrawlOptions

#: A run record's options as `hotline crawl` has always written them.
RECORDED = {
    "depth": 3,
    "max_pages": 7,
    "allow_private_networks": True,
    "allowed_networks": ["10.1.0.0/16"],
    "obey_robots": True,
    "lists": ["known"],
    "overrides": {"DOWNLOAD_DELAY": "0.5"},
    "distributed": False,
    "hit_depth": 4,
}


def test_options_round_trip_through_the_stored_object() -> None:
    options = CrawlOptions.from_dict(RECORDED)
    assert options.as_dict() == RECORDED
    assert list(options.as_dict()) == list(OPTION_KEYS)
    assert CrawlOptions.from_dict(json.loads(json.dumps(options.as_dict()))) == options


def test_older_and_scrapy_records_read_with_defaults() -> None:
    assert CrawlOptions.from_dict({}) == CrawlOptions()
    # `scrapy crawl` records the subset of the keys its settings tell.
    scrapy = {k: RECORDED[k] for k in list(OPTION_KEYS)[:6]}
    options = CrawlOptions.from_dict(scrapy)
    assert (options.depth, options.lists, options.overrides) == (3, ("known",), {})
    assert (options.depth, options.max_pages) == (3, 7)
    assert CrawlOptions().as_dict()["depth"] == DEFAULT_DEPTH
    assert CrawlOptions().as_dict()["max_pages"] == DEFAULT_MAX_PAGES_PER_SEED


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"depth": "deep"}, "depth"),
        ({"speed": 1}, "unknown speed"),
        ({"lists": "known"}, "lists"),
        ({"overrides": ["A=1"]}, "overrides"),
        ({"obey_robots": "yes"}, "obey_robots"),
    ],
)
def test_bad_stored_options_are_refused_with_the_key(stored: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrawlOptions.from_dict(stored)


def test_options_cannot_change_once_built() -> None:
    options = CrawlOptions(overrides={"A": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.depth = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.overrides["A"] = "2"  # type: ignore[index]
