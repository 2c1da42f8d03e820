"""Hashing image bodies off the reactor thread, so a large image never stalls the crawl.

Pillow and numpy release the GIL while decoding and transforming, so a small thread pool keeps
both cores busy while Twisted goes on downloading. The body is passed by reference, hashed and
dropped: nothing here copies it anywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.settings import MATCHER_THREADS as DEFAULT_THREADS
from matchers.algorithms import MAX_IMAGE_PIXELS
from matchers.digest import ImageDigest, digest_bytes

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

__all__ = ["DEFAULT_THREADS", "ImageHasher"]


class ImageHasher:
    """Runs :func:`matchers.digest.digest_bytes` in a dedicated thread pool."""

    def __init__(
        self, *, threads: int = DEFAULT_THREADS, max_pixels: int = MAX_IMAGE_PIXELS
    ) -> None:
        self.max_pixels = max_pixels
        self.pool = ThreadPool(minthreads=1, maxthreads=max(1, threads), name="hotline-hash")
        self._started = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ImageHasher:
        return cls(
            threads=crawler.settings.getint("MATCHER_THREADS", DEFAULT_THREADS),
            max_pixels=crawler.settings.getint("MATCHER_MAX_PIXELS", MAX_IMAGE_PIXELS),
        )

    def start(self) -> None:
        if not self._started:
            self.pool.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self.pool.stop()
            self._started = False

    def digest(self, body: bytes) -> Deferred[ImageDigest]:
        # The reactor is looked up on use: importing it earlier would install Twisted's
        # default reactor before Scrapy installs the one its settings ask for.
        from twisted.internet import reactor  # noqa: PLC0415 (see above)

        self.start()
        return deferToThreadPool(
            reactor,
            self.pool,
            digest_bytes,
            body,
            max_pixels=self.max_pixels,
        )
