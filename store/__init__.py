"""The Redis-backed state every package shares, and nothing else.

``crawler`` and ``takedown`` never import each other: what both need lives here. Modules:

* :mod:`store.environment` - every ``HOTLINE_*`` environment variable, read one way for the
  CLI and the crawler; the data directory; the one yes/no parser
* :mod:`store.connection` - the one Redis client factory, the embedded server's socket, URL
  masking
* :mod:`store.keys` - every Redis key name, under one prefix
* :mod:`store.errors` - the error tree (:class:`~store.errors.StoreError` and below)
* :mod:`store.base` - the skeleton of a store (Lua scripts registered once, replies decoded)
* :mod:`store.queue` - the ``hits`` and ``review`` streams, enqueued once per incident
* :mod:`store.lists` - known and allow hash lists, versioned and chunked
* :mod:`store.runs` - crawl runs as records: statuses, live counts, health, the run id
* :mod:`store.schedules` - crawl schedules and the claim of their due slots
* :mod:`store.options` - crawl options, one value from the command line to run records,
  schedules and the crawl's settings
* :mod:`store.rechecks` - what a recheck fetches and what it found (crawler and takedown
  share them)
* :mod:`store.frontier` - the Lua half of a distributed run's shared frontier
* :mod:`store.accounts` - the analyst console's users, API tokens, sessions and login
  throttling
* :mod:`store.clock` - times (ISO 8601 UTC) and durations in their one text form each
* :mod:`store.text` - replies as text, errors as one line

No module here holds or writes content: records carry URLs, hashes and counts only.
"""
