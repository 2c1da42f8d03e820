"""The skeleton every Redis-backed store shares: a client, the key names, a clock, Lua
scripts registered once, and replies decoded in one way.

A store subclass names its scripts in :attr:`RedisStore.SCRIPTS` (name -> Lua source) and
calls them with :meth:`RedisStore.script`; redis-py sends each script's SHA and loads the
source only when the server does not know it yet, so a restarted Redis needs nothing done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

import redis

from store.keys import Keys
from store.text import text

__all__ = ["Clock", "RedisStore", "chunks", "decode_hash", "json_field"]

#: A source of unix seconds (``time.time``; a test passes a settable clock).
Clock = Callable[[], float]


def decode_hash(raw: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    """An ``HGETALL`` reply as text keys and values."""
    return {text(k): text(v) for k, v in raw.items()}


def json_field(raw: str | None, default: Any) -> Any:
    """A JSON value stored as text, or ``default`` when it is missing or not JSON."""
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size`` (one pipeline round trip each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RedisStore:
    """Base of the stores: ``client`` (bytes replies), ``keys`` and ``clock``."""

    #: Lua scripts of the store, by name; registered once per instance.
    SCRIPTS: ClassVar[Mapping[str, str]] = {}

    def __init__(self, client: redis.Redis, keys: Keys, *, clock: Clock = time.time) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self._scripts = {name: client.register_script(src) for name, src in self.SCRIPTS.items()}

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run the registered script ``name`` (raw reply: decode with :func:`text`)."""
        return self._scripts[name](keys=list(keys), args=list(args))

    def read_hash(self, key: str) -> dict[str, str]:
        """``HGETALL key`` as text (empty when the key does not exist)."""
        return decode_hash(cast("dict[bytes, bytes]", self.client.hgetall(key)))

    def read_text(self, key: str) -> str | None:
        """``GET key`` as text, ``None`` when missing."""
        raw = cast("bytes | None", self.client.get(key))
        return None if raw is None else text(raw)

    def members(self, key: str, *, newest_first: bool = False) -> list[str]:
        """Every member of the sorted set ``key`` as text, by score."""
        if newest_first:
            raw = cast("list[bytes]", self.client.zrevrange(key, 0, -1))
        else:
            raw = cast("list[bytes]", self.client.zrange(key, 0, -1))
        return [text(m) for m in raw]
