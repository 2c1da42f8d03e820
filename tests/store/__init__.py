"""Tests of ``store``: the Redis connection and environment, keys, streams, hash lists, runs,
schedules, crawl options and the frontier's Lua half, against the session's real redis-server."""
