"""Tests of ``crawler``: discovery, scope, seeds, safety, the spiders' callbacks and pipelines
offline or on loopback, the crawl's Redis settings, rechecks."""
