"""The hotline spider: from reported URLs to every image their pages show, and every file.

Thin by design: it schedules requests and turns image responses into :class:`ImageItem` via the
hasher; discovery lives in :mod:`crawler.discovery`, matching and queueing in the pipelines.

Any downloaded body that is neither a page nor an image (a video, an archive, a PDF, any binary
body; :func:`matchers.sniff.sniff_file`) becomes an item too, with its MD5, SHA-1 and SHA-256
only: exact list entries match it. Such files may be up to ``CRAWL_MEDIA_MAXSIZE`` bytes, pages
and images ``DOWNLOAD_MAXSIZE``: requests that may turn out to be files carry the larger cap,
and the spider counts every body while it arrives and stops one past the cap of what its first
bytes show it to be (``crawl/too_large/<what>``).

Run it either way::

    hotline crawl https://reported.example/page
    scrapy crawl hotline -a urls=https://reported.example/page -a seeds=reported.txt
"""

from __future__ import annotations

import dataclasses
import logging
import re
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, TypeVar
from urllib.parse import urldefrag, urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import DownloadCancelledError, NotConfigured, StopDownload
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from w3lib.url import parse_data_uri

from crawler import signals as crawler_signals
from crawler.discovery import ImageRef, PageRefs, ParseBudgetExceeded, extract, extract_css
from crawler.hashing import ImageHasher
from crawler.items import ImageItem
from crawler.scope import same_site
from crawler.seeds import SeedFileError, collect_seeds
from crawler.settings import (
    CRAWL_DEPTH,
    CRAWL_HIT_DEPTH,
    CRAWL_MAX_FRAME_NESTING,
    CRAWL_MAX_FRAMES_PER_PAGE,
    CRAWL_MAX_IMAGES_PER_PAGE,
    CRAWL_MAX_LINKS_PER_PAGE,
    CRAWL_MAX_MEDIA_PER_PAGE,
    CRAWL_MAX_PAGES_PER_SEED,
    CRAWL_MAX_PROBES_PER_PAGE,
    CRAWL_MAX_STYLESHEETS_PER_PAGE,
    CRAWL_MEDIA_MAXSIZE,
    CRAWL_PARSE_TIMEOUT,
    CRAWL_SEED_GIVE_UP_PAGES,
    CRAWL_TRAP_GUARD,
)
from crawler.traps import TrapGuard, path_template, strip_session
from crawler.workerpool import HashPoolError, WorkerCrashed, WorkerFailure, bytes_only_digest
from matchers.archives import ArchiveReport
from matchers.digest import ImageDigest, exact_digest
from matchers.errors import MatcherError
from matchers.sniff import FILE_SNIFF_BYTES, FileKind, sniff_file, sniff_image
from matchers.video import FrameHashes, VideoDigest, sampled_as_video
from store.clock import now_iso
from store.runs import new_run_id

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Finish reason of a crawl stopped because no hash worker could start.
HASH_POOL_FAILED = "hash_pool_failed"
#: The decode error an image gets when hash workers died on it (or ran out of time).
WORKER_FAILED_ERROR = "corrupt"
IMAGE_PRIORITY = 10  # images before further pages: hits surface early in long crawls
SNIFF_BYTES = 32
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".heic"}
)
#: Links to these are fetched as files (``media``), on or off the site, not crawled as pages.
FILE_EXTENSIONS = frozenset(
    {
        *(".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".flv"),
        *(".3gp", ".wmv", ".ogv", ".mp3", ".m4a", ".wav", ".ogg", ".flac"),
        *(".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".pdf"),
    }
)
#: Bodies larger than this are hashed on a side thread (``hashlib`` releases the GIL).
THREAD_HASH_BYTES = 1024 * 1024
#: Pages and stylesheets larger than this are read on a thread of their own, off the reactor.
THREAD_PARSE_BYTES = 64 * 1024
#: Kinds of request whose body may be a file: they carry the file size cap.
_MAY_BE_FILE = frozenset({"page", "image", "probe", "media"})
#: Meta of one response's judgement (reset for each response; never sent to other workers).
_BODY_META = ("hotline_body", "hotline_received", "hotline_too_large")
_ENCODED = "encoded"


class Info(TypedDict):
    kind: str  # page | image | css | probe | media
    seed: str
    depth: int
    page: str
    frame: int
    embedding: str
    parent: str  # the page that referenced this URL (a seed is its own parent)
    #: The depth its links may reach (CRAWL_DEPTH, more below a hit); absent: CRAWL_DEPTH.
    limit: NotRequired[int]


#: Pages (with their links past the depth limit) kept for a hit to release them; the oldest
#: are forgotten first.
MAX_BEYOND_PAGES = 5000
#: Links past the depth limit kept per page.
MAX_BEYOND_LINKS = 200
#: Priority of a page in a section (host and first path segment) that had hits (images: 10).
HOT_SECTION_PRIORITY = 1


def section(url: str) -> str:
    """Host and first path segment: where hits cluster (``host/gallery``)."""
    parts = urlsplit(url)
    first = parts.path.lstrip("/").split("/", 1)[0]
    return f"{parts.hostname or ''}/{first}"


def _split_urls(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [u for u in re.split(r"[\s,]+", value) if u]
    return list(value)


def _extension(url: str) -> str:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return path[dot:] if dot != -1 and "/" not in path[dot:] else ""


def _looks_like_image_url(url: str) -> bool:
    return _extension(url) in IMAGE_EXTENSIONS


def _looks_like_file_url(url: str) -> bool:
    return _extension(url) in FILE_EXTENSIONS


def _body_class(head: bytes) -> str:
    """What the first bytes of a body show: ``image``, ``file`` or ``text``."""
    if sniff_image(head[:SNIFF_BYTES]) is not None:
        return "image"
    return "text" if sniff_file(head) is None else "file"


class HotlineSpider(Spider):
    name = "hotline"

    def __init__(
        self,
        urls: str | Iterable[str] | None = None,
        seeds: str | None = None,
        depth: int | str | None = None,
        max_pages: int | str | None = None,
        crawl_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._urls_arg = _split_urls(urls)
        self._seed_file = seeds
        self._depth_arg = None if depth is None else int(depth)
        self._max_pages_arg = None if max_pages is None else int(max_pages)
        self._crawl_id_arg = crawl_id
        self.pages_per_seed: Counter[str] = Counter()
        self._pages_seen: set[str] = set()
        self._images_seen: set[str] = set()
        # The first bytes of bodies not judged yet (in memory only, dropped once judged or
        # once the request is gone).
        self._heads: weakref.WeakKeyDictionary[Request, bytearray] = weakref.WeakKeyDictionary()
        self._stopping = False
        # Hit-driven crawling: pages at the depth limit with the links they could not follow,
        # depth limits raised by hits, sections with hits, seeds given up.
        self._beyond: dict[str, tuple[Info, list[str]]] = {}
        self._raised: dict[str, int] = {}
        self._page_depth: dict[str, int] = {}
        self._hot_sections: Counter[str] = Counter()
        self._seed_pages: Counter[str] = Counter()
        self._seeds_with_images: set[str] = set()
        self._gave_up: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> HotlineSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup(crawler)
        return spider

    def setup(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.depth = (
            self._depth_arg if self._depth_arg is not None else s.getint("CRAWL_DEPTH", CRAWL_DEPTH)
        )
        self.max_pages = (
            self._max_pages_arg
            if self._max_pages_arg is not None
            else s.getint("CRAWL_MAX_PAGES_PER_SEED", CRAWL_MAX_PAGES_PER_SEED)
        )
        self.max_frames = s.getint("CRAWL_MAX_FRAME_NESTING", CRAWL_MAX_FRAME_NESTING)
        self.max_probes = s.getint("CRAWL_MAX_PROBES_PER_PAGE", CRAWL_MAX_PROBES_PER_PAGE)
        self.max_media = s.getint("CRAWL_MAX_MEDIA_PER_PAGE", CRAWL_MAX_MEDIA_PER_PAGE)
        self.page_caps = {
            "images": s.getint("CRAWL_MAX_IMAGES_PER_PAGE", CRAWL_MAX_IMAGES_PER_PAGE),
            "links": s.getint("CRAWL_MAX_LINKS_PER_PAGE", CRAWL_MAX_LINKS_PER_PAGE),
            "stylesheets": s.getint(
                "CRAWL_MAX_STYLESHEETS_PER_PAGE", CRAWL_MAX_STYLESHEETS_PER_PAGE
            ),
            "frames": s.getint("CRAWL_MAX_FRAMES_PER_PAGE", CRAWL_MAX_FRAMES_PER_PAGE),
        }
        self.parse_budget = s.getfloat("CRAWL_PARSE_TIMEOUT", CRAWL_PARSE_TIMEOUT) or None
        self.hit_depth = max(0, s.getint("CRAWL_HIT_DEPTH", CRAWL_HIT_DEPTH))
        # No seed is given up in a distributed run: a worker parses only its share of a seed's
        # pages (and the frontier hands out a site's hubs, pages without images, before the
        # pages they link), so it would give up a seed whose pages showed images to another
        # worker and drop the links of the pages it parses next.
        self.give_up_pages = (
            0
            if s.getbool("FRONTIER_ENABLED")
            else max(0, s.getint("CRAWL_SEED_GIVE_UP_PAGES", CRAWL_SEED_GIVE_UP_PAGES))
        )
        # Not in a distributed run: a worker holds the pages over budget that it found, and
        # another worker may parse the page that would release them (the budgets would have to
        # live in the run's frontier).
        guard = s.getbool("CRAWL_TRAP_GUARD", CRAWL_TRAP_GUARD) and not s.getbool(
            "FRONTIER_ENABLED"
        )
        self.traps: TrapGuard[Info] | None = TrapGuard() if guard else None
        self.max_data_uri = s.getint("DOWNLOAD_MAXSIZE") or 0
        self.max_body = self.max_data_uri  # pages, stylesheets, images (0: no cap)
        self.max_file = s.getint("CRAWL_MEDIA_MAXSIZE", CRAWL_MEDIA_MAXSIZE)
        if self.max_file <= 0:
            raise NotConfigured(
                f"CRAWL_MEDIA_MAXSIZE must be a positive number of bytes: {self.max_file}"
            )
        # The cap a request that may be a file carries (Scrapy refuses a body past it).
        self.max_any = 0 if not self.max_body else max(self.max_body, self.max_file)
        self.crawl_id = self._crawl_id_arg or s.get("CRAWL_ID") or new_run_id()
        # A worker of a distributed run: the run's frontier counts the page cap for all
        # workers at once (this worker's own count would include pages others scheduled).
        self.shared_page_cap = s.getbool("FRONTIER_ENABLED")
        self.hasher = ImageHasher.from_crawler(crawler)
        crawler.signals.connect(self._on_headers_received, signal=signals.headers_received)
        crawler.signals.connect(self._on_bytes_received, signal=signals.bytes_received)
        crawler.signals.connect(self._on_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._on_closed, signal=signals.spider_closed)
        crawler.signals.connect(self._on_lists_changed, signal=crawler_signals.lists_changed)
        crawler.signals.connect(self._on_hit, signal=crawler_signals.hit_found)

    def _on_lists_changed(self, algorithms: frozenset[str]) -> None:
        """Hash only what the loaded lists can query (see :mod:`crawler.hashing`)."""
        self.hasher.use_algorithms(algorithms)
        self.crawler.stats.set_value("matcher/perceptual", ",".join(sorted(algorithms)) or "none")

    def _on_opened(self) -> None:
        self.hasher.start()  # worker processes start while the lists load

    def _on_closed(self) -> None:
        self.hasher.stop()

    def _pool_failed(self, exc: HashPoolError) -> None:
        """No image can be hashed: stop the crawl, whose finish reason says why."""
        self._inc("matcher/pool/failed")
        logger.error("%s; stopping the crawl", exc)
        engine = self.crawler.engine
        if engine is not None and not self._stopping:
            self._stopping = True
            deferred_from_coro(engine.close_spider_async(reason=HASH_POOL_FAILED))

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, count)

    # -- seeds ------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        seed_files = [self._seed_file] if self._seed_file else []
        try:
            seeds, problems = collect_seeds(self._urls_arg, seed_files)
        except SeedFileError as exc:
            logger.error("%s", exc)
            seeds, problems = collect_seeds(self._urls_arg)
        for problem in problems:
            logger.warning("skipped seed %s", problem)
        self._inc("seeds/accepted", len(seeds))
        if problems:
            self._inc("seeds/rejected", len(problems))
        if not seeds:
            logger.error("no valid seed URL: give URLs with -a urls=... or a file with -a seeds=")
        for seed in seeds:
            request = self._page_request(
                seed.url, seed=seed.url, depth=0, parent=seed.url, frame=0, embedding="seed"
            )
            if request is not None:
                yield request

    # -- hits steer the crawl ---------------------------------------------------------------

    def _limit(self, info: Info) -> int:
        """The depth this page's links may reach: its own limit, raised by a hit on it or on
        the page that linked it."""
        return max(
            info.get("limit", self.depth),
            self._raised.get(info["page"], 0),
            self._raised.get(info["parent"], 0),
        )

    def _on_hit(self, page: str, seed: str) -> None:
        """A confirmed hit on ``page``: its section goes first from now on, and the links past
        the depth limit of the page (and of the pages it linked) are followed
        ``CRAWL_HIT_DEPTH`` further."""
        hot = section(page)
        self._hot_sections[hot] += 1
        self._inc(f"crawl/hit_section/{hot}")
        if not self.hit_depth or seed in self._gave_up:
            return
        held = [p for p, (info, _) in self._beyond.items() if page in (p, info["parent"])]
        limit = max(self._raised.get(page, 0), self._page_depth.get(page, 0) + self.hit_depth)
        self._raised[page] = limit
        engine = self.crawler.engine
        for held_page in held:
            info, links = self._beyond.pop(held_page)
            if info["depth"] >= limit:
                continue
            self._inc("crawl/hit_depth_pages", len(links))
            for url in links:
                request = self._page_request(
                    url,
                    seed=info["seed"],
                    depth=info["depth"] + 1,
                    parent=held_page,
                    frame=0,
                    limit=limit,
                )
                if request is not None and engine is not None:
                    engine.crawl(request)

    def _keep_beyond(self, info: Info, links: list[str]) -> None:
        """Keep a page's links past its depth limit, for a hit on it to release them."""
        if not self.hit_depth or not links:
            return
        if len(self._beyond) >= MAX_BEYOND_PAGES:
            self._beyond.pop(next(iter(self._beyond)))
        self._beyond[info["page"]] = (info, links[:MAX_BEYOND_LINKS])

    def _seen_page(self, seed: str, shows_images: bool) -> None:
        """Count a parsed page of ``seed``; give the seed up after ``give_up_pages`` pages
        without a single image."""
        self._seed_pages[seed] += 1
        if shows_images:
            self._seeds_with_images.add(seed)
        if (
            self.give_up_pages
            and seed not in self._gave_up
            and seed not in self._seeds_with_images
            and self._seed_pages[seed] >= self.give_up_pages
        ):
            self._gave_up.add(seed)
            self._inc("crawl/seeds_given_up")
            logger.info(
                "seed %s: no image on its first %d pages; no further pages",
                seed,
                self.give_up_pages,
            )

    # -- requests ---------------------------------------------------------------------------

    def _request(self, url: str, info: Info, priority: int = 0) -> Request:
        meta: dict[str, Any] = {"hotline": info}
        if info["kind"] in _MAY_BE_FILE:
            meta["download_maxsize"] = self.max_any
        return Request(
            url,
            callback=self.parse,
            errback=self.on_error,
            meta=meta,
            priority=priority,
        )

    def _page_request(
        self,
        url: str,
        *,
        seed: str,
        depth: int,
        parent: str,
        frame: int,
        embedding: str = "link",
        limit: int | None = None,
    ) -> Request | None:
        # Navigation links repeat on every page: only a page not scheduled before counts
        # towards the cap (Scrapy's dupefilter would drop the repeat anyway). A page met again
        # under a new session id is the same page.
        plain = urldefrag(url)[0]
        key = strip_session(plain) if self.traps is not None else plain
        if key in self._pages_seen:
            if key != plain:  # the same page under another session id
                self._trap_skipped("session_id", url)
            return None
        if not self.shared_page_cap and self.pages_per_seed[seed] >= self.max_pages:
            self._inc("crawl/page_cap_reached")
            return None
        if seed in self._gave_up:
            self._inc("crawl/seed_given_up_pages")
            return None
        info = Info(
            kind="page",
            seed=seed,
            depth=depth,
            page=url,
            frame=frame,
            embedding=embedding,
            parent=parent,
        )
        if limit is not None and limit != self.depth:
            info["limit"] = limit
        self._pages_seen.add(key)
        if self.traps is not None and embedding != "seed":
            reason = self.traps.admit(url)
            if reason is not None:
                # Over its template's budget: held until a page of the template proves
                # productive (released by _parse_page), else never crawled.
                if reason != "template_budget" or self.traps.hold(url, info):
                    self._trap_skipped(reason, url)
                return None
        self.pages_per_seed[seed] += 1
        return self._page(url, info)

    def _page(self, url: str, info: Info) -> Request:
        """A page's request; pages of a section with hits go first."""
        hot = self._hot_sections and section(url) in self._hot_sections
        return self._request(url, info, priority=HOT_SECTION_PRIORITY if hot else 0)

    def _released(self, held: list[tuple[str, Info]]) -> Iterator[Request]:
        """Requests for held pages their template's budget now admits (no longer skipped)."""
        for url, info in held:
            self._trap_skipped("template_budget", url, -1)
            if not self.shared_page_cap and self.pages_per_seed[info["seed"]] >= self.max_pages:
                self._inc("crawl/page_cap_reached")
                continue
            self.pages_per_seed[info["seed"]] += 1
            yield self._page(url, info)

    def _trap_skipped(self, reason: str, url: str, count: int = 1) -> None:
        """Count a page not crawled as a trap (``count`` -1: a held page released after all),
        by reason and by its path template."""
        self._inc("crawl/trap_pages_skipped", count)
        self._inc(f"crawl/trap_pages_skipped/{reason}", count)
        self._inc(f"crawl/trap_template/{path_template(url)[0]}", count)

    def _productive(self, page: str, refs: PageRefs, seed: str) -> bool:
        """Whether a page shows something new: an image or file not seen before in this crawl,
        or a link to a new page of another path family (see :mod:`crawler.traps`)."""
        new = False
        for ref in [*refs.images, *refs.media]:
            if ref.is_data or ref.url not in self._images_seen:
                self._images_seen.add(ref.url)
                new = True
        if new:
            return True
        own = path_template(page)[1]
        return any(
            same_site(url, seed)
            and strip_session(urldefrag(url)[0]) not in self._pages_seen
            and path_template(url)[1] != own
            for url in refs.links
        )

    def _image_request(
        self, ref: ImageRef, parent: Info, page: str, kind: str = "image"
    ) -> Request:
        info = Info(
            kind=kind,
            seed=parent["seed"],
            depth=parent["depth"],
            page=page,
            frame=parent["frame"],
            embedding=ref.embedding,
            parent=page,
        )
        return self._request(ref.url, info, priority=IMAGE_PRIORITY)

    def _on_headers_received(
        self, headers: Any, body_length: object, request: Request, spider: Spider
    ) -> None:
        """A new response to a request that may be a file: start its judgement afresh (a
        redirect or a retry carries the previous response's meta) and set its cap.

        A compressed body (``Content-Encoding``) cannot be judged by its first bytes: it is
        judged once Scrapy has decompressed it, held meanwhile to the file cap for a media
        request and to the page (and image) cap for anything else, which Scrapy also applies
        to the decompressed body. So an image served gzip-encoded is hashed as a browser
        shows it (it was dropped before: an easy way to hide images from the crawler). A
        declared length over the cap is marked so that the refusal counts as ``too_large``."""
        meta = request.meta
        info = meta.get("hotline")
        if not info or info["kind"] not in _MAY_BE_FILE:
            return
        for key in _BODY_META:
            meta.pop(key, None)
        self._heads.pop(request, None)
        encoding = (headers.get(b"Content-Encoding") or b"").strip().lower()
        if encoding and encoding != b"identity":
            meta["hotline_body"] = _ENCODED
            meta["download_maxsize"] = self.max_file if info["kind"] == "media" else self.max_body
        else:
            meta["download_maxsize"] = self.max_any
        cap = meta["download_maxsize"]
        # Twisted gives an unknown length as a sentinel, not a number.
        if cap and isinstance(body_length, int) and body_length > cap:
            meta["hotline_too_large"] = "declared"

    def _on_bytes_received(self, data: bytes, request: Request, spider: Spider) -> None:
        """Judge a body by its first bytes, and count it while it arrives.

        The first :data:`~matchers.sniff.FILE_SNIFF_BYTES` bytes (kept in memory until then)
        say what the body is. An image, probe or media request whose body is text (a page)
        stops there: it was fetched for an image or a file. Every body is stopped one byte
        past its cap: ``CRAWL_MEDIA_MAXSIZE`` for a file, ``DOWNLOAD_MAXSIZE`` for an image or
        a page. A body shorter than that is judged by the callback, whole."""
        meta = request.meta
        info = meta.get("hotline")
        if not info or info["kind"] not in _MAY_BE_FILE:
            return
        received = meta.get("hotline_received", 0) + len(data)
        meta["hotline_received"] = received
        what = meta.get("hotline_body")
        if what == _ENCODED:
            return  # Scrapy holds it to the cap set with its headers
        if what is None:
            head = self._heads.setdefault(request, bytearray())
            head += data[: FILE_SNIFF_BYTES - len(head)]
            if len(head) < FILE_SNIFF_BYTES:
                return  # Scrapy's cap (the larger one) holds meanwhile
            what = _body_class(bytes(head))
            del self._heads[request]
            meta["hotline_body"] = what
            if what == "text" and info["kind"] != "page":
                raise StopDownload(fail=False)
        cap = self.max_file if what == "file" else self.max_body
        if cap and received > cap:
            meta["hotline_too_large"] = what
            raise StopDownload(fail=True)

    # -- callbacks --------------------------------------------------------------------------

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        info: Info = response.meta["hotline"]
        if sniff_image(response.body[:SNIFF_BYTES]) is not None:
            item = await self._image_item(response, info)
            if item is not None:
                yield item
            return
        kind = info["kind"]
        if kind == "css":
            async for out in self._parse_css(response, info):
                yield out
            return
        file_kind = sniff_file(response.body[:FILE_SNIFF_BYTES])
        # A page's markup is parsed even when a control byte makes it look binary; a known
        # file format served as HTML is still a file.
        if file_kind is not None and (
            not isinstance(response, HtmlResponse) or file_kind.format or kind != "page"
        ):
            async for item in self._file_items(response, info, file_kind):
                yield item
            return
        if kind in ("image", "probe"):
            self._inc("crawl/not_image")
            return
        if kind == "media":
            self._inc("crawl/not_media")
            return
        if not isinstance(response, HtmlResponse):
            self._inc("crawl/not_html")
            return
        self._inc("crawl/pages")
        async for out in self._parse_page(response, info):
            yield out

    def _capped(self, refs: PageRefs) -> PageRefs:
        """The page's references up to the per-page caps, in document order; what is left out
        is counted per kind (``crawl/page_cap/<kind>``) and the page once
        (``crawl/pages_capped``)."""
        kept = {}
        capped = False
        for kind, cap in self.page_caps.items():
            found = getattr(refs, kind)
            if cap and len(found) > cap:
                self._inc(f"crawl/page_cap/{kind}", len(found) - cap)
                capped = True
                found = found[:cap]
            kept[kind] = found
        if capped:
            self._inc("crawl/pages_capped")
        return dataclasses.replace(refs, **kept)

    async def _read_page(self, response: HtmlResponse) -> PageRefs | None:
        """The page's references, read within its CPU budget (on a thread of its own when it
        is large); ``None`` when it took longer, counted (``crawl/parse_timeout``)."""
        try:
            if len(response.body) > THREAD_PARSE_BYTES:
                return await maybe_deferred_to_future(
                    self.hasher.defer_to_thread(extract, response, self.parse_budget)
                )
            return extract(response, self.parse_budget)
        except ParseBudgetExceeded:
            self._inc("crawl/parse_timeout")
            logger.warning(
                "page %s dropped: reading it took more than %s CPU seconds (CRAWL_PARSE_TIMEOUT)",
                response.url,
                self.parse_budget,
            )
            return None

    async def _parse_page(self, response: HtmlResponse, info: Info) -> AsyncIterator[Any]:
        found = await self._read_page(response)
        if found is None:
            return
        refs = self._capped(found)
        page = response.url
        seed = info["seed"]
        self._seen_page(seed, bool(refs.images))
        self._page_depth[page] = info["depth"]
        if self.traps is not None and self._productive(page, refs, seed):
            for released in self._released(self.traps.productive(page)):
                yield released
        for ref in refs.images:
            self._inc(f"discovery/{ref.embedding}")
            if ref.is_data:
                item = await self._data_uri_item(ref, info, page)
                if item is not None:
                    yield item
            else:
                yield self._image_request(ref, info, page)
        media = 0
        for ref in refs.media:
            self._inc(f"discovery/{ref.embedding}")
            if media >= self.max_media:
                self._inc("crawl/media_cap_reached")
                continue
            media += 1
            yield self._image_request(ref, info, page, kind="media")
        for url in refs.stylesheets:
            yield self._image_request(ImageRef(url, "linked_stylesheet"), info, page, kind="css")
        if info["frame"] < self.max_frames:
            for url in refs.frames:
                request = self._page_request(
                    url,
                    seed=seed,
                    depth=info["depth"],
                    parent=page,
                    frame=info["frame"] + 1,
                    embedding="frame",
                )
                if request is not None:
                    self._inc("discovery/frame")
                    yield request
        on_site = same_site(page, seed)
        probes = 0
        limit = self._limit(info)
        beyond: list[str] = []
        for url in refs.links:
            if _looks_like_image_url(url):
                self._inc("discovery/a_href")
                yield self._image_request(ImageRef(url, "a_href"), info, page)
            elif _looks_like_file_url(url):
                self._inc("discovery/a_href_file")
                if media >= self.max_media:
                    self._inc("crawl/media_cap_reached")
                    continue
                media += 1
                yield self._image_request(ImageRef(url, "a_href"), info, page, kind="media")
            elif same_site(url, seed):
                if info["depth"] < limit:
                    request = self._page_request(
                        url, seed=seed, depth=info["depth"] + 1, parent=page, frame=0, limit=limit
                    )
                    if request is not None:
                        yield request
                else:
                    beyond.append(url)
            elif on_site and probes < self.max_probes:
                probes += 1
                yield self._image_request(ImageRef(url, "a_href"), info, page, kind="probe")
        self._keep_beyond(info, beyond)

    async def _parse_css(self, response: Response, info: Info) -> AsyncIterator[Any]:
        css = (
            response.text
            if isinstance(response, TextResponse)
            else response.body.decode("utf-8", "replace")
        )
        if len(css) > THREAD_PARSE_BYTES:
            images, imports = await maybe_deferred_to_future(
                self.hasher.defer_to_thread(extract_css, css, response.url)
            )
        else:
            images, imports = extract_css(css, response.url)
        for ref in images:
            self._inc(f"discovery/{ref.embedding}")
            if ref.is_data:
                item = await self._data_uri_item(ref, info, info["page"])
                if item is not None:
                    yield item
            else:
                yield self._image_request(ref, info, info["page"])
        for url in imports:
            yield self._image_request(
                ImageRef(url, "linked_stylesheet"), info, info["page"], kind="css"
            )

    async def _digest(self, body: bytes, url: str) -> ImageDigest | None:
        try:
            digest = await self.hasher.digest(body)
        except MatcherError as exc:
            self._inc("matcher/not_image")
            logger.info("not hashed %s: %s", url, exc)
            return None
        except WorkerCrashed as exc:
            # Its exact hashes still match an exact list entry; the image counts as corrupt.
            self._inc(f"matcher/bytes_only/{exc.reason}")
            logger.warning("image %s hashed by bytes only: %s", url, exc)
            digest = bytes_only_digest(body, WORKER_FAILED_ERROR)
        except WorkerFailure as exc:
            # A bug or a resource limit in the worker, not the image's doing: the exact
            # hashes still match; only the exception's type is logged.
            self._inc("matcher/bytes_only/failure")
            logger.error("image %s hashed by bytes only: the hash worker raised %s", url, exc)
            digest = bytes_only_digest(body, WORKER_FAILED_ERROR)
        except HashPoolError as exc:
            self._pool_failed(exc)
            return None
        self._inc("matcher/hashed")
        if digest.error:  # counted by the match pipeline (matcher/decode_error/<code>)
            logger.info("image %s hashed by bytes only: %s", url, digest.error)
        return digest

    async def _image_item(self, response: Response, info: Info) -> ImageItem | None:
        self._inc("crawl/images")
        digest = await self._digest(response.body, response.url)
        if digest is None:
            return None
        frames: tuple[FrameHashes, ...] = ()
        if sampled_as_video(digest):
            # Longer than an image's frames are looked into: sampled as a video as well.
            video = await self._open_video(response.body, response.url, digest.format)
            if video is not None:
                frames = video.frames
        return _item(response, info, digest, "image", frames=frames)

    async def _file_items(
        self, response: Response, info: Info, kind: FileKind
    ) -> AsyncIterator[ImageItem]:
        """A body that is neither a page nor an image: its exact hashes, matched against
        every list's exact entries; for an archive, then every member it holds (see
        :mod:`matchers.archives`)."""
        self._inc("crawl/files")
        self._inc(f"crawl/files/{kind.media_type}")
        body = response.body
        if kind.media_type == "video":
            video = await self._open_video(body, response.url, kind.format)
            if video is not None:
                yield _item(response, info, video.digest, "video", frames=video.frames)
                return
        if len(body) > THREAD_HASH_BYTES:
            digest = await maybe_deferred_to_future(
                self.hasher.defer_to_thread(exact_digest, body, format=kind.format, frames=0)
            )
        else:
            digest = exact_digest(body, format=kind.format, frames=0)
        yield _item(response, info, digest, kind.media_type)
        if kind.media_type != "archive":
            return
        report = await self._open_archive(body, response.url)
        if report is None:
            return
        self._inc("crawl/archive/members", len(report.members))
        if frames := sum(len(member.frames) for member in report.members):
            self._inc("crawl/video/frames", frames)
        if report.encrypted:
            self._inc("crawl/archive/encrypted", report.encrypted)
        for reason, count in sorted(report.refused.items()):
            self._inc(f"crawl/archive/refused/{reason}", count)
        if report.encrypted or report.refused:
            logger.info(
                "archive %s: %d members digested, %d encrypted, refused: %s",
                response.url,
                len(report.members),
                report.encrypted,
                ", ".join(f"{r} {n}" for r, n in sorted(report.refused.items())) or "none",
            )
        for member in report.members:
            yield _item(
                response,
                info,
                member.digest,
                "archive_member",
                member=member.path,
                container_sha256=digest.sha256,
                frames=member.frames,
            )

    async def _open_video(self, body: bytes, url: str, format: str | None) -> VideoDigest | None:
        """The video's exact hashes and its sampled frames' hashes (:mod:`matchers.video`),
        or None when no worker could sample it (the caller then keeps the exact hashes)."""
        video = await self._in_pool(self.hasher.open_video(body, format or None), "video", url)
        if video is None:
            return None
        self._inc("crawl/video/frames", len(video.frames))
        if video.digest.error:
            self._inc(f"crawl/video/decode_error/{video.digest.error}")
        if video.stopped:
            self._inc(f"crawl/video/stopped/{video.stopped}")
        if video.keyframes_only:
            self._inc("crawl/video/keyframes_only")
        return video

    async def _open_archive(self, body: bytes, url: str) -> ArchiveReport | None:
        self._inc("crawl/archives")
        return await self._in_pool(self.hasher.open_archive(body), "archive", url)

    async def _in_pool(self, work: Awaitable[T], what: str, url: str) -> T | None:
        """What the hash pool answers for a video or an archive, or None when no worker could
        read it (counted in ``crawl/<what>/failed``; the body was matched by its exact hashes
        already); a pool that cannot hash at all stops the crawl."""
        try:
            return await work
        except (WorkerCrashed, WorkerFailure, MatcherError) as exc:
            self._inc(f"crawl/{what}/failed")
            logger.warning("%s %s not read: %s", what, url, type(exc).__name__)
            return None
        except HashPoolError as exc:
            self._pool_failed(exc)
            return None

    async def _data_uri_item(self, ref: ImageRef, info: Info, page: str) -> ImageItem | None:
        if self.max_data_uri and len(ref.url) > self.max_data_uri * 4 // 3 + 1024:
            self._inc("crawl/data_uri_too_large")
            return None
        try:
            parsed = parse_data_uri(ref.url)
        except ValueError:
            self._inc("crawl/data_uri_malformed")
            return None
        if sniff_image(parsed.data[:SNIFF_BYTES]) is None:
            self._inc("crawl/not_image")
            return None
        self._inc("crawl/images")
        digest = await self._digest(parsed.data, "a data: URI on " + page)
        if digest is None:
            return None
        return ImageItem(
            url=f"data:{parsed.media_type};sha256={digest.sha256}",
            page=page,
            seed=info["seed"],
            embedding="data_uri",
            digest=digest,
            fetched_at=now_iso(),
        )

    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        too_large = None if request is None else request.meta.get("hotline_too_large")
        if (
            request is not None
            and too_large is not None
            and isinstance(failure.value, StopDownload)
        ):
            cap = self.max_file if too_large == "file" else self.max_body
            self._inc("crawl/errors/too_large")
            self._inc(f"crawl/too_large/{too_large}")
            logger.info("refused %s: a %s larger than %d bytes", request.url, too_large, cap)
        elif too_large == "declared" and isinstance(failure.value, DownloadCancelledError):
            # Scrapy refused a declared Content-Length over the request's cap.
            self._inc("crawl/errors/too_large")
            self._inc("crawl/too_large/declared")
            logger.info("refused %s: %s", getattr(request, "url", "?"), failure.value)
        else:
            self._inc(f"crawl/errors/{failure.type.__name__ if failure.type else 'unknown'}")
            logger.info("failed %s: %s", getattr(request, "url", "?"), failure.getErrorMessage())
        if request is not None:
            self.crawler.signals.send_catch_log(crawler_signals.request_failed, request=request)


def _header(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _item(
    response: Response,
    info: Info,
    digest: ImageDigest,
    media_type: str,
    *,
    member: str = "",
    container_sha256: str = "",
    frames: tuple[FrameHashes, ...] = (),
) -> ImageItem:
    headers = response.headers
    length = headers.get(b"Content-Length")
    return ImageItem(
        url=response.url,
        # An image or file reached as a page (a reported URL, a link) is reported against
        # the page that linked to it.
        page=info["parent"] if info["kind"] == "page" else info["page"],
        seed=info["seed"],
        embedding=info["embedding"],
        digest=digest,
        fetched_at=now_iso(),
        ip=None if response.ip_address is None else str(response.ip_address),
        status=response.status,
        content_type=_header(headers.get(b"Content-Type")),
        content_length=int(length) if length and length.isdigit() else None,
        server=_header(headers.get(b"Server")),
        media_type=media_type,
        member=member,
        container_sha256=container_sha256,
        frames=frames,
    )
