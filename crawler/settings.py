"""Scrapy settings of the hotline crawler: every default in one module, as literals.

This module imports nothing but :mod:`store.options` (standard library only), whose crawl
option defaults a run record shares. ``scrapy.cfg`` and
:func:`crawler.runsettings.build_settings` load it as the project's settings, and the CLI
reads its option defaults from it without loading Scrapy. A component that needs a default
reads the setting, or imports the constant from here; no other module restates a value.
Custom settings are prefixed by what they serve:

* ``CRAWL_*``       the spider: depth, page cap per seed, frame nesting, probes, the size cap
                    of files that are not pages or images, crawl id
* ``MATCHER_*``     hashing and matching: pixel limit, the hashing pool (kind, workers,
                    bodies in flight, timeout), archive limits, which lists to load, list
                    reloads, the flood guard
* ``STORE_*``       the crawl's Redis (:mod:`crawler.redis`): server URL (default
                    ``$HOTLINE_REDIS_URL`` or the embedded server) and key prefix, for every
                    Redis access of a crawl. Aliases: ``HITS_REDIS_URL`` for
                    ``STORE_REDIS_URL``, ``HITS_KEY_PREFIX`` for ``STORE_KEY_PREFIX`` (the
                    former names; the new name wins when both are set)
* ``SAFETY_*``      refusal of private networks (``$HOTLINE_ALLOW_PRIVATE_NETWORKS=1`` lifts it)
* ``CRAWLRECORD_*`` the run record (:mod:`crawler.extensions`): live updates, origin, options
* ``HEALTH_*``      the thresholds of crawl health (flags on the run record)
* ``FRONTIER_*``    distributed runs (:mod:`crawler.frontier`): workers share the run's
                    frontier through scrapy-redis; ``hotline worker`` sets ``SCHEDULER``,
                    ``SPIDER_MIDDLEWARES`` (the frontier's, outermost) and these

A default that belongs to :mod:`matchers` (which imports nothing of ours) or to :mod:`store`
is ``None`` or empty here, meaning "theirs": ``MATCHER_MAX_PIXELS``
(:data:`matchers.algorithms.MAX_IMAGE_PIXELS`), ``MATCHER_ARCHIVE_MAX_*``
(:class:`matchers.archives.ArchiveLimits`), ``MATCHER_FLOOD_LIMIT``
(:data:`matchers.guards.FLOOD_LIMIT`), ``STORE_KEY_PREFIX`` (:data:`store.keys.DEFAULT_PREFIX`);
``CRAWL_DEPTH`` and ``CRAWL_MAX_PAGES_PER_SEED`` are :mod:`store.options`' defaults.

Secrets (a Redis password) never live here: they come from the environment.
No content is ever stored: no HTTP cache, no Files/ImagesPipeline, no feed of bodies.
"""

from store import options as _options  # stdlib only: keeps this module light

BOT_NAME = "hotline-crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
# A browser's User-Agent: a crawl or recheck that announced itself could be told apart and
# served something else (cloaking), or blocked so that a notice looks "removed". Set
# USER_AGENT (`--set USER_AGENT=...`, or `[notices] user_agent` for rechecks) to change it.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# The recheck's second look before a notice may close: another browser's profile, with the
# headers a browser sends for an image and the page it was found on as Referer.
RECHECK_BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
RECHECK_BROWSER_HEADERS = {
    "Accept": "image/webp,image/avif,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "Accept-Language": "en-GB,en;q=0.9",
}

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
# No listening socket in any process: Scrapy's RemoteControl (2.19) is an HTTP server that runs
# Python inside the crawl, with token files under the home directory; off, and out of the
# extensions, in every crawl, recheck and worker.
REMOTE_CONTROL_ENABLED = False
HTTPCACHE_ENABLED = False
MEMUSAGE_ENABLED = False

