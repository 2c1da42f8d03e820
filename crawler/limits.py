"""Crawl limits the CLI shows as option defaults, in a module light enough to import without
Scrapy (``hotline --help`` and the non-crawl commands start faster for it)."""

from __future__ import annotations

#: Links followed from each seed, counting the seed as depth 0.
DEFAULT_DEPTH = 2
#: Distinct pages crawled per seed.
DEFAULT_MAX_PAGES_PER_SEED = 200
