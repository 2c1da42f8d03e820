"""Find: the Scrapy project that crawls reported URLs and hashes every image in memory.

Imports :mod:`matchers` and :mod:`store`, never :mod:`takedown`. Modules:

``settings``
    Every Scrapy setting and default, as literals (``scrapy.cfg`` points here).
``runsettings``
    The Scrapy settings of one run (crawl or recheck) from the project settings and
    :class:`store.options.CrawlOptions`.
``spiders.hotline``
    The crawl spider: seeds, links in scope, image references of every kind, probes.
``spiders.recheck``
    The recheck spider: re-fetches noticed image URLs for ``hotline recheck``.
``discovery``
    Image references, links and frames in HTML and CSS, one function per kind.
``scope``, ``seeds``
    Which URLs belong to a seed's site; reading seed URLs and files.
``hashing``
    Hashing image bodies off the reactor thread (:mod:`matchers.digest`), in the pool
    ``MATCHER_POOL`` names, with a bound on the bodies in flight.
``workerpool``, ``hashworker``
    Hash worker processes fed through pipes: the pool, and the worker's own loop.
``judge``
    A recheck's verdict: still online, removed, or unreachable.
``items``, ``signals``
    The one item the spider yields; the crawler's own signals.
``pipelines``
    Matching each image against the known lists, queueing hits and review items.
``redis``
    The crawl's Redis: server, key prefix and clients for every Redis access of a crawl.
``extensions``
    The run record: live counts, health, cancel, the final stats.
``frontier``
    Distributed runs: the scheduler, middleware and leases on a run's shared frontier.
``safety``
    The address policy: no request reaches a private network unless allowed.

No module writes image bytes anywhere: they live between download and hash only (in a hash
worker's memory too, which gets them through a pipe).
"""