TWISTED_DNS_RESOLVER = "crawler.safety.SafeResolver"
DOWNLOADER_MIDDLEWARES = {
    "crawler.safety.PrivateNetworkMiddleware": 50,
    "crawler.backpressure.HeldResponses": 60,
}
ITEM_PIPELINES = {
    "crawler.pipelines.MatchPipeline": 300,
    "crawler.pipelines.QueuePipeline": 400,
}
EXTENSIONS = {
    "crawler.extensions.CrawlRecord": 500,
    "scrapy.extensions.remote_control.RemoteControl": None,
    "scrapy.extensions.telnet.TelnetConsole": None,
}

# The two crawl options a run record also stores: their defaults are written once, there.
CRAWL_DEPTH = _options.DEFAULT_DEPTH
CRAWL_MAX_PAGES_PER_SEED = _options.DEFAULT_MAX_PAGES_PER_SEED
CRAWL_MAX_FRAME_NESTING = 3
CRAWL_MAX_PROBES_PER_PAGE = 50
# Media (videos, audio, embeds, objects) and links to files fetched per page; the rest are
# counted (crawl/media_cap_reached), not fetched.
CRAWL_MAX_MEDIA_PER_PAGE = 50
# References followed per page, in document order; the rest are counted
# (crawl/page_cap/<kind>; crawl/pages_capped, the health flag page_caps). A page of 100 000
# <img> queued 100 001 requests (about 9 hours); 1 000 images take a minute or two.
CRAWL_MAX_IMAGES_PER_PAGE = 1000
CRAWL_MAX_LINKS_PER_PAGE = 1000
CRAWL_MAX_STYLESHEETS_PER_PAGE = 50
CRAWL_MAX_FRAMES_PER_PAGE = 20
# CPU seconds a page may take to read (pages over 64 KiB are read on a thread of their own, off
# the reactor): past it the page is dropped and counted (crawl/parse_timeout; the health flag
# parse_timeouts). Reading is linear in the page's size: a 10 MiB page takes about a second.
CRAWL_PARSE_TIMEOUT = 10.0
# Crawler traps (calendars, session-id loops, faceted search, repeated path segments): pages of
# a path template that yields nothing new get a shrinking budget (crawler.traps); 0 turns the
# guard off (every same-site link within the depth is followed).
CRAWL_TRAP_GUARD = True
# Extra link depth below a page that yielded a confirmed hit (its links, and theirs, are followed
# that much further than CRAWL_DEPTH); pages in a section (host and first path segment) with
# hits are crawled before others; a seed whose first CRAWL_SEED_GIVE_UP_PAGES pages showed no
# image at all schedules no further pages (0: never gives up; a distributed run never does).
CRAWL_HIT_DEPTH = _options.DEFAULT_HIT_DEPTH
CRAWL_SEED_GIVE_UP_PAGES = 50
# Bytes of a downloaded file that is neither a page nor an image (a video, an archive, a PDF,
# any binary body): it is held in memory only, counted while it arrives, and refused past
# this; pages, stylesheets and images keep DOWNLOAD_MAXSIZE. Memory at worst: about twice
# this per request in flight (the body, then its copy as a response), times CONCURRENT_REQUESTS.
CRAWL_MEDIA_MAXSIZE = 256 * 1024 * 1024
# Responses a crawl holds at once (downloading, waiting for the scraper, being parsed or
# waiting for the hash pool): past it, no download starts (crawler/backpressure.py). About
# 58 KiB each besides the body; 0: only Scrapy's SCRAPER_SLOT_MAX_ACTIVE_SIZE (bytes) applies.
CRAWL_MAX_HELD_RESPONSES = 256
CRAWL_ID = ""

