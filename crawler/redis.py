"""The crawl's access to Redis: which server and key prefix a crawl uses, and its clients.

Every Redis access of a crawl resolves its server and key prefix, and opens its client, here:
the pipelines (the known lists, the hit and review queues), the run record
(:mod:`crawler.extensions`) and the distributed frontier (:mod:`crawler.frontier`). No other
crawler module opens a connection. Two settings choose server and prefix (``STORE_*``: they
serve every access to the shared state of :mod:`store`, and no Scrapy or scrapy-redis
setting starts so; scrapy-redis reads ``REDIS_*`` itself):

* ``STORE_REDIS_URL``   the server; empty: ``$HOTLINE_REDIS_URL``, else the embedded server's
                        socket under the data directory
* ``STORE_KEY_PREFIX``  the prefix of every key; empty: :data:`store.keys.DEFAULT_PREFIX`

``HITS_REDIS_URL`` and ``HITS_KEY_PREFIX``, their names from when they served the hit queue
only, still work as aliases; the new name wins when both are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from store import environment
from store.connection import default_url, redis_from_url
from store.keys import DEFAULT_PREFIX, Keys

if TYPE_CHECKING:
    import redis
    from scrapy.settings import BaseSettings

URL_SETTING: Final = "STORE_REDIS_URL"
PREFIX_SETTING: Final = "STORE_KEY_PREFIX"
#: Setting -> its former name, still read when the setting itself is not set.
ALIASES: Final[Mapping[str, str]] = {
    URL_SETTING: "HITS_REDIS_URL",
    PREFIX_SETTING: "HITS_KEY_PREFIX",
}


def _setting(settings: BaseSettings, name: str) -> str:
    """``name``'s value, else its alias's; empty when neither is set."""
    return str(settings.get(name) or settings.get(ALIASES[name]) or "")


def redis_url_from(settings: BaseSettings) -> str:
    """``STORE_REDIS_URL``, else ``$HOTLINE_REDIS_URL``, else the embedded server's socket."""
    return _setting(settings, URL_SETTING) or environment.redis_url() or default_url()


def keys_from(settings: BaseSettings) -> Keys:
    """The crawl's key names, under ``STORE_KEY_PREFIX`` (empty: the store's default)."""
    return Keys(_setting(settings, PREFIX_SETTING) or DEFAULT_PREFIX)


def connect(url: str) -> redis.Redis:
    """A client of the Redis at ``url``, checked with PING: the project's one client factory,
    :func:`store.connection.redis_from_url`, with its timeouts and retries (raises
    :class:`store.errors.RedisUnavailable`)."""
    return redis_from_url(url)


def client_from(settings: BaseSettings) -> redis.Redis:
    """A client of the crawl's Redis (:func:`redis_url_from`, :func:`connect`)."""
    return connect(redis_url_from(settings))
