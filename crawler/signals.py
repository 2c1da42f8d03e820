"""The crawler's own Scrapy signals."""

#: Sent by the spider's errback once it handled a failed request (``request=``): for the
#: distributed frontier, that request is done (Scrapy sends no signal for errbacks).
request_failed = object()

#: Sent by the match pipeline whenever its lists change (``algorithms=``: the perceptual
#: algorithms the loaded lists hold, a frozenset): the spider's hasher computes only those
#: from then on. Sent from the thread that loaded the lists (a reload runs in a worker
#: thread), so a receiver must be thread-safe.
lists_changed = object()

#: Sent by the queue pipeline for each confirmed hit it queued, new or already queued
#: (``page=``: the page the content was found on, ``seed=``): the spider follows that page's
#: links further and crawls its section first. Sent from the reactor thread.
hit_found = object()
