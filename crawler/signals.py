"""The crawler's own Scrapy signals."""

#: Sent by the spider's errback once it handled a failed request (``request=``): for the
#: distributed frontier, that request is done (Scrapy sends no signal for errbacks).
request_failed = object()
