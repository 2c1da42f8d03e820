"""Schedules in Redis: triggers (interval and cron), their one-line errors, the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from store.errors import ScheduleError, ScheduleExists, ScheduleNotFound
from store.keys import Keys
from store.options import CrawlOptions
from store.schedules import ScheduleStore, Trigger, parse_trigger
from tests.helpers import HOST_A, HOST_B, Clock

T0 = datetime(2030, 1, 1, 0, 0, 7, tzinfo=UTC).timestamp()
EVERY = 10.0
SEEDS = [f"http://{HOST_A}/", f"http://{HOST_B}/a"]


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str) -> ScheduleStore:
    return ScheduleStore(redis_client, Keys(redis_prefix), clock=Clock(T0))


# -- triggers ------------------------------------------------------------------------------


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", "2030-01-01T00:00:07", "2030-01-01T00:05:00"),
        ("*/5 * * * *", "2030-01-01T00:05:00", "2030-01-01T00:10:00"),  # strictly after
        ("*/5 * * * *", "2030-01-01T23:59:59", "2030-01-02T00:00:00"),
        ("0 */6 * * *", "2030-01-01T06:00:00", "2030-01-01T12:00:00"),
        ("30 2 * * 1", "2030-01-01T00:00:00", "2030-01-07T02:30:00"),  # next Monday, UTC
        ("@hourly", "2030-01-01T10:59:59", "2030-01-01T11:00:00"),
    ],
)
def test_cron_next_times(expression: str, after: str, expected: str) -> None:
    trigger = parse_trigger(None, expression)
    assert trigger.next_after(_ts(after), anchor=0.0) == _ts(expected)


def test_cron_counts_missed_slots() -> None:
    trigger = parse_trigger(None, "*/5 * * * *")
    start = _ts("2030-01-01T00:00:00")
    assert trigger.slots_between(start, start + 3600) == 12
    assert trigger.slots_between(start, start) == 0


def test_interval_slots_stay_on_the_grid_it_was_added_on() -> None:
    trigger = parse_trigger("10s", None, min_interval=1)
    assert trigger.next_after(T0, anchor=T0) == T0 + 10
    assert trigger.next_after(T0 + 10, anchor=T0) == T0 + 20  # strictly after
    assert trigger.next_after(T0 + 95, anchor=T0) == T0 + 100
    assert trigger.next_after(T0 - 25, anchor=T0) == T0 - 20
    assert trigger.slots_between(T0, T0 + 95) == 9
    assert trigger.describe() == "every 10s"
    assert parse_trigger("6h", None).describe() == "every 6h"
    assert parse_trigger("90m", None).describe() == "every 90m"


@pytest.mark.parametrize(
    ("every", "cron", "message"),
    [
        (None, None, "exactly one of --every"),
        ("6h", "0 * * * *", "exactly one of --every"),
        ("soon", None, "--every 'soon'"),
        ("-5m", None, "--every '-5m'"),
        ("30s", None, "shorter than the minimum of 1m"),
        (None, "61 * * * *", "--cron '61 * * * *': bad minute field '61'"),
        (None, "0 25 * * *", "bad hour field '25'"),
        (None, "0 0 * 13 *", "bad month field '13'"),
        (None, "0 0 * * funday", "bad day of week field 'funday'"),
        (None, "*/0 * * * *", "bad minute field '*/0'"),
        (None, "* * * *", "expected 5 fields"),
        (None, "* * * * * *", "expected 5 fields"),  # no seconds field
        (None, "0 0 30 2 *", "--cron '0 0 30 2 *'"),  # valid fields, never due
        (None, "@sometimes", "--cron '@sometimes'"),
    ],
)
def test_bad_triggers_are_one_line_errors(
    every: str | None, cron: str | None, message: str
) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_trigger(every, cron)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text


# -- the store -----------------------------------------------------------------------------


def test_a_schedule_whose_stored_options_lack_keys_still_reads(store: ScheduleStore) -> None:
    store.add("older", Trigger(every=EVERY), SEEDS)
    store.client.hset(store.keys.schedule("older"), "options", '{"depth": 1}')
    assert store.get("older").options == CrawlOptions(depth=1)
    store.client.hset(store.keys.schedule("older"), "options", '{"depth": 1, "speed": 2}')
    with pytest.raises(ScheduleError, match="options: unknown speed"):
        store.get("older")


def test_add_get_list_and_bad_names(store: ScheduleStore) -> None:
    added = store.add("weekly.b", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=2))
    store.add("a-first", parse_trigger(None, "*/5 * * * *"), SEEDS[:1])
    assert added.next_due == T0 + EVERY
    got = store.get("weekly.b")
    assert got == added
    assert [s.name for s in store.all()] == ["a-first", "weekly.b"]
    assert store.get("a-first").next_due == _ts("2030-01-01T00:05:00")
    data = got.as_json()
    assert data["seeds"] == SEEDS and data["options"] == CrawlOptions(depth=2).as_dict()
    assert data["options"]["depth"] == 2
    assert data["next_run"] == "2030-01-01T00:00:17Z" and data["paused"] is False
    with pytest.raises(ScheduleExists):
        store.add("weekly.b", Trigger(every=EVERY), SEEDS)
    for bad in ("", "-x", "a b", "x" * 65, "a/b", "é"):
        with pytest.raises(ScheduleError, match="invalid schedule name"):
            store.add(bad, Trigger(every=EVERY), SEEDS)
    with pytest.raises(ScheduleNotFound):
        store.get("nope")
