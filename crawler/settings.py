"""Scrapy settings of the hotline crawler: every default in one module.

Custom settings are prefixed by the component that reads them:

* ``CRAWL_*``    the spider: depth, page cap per seed, frame nesting, probes, crawl id
* ``MATCHER_*``  hashing and matching: pixel limit, hashing threads, which lists to load
* ``HITS_*``     the queue: Redis URL (default ``$HOTLINE_REDIS_URL`` or the embedded server),
                 key prefix
* ``SAFETY_*``   refusal of private networks (``$HOTLINE_ALLOW_PRIVATE_NETWORKS=1`` lifts it)
* ``CRAWLRECORD_*`` the run record (:mod:`crawler.extensions`): live updates, origin, options
* ``HEALTH_*``   the thresholds of crawl health (flags on the run record)
* ``FRONTIER_*`` distributed runs (:mod:`crawler.frontier`): workers share the run's frontier
                 through scrapy-redis; ``hotline worker`` sets ``SCHEDULER``,
                 ``SPIDER_MIDDLEWARES`` (the frontier's, outermost) and these

Secrets (a Redis password) never live here: they come from the environment.
No content is ever stored: no HTTP cache, no Files/ImagesPipeline, no feed of bodies.
"""

from crawler import extensions as _record
from crawler import frontier as _frontier
from matchers.guards import FLOOD_LIMIT

BOT_NAME = "hotline-crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
USER_AGENT = "hotline-crawler/0.1 (notice-and-takedown crawler)"

# A hotline must see what was reported; `hotline crawl --obey-robots` turns this on.
ROBOTSTXT_OBEY = False

# Politeness: a few connections per host, adapted to the host's latency.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# A callback yields at most a page's images and links; Scrapy starts CONCURRENT_ITEMS asyncio
# tasks per response to process them, and the default (100) made that the crawl's biggest
# cost (`bench/crawl.py`: images/s with hashing off went from 111 to ~190).
CONCURRENT_ITEMS = 8
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0

# Hostile sites: caps on size (also after decompression), time and redirects.
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0
DOWNLOAD_TIMEOUT = 30
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 1
DEPTH_LIMIT = 0  # link depth is the spider's own (CRAWL_DEPTH): images below it still load
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
HTTPCACHE_ENABLED = False
MEMUSAGE_ENABLED = False

TWISTED_DNS_RESOLVER = "crawler.safety.SafeResolver"
DOWNLOADER_MIDDLEWARES = {
    "crawler.safety.PrivateNetworkMiddleware": 50,
}
ITEM_PIPELINES = {
    "crawler.pipelines.MatchPipeline": 300,
    "crawler.pipelines.QueuePipeline": 400,
}
EXTENSIONS = {
    "crawler.extensions.CrawlRecord": 500,
}

CRAWL_DEPTH = 2
CRAWL_MAX_PAGES_PER_SEED = 200
CRAWL_MAX_FRAME_NESTING = 3
CRAWL_MAX_PROBES_PER_PAGE = 50
CRAWL_ID = ""

MATCHER_MAX_PIXELS = 50_000_000
MATCHER_THREADS = 2
MATCHER_LISTS: list[str] = []  # names of the known lists to match (allow-lists always load)
MATCHER_RELOAD_INTERVAL = 30.0  # seconds between checks for new list versions; 0: never
MATCHER_FLOOD_LIMIT = FLOOD_LIMIT  # distinct images one entry confirms per crawl, then review

HITS_REDIS_URL = ""
HITS_KEY_PREFIX = "hotline:"

SAFETY_ALLOW_PRIVATE_NETWORKS = False
SAFETY_ALLOWED_NETWORKS: list[str] = []  # CIDRs reachable even when private

# The run record: live counts and the cancel check every CRAWLRECORD_INTERVAL s (0: none);
# the origin ("scrapy" when empty) and options recorded for a run the crawl creates itself.
CRAWLRECORD_ENABLED = True
CRAWLRECORD_INTERVAL = _record.RECORD_INTERVAL
CRAWLRECORD_ORIGIN = ""
CRAWLRECORD_OPTIONS: dict[str, object] = {}

# Crawl health: flag a run whose error rate (failed / distinct requests) is above the maximum
# once it made the minimum of requests, or whose pages (at least the minimum) hold no image.
HEALTH_MAX_ERROR_RATE = _record.HEALTH_MAX_ERROR_RATE
HEALTH_MIN_REQUESTS = _record.HEALTH_MIN_REQUESTS
HEALTH_NO_IMAGES_MIN_PAGES = _record.HEALTH_NO_IMAGES_MIN_PAGES

# Distributed runs: a worker is dead after FRONTIER_LEASE s without a heartbeat (its
# requests are crawled again by the others); idle workers look for work every
# FRONTIER_POLL_INTERVAL s. FRONTIER_WORKER: this worker's id (default <host>:<pid>).
FRONTIER_ENABLED = False
FRONTIER_WORKER = ""
FRONTIER_LEASE = _frontier.LEASE
FRONTIER_POLL_INTERVAL = _frontier.POLL_INTERVAL

FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
