"""The one place that makes Redis clients.

Everything that talks to Redis gets its client from :func:`redis_from_url`, so tests can
point the whole project at a real local server by URL. Supported URLs (redis-py syntax)::

    redis://[user:password@]host:port/db
    rediss://host:port/db?ssl_ca_certs=/path/ca.crt&ssl_cert_reqs=required
    unix:///path/to/redis.sock?db=N

Query-string options (``ssl_*``, ``socket_timeout``, ``db``, ...) override the defaults here.

With no Redis configured (``HOTLINE_REDIS_URL``, read by :mod:`store.environment`), hotline
runs an embedded server on a unix socket under the user's data directory; where that socket is
lives here (:func:`embedded_socket_path`, :func:`default_url`), because the crawler
(``scrapy crawl``) must find the same socket and may not import ``hotline``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from store.environment import default_data_dir
from store.errors import InvalidRedisUrl, RedisUnavailable
from store.text import one_line

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "HEALTH_CHECK_INTERVAL",
    "PROBE_TIMEOUT",
    "default_url",
    "embedded_socket_path",
    "embedded_url",
    "mask_url",
    "redis_from_url",
]

#: Seconds allowed for connecting and for each socket read/write.
DEFAULT_TIMEOUT = 10.0
#: Retries of a command after a connection error or timeout (exponential backoff with jitter).
DEFAULT_RETRIES = 3
RETRY_BACKOFF_BASE = 0.1
RETRY_BACKOFF_CAP = 2.0
#: Seconds a pooled connection may sit idle before it is PINGed on its next use.
HEALTH_CHECK_INTERVAL = 30
#: Seconds the first PING (connect and answer) may take, once, without retries: a server that
#: accepts connections but never answers is an error within seconds (with the retries of every
#: layer it took minutes), and a slow one later still gets ``timeout`` and the retries.
PROBE_TIMEOUT = 5.0
CLIENT_NAME = "hotline-crawler"
EMBEDDED_SUBDIR = "redis"
EMBEDDED_SOCKET_NAME = "redis.sock"
MASK = "***"

_PASSWORD_QUERY = re.compile(r"(?i)(^|&)(password=)[^&]*")
_USERINFO_PASSWORD = re.compile(r":[^@/]*@")


def default_url(env: Mapping[str, str] | None = None) -> str:
    """``unix://`` URL of the embedded Redis under the data directory
    (:func:`store.environment.default_data_dir` of ``env``, default ``os.environ``)."""
    return embedded_url(default_data_dir(env))


def embedded_socket_path(data_dir: Path) -> Path:
    """Unix socket of the embedded Redis that lives under ``data_dir`` (made absolute)."""
    return data_dir.absolute() / EMBEDDED_SUBDIR / EMBEDDED_SOCKET_NAME


def embedded_url(data_dir: Path) -> str:
    """``unix://`` URL of the embedded Redis that lives under ``data_dir`` (path %-quoted)."""
    return f"unix://{quote(str(embedded_socket_path(data_dir)))}"


def mask_url(url: str) -> str:
    """Return ``url`` with any password (userinfo or ``?password=``) replaced by ``***``."""
    if "://" not in url:  # not a URL redis-py accepts; mask anything shaped like user:pw@
        return _USERINFO_PASSWORD.sub(f":{MASK}@", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{host}"
    query = _PASSWORD_QUERY.sub(rf"\1\2{MASK}", parts.query)
    # Rebuilt by hand: urlunsplit drops the empty authority of unix:///path.
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        masked += f"?{query}"
    if parts.fragment:
        masked += f"#{parts.fragment}"
    return masked


def redis_from_url(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES
) -> redis.Redis:
    """Return a client for ``url`` after checking with PING that the server answers (within
    :data:`PROBE_TIMEOUT` seconds, once).

    The client returns ``bytes`` (``decode_responses=False``), health-checks idle pooled
    connections, and uses ``timeout`` for connecting and for socket reads/writes.
    ``retries`` is how often a command is retried after a connection error or timeout.

    Raises :class:`~store.errors.InvalidRedisUrl` (a :class:`~store.errors.RedisUnavailable`;
    one line, password masked) if the URL is malformed, ``RedisUnavailable`` if the PING
    fails (refused, timeout, TLS, authentication, loading, ...).
    """
    shown = mask_url(url)
    retry = Retry(ExponentialWithJitterBackoff(RETRY_BACKOFF_BASE, RETRY_BACKOFF_CAP), retries)
    probe_timeout = min(timeout, PROBE_TIMEOUT)
    try:
        client = _client(url, timeout, retry)
        probe = _client(url, probe_timeout, Retry(ExponentialWithJitterBackoff(), 0))
    except ValueError as exc:
        raise InvalidRedisUrl(
            f"invalid Redis URL {shown}: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    try:
        probe.ping()
    # TypeError: redis-py passes unknown query-string options to the connection class.
    except (redis.RedisError, OSError, ValueError, TypeError) as exc:
        client.close()
        raise RedisUnavailable(
            f"cannot use Redis at {shown}: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    finally:
        probe.close()
    return client


def _client(url: str, timeout: float, retry: Retry) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        client_name=CLIENT_NAME,
        retry=retry,
    )