# Pixels above which an image is refused before decoding; None: the matcher's own limit.
MATCHER_MAX_PIXELS: int | None = None
# Where images are hashed: "process" (worker processes fed through pipes), "thread" (threads
# of the crawl process) or "inline" (the reactor thread); see crawler/hashing.py.
MATCHER_POOL = "process"
MATCHER_WORKERS = 0  # processes or threads hashing images; 0: one per CPU core
MATCHER_MAX_IN_FLIGHT = 0  # bodies handed to the pool at once; 0: two per worker
MATCHER_HASH_TIMEOUT = 60.0  # seconds a worker process may take on one image before it is killed
# Archives (matchers/archives.py) are opened in the same pool: members, bytes and expansion
# ratio per archive, nesting; None: the matcher's own limits (10 000 members, 1 GiB, 200, 2).
# A member may be as large as CRAWL_MEDIA_MAXSIZE.
MATCHER_ARCHIVE_MAX_MEMBERS: int | None = None
MATCHER_ARCHIVE_MAX_BYTES: int | None = None
MATCHER_ARCHIVE_MAX_RATIO: int | None = None
MATCHER_ARCHIVE_MAX_DEPTH: int | None = None
MATCHER_ARCHIVE_TIMEOUT = 300.0  # seconds a worker process may take on one archive or video
# Videos (matchers.video.VideoLimits; None: the matcher's defaults): frames sampled per second
# (plus scene changes), frames hashed per video, pixels per frame, pixels decoded per video,
# wall-clock seconds per video (the frames hashed by then are kept).
MATCHER_VIDEO_SAMPLE_FPS: float | None = None
MATCHER_VIDEO_MAX_FRAMES: int | None = None
MATCHER_VIDEO_MAX_FRAME_PIXELS: int | None = None
MATCHER_VIDEO_MAX_DECODED_PIXELS: int | None = None
MATCHER_VIDEO_MAX_SECONDS: float | None = None
MATCHER_LISTS: list[str] = []  # names of the known lists to match (allow-lists always load)
MATCHER_RELOAD_INTERVAL = 30.0  # seconds between checks for new list versions; 0: never
# Distinct images one list entry confirms per crawl before its matches go to review;
# 0: no flood guard; None: the matcher's own limit.
MATCHER_FLOOD_LIMIT: int | None = None

STORE_REDIS_URL = ""  # empty: $HOTLINE_REDIS_URL, else the embedded server
STORE_KEY_PREFIX = ""  # empty: the store's default prefix

SAFETY_ALLOW_PRIVATE_NETWORKS = False
SAFETY_ALLOWED_NETWORKS: list[str] = []  # CIDRs reachable even when private
# No proxy from the environment (http_proxy, ...): a proxy resolves the target hosts itself, out
# of the address policy's reach (a private host by name went through one). With the policy
# closed, a crawl that turns HttpProxyMiddleware on does not start. A proxy configured here
# (http://host:port) is used, each request's host resolved and checked first (crawler.safety).
HTTPPROXY_ENABLED = False
CRAWL_PROXY = ""

# The run record: live counts and the cancel check every CRAWLRECORD_INTERVAL s (0: none);
# the origin ("scrapy" when empty) and options recorded for a run the crawl creates itself.
CRAWLRECORD_ENABLED = True
CRAWLRECORD_INTERVAL = 5.0
CRAWLRECORD_ORIGIN = ""
CRAWLRECORD_OPTIONS: dict[str, object] = {}

# Crawl health: flag a run whose error rate (failed / distinct requests) is above the maximum
# once it made the minimum of requests, or whose pages (at least the minimum) hold no image.
HEALTH_MAX_ERROR_RATE = 0.5
HEALTH_MIN_REQUESTS = 10
HEALTH_NO_IMAGES_MIN_PAGES = 5

# Distributed runs: a worker is dead after FRONTIER_LEASE s without a heartbeat (its
# requests are crawled again by the others); idle workers look for work every
# FRONTIER_POLL_INTERVAL s. FRONTIER_WORKER: this worker's id (default <host>:<pid>). A request
# whose lease expired FRONTIER_MAX_ATTEMPTS times (it killed or stalled every worker that took
# it) is given up: a dead letter of the run (`hotline runs show`, the health flag dead_letters).
FRONTIER_ENABLED = False
FRONTIER_WORKER = ""
FRONTIER_LEASE = 30.0
FRONTIER_POLL_INTERVAL = 0.25
FRONTIER_MAX_ATTEMPTS = 3
# Seconds a worker stopped by SIGINT/SIGTERM waits for its requests in flight (a stalled download
# may take DOWNLOAD_TIMEOUT) before it hands them back to the run and exits (`--stop-timeout`).
WORKER_STOP_TIMEOUT = 20.0

FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
