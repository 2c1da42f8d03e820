"""The store skeleton against a real redis-server: scripts registered once, replies decoded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import redis

from store.base import RedisStore, chunks, decode_hash, json_field
from store.keys import Keys


class CounterStore(RedisStore):
    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "bump": "return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])",
    }


def test_scripts_run_and_survive_a_script_flush(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = CounterStore(redis_client, Keys(redis_prefix), clock=lambda: 42.0)
    key = f"{redis_prefix}counter"
    assert store.script("bump", [key], ["n", 2]) == 2
    redis_client.script_flush()  # a restarted server knows no script: it is loaded again
    assert store.script("bump", [key], ["n", 3]) == 5
    assert store.read_hash(key) == {"n": "5"}
    assert store.clock() == 42.0


def test_reads_decode_replies(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisStore(redis_client, Keys(redis_prefix))
    zset = f"{redis_prefix}z"
    redis_client.zadd(zset, {"b": 2, "a": 1, "c": 3})
    assert store.members(zset) == ["a", "b", "c"]
    assert store.members(zset, newest_first=True) == ["c", "b", "a"]
    assert store.read_text(f"{redis_prefix}missing") is None
    redis_client.set(f"{redis_prefix}s", "é".encode())
    assert store.read_text(f"{redis_prefix}s") == "é"
    assert store.read_hash(f"{redis_prefix}missing") == {}


def test_helpers() -> None:
    # A reply may mix bytes and text keys (decode_responses differs between clients).
    mixed = {b"a": b"1", "b": "2"}
    assert decode_hash(mixed) == {"a": "1", "b": "2"}  # type: ignore[arg-type]
    assert json_field('{"x": 1}', None) == {"x": 1}
    assert json_field("not json", []) == []
    assert json_field(None, 0) == 0
    assert [list(c) for c in chunks(["a", "b", "c", "d", "e"], 2)] == [
        ["a", "b"],
        ["c", "d"],
        ["e"],
    ]
