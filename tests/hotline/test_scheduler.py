"""The scheduler daemon on a real Redis, with an injected clock and recorded starts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from hotline.scheduler import (
    LOST_SLOT_GRACE,
    CrawlLauncher,
    RunStarter,
    RunStartError,
    Scheduler,
    StoreRunCreator,
    run_status,
    slot_run_id,
    start_now,
)
from hotline.services import Session
from store.connection import redis_from_url
from store.errors import ScheduleNotFound
from store.keys import Keys
from store.options import CrawlOptions
from store.runs import RunStore
from store.schedules import Schedule, ScheduleStore, Trigger, parse_trigger
from tests.helpers import HOST_A, HOST_B, Clock

T0 = datetime(2030, 1, 1, 0, 0, 7, tzinfo=UTC).timestamp()
EVERY = 10.0
SEEDS = [f"http://{HOST_A}/", f"http://{HOST_B}/a"]
BARRIER_TIMEOUT = 30.0


class Recorder:
    """Records (schedule name, slot) instead of crawling; hands out run ids."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, float | None]] = []
        self._lock = threading.Lock()

    def __call__(self, schedule: Schedule, slot: float | None) -> str:
        with self._lock:
            self.starts.append((schedule.name, slot))
            return f"run-{len(self.starts)}"


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(redis_client: redis.Redis, keys: Keys, clock: Clock) -> ScheduleStore:
    return ScheduleStore(redis_client, keys, clock=clock)


def _scheduler(store: ScheduleStore, recorder: Recorder, name: str = "s1") -> Scheduler:
    return Scheduler(store, recorder, identity=name)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_started_when_due_and_not_before(store: ScheduleStore, clock: Clock) -> None:
    store.add("short", Trigger(every=EVERY), SEEDS)
    recorder = Recorder()
    scheduler = _scheduler(store, recorder)
    clock.advance(EVERY - 0.5)
    assert scheduler.tick() == []
    assert recorder.starts == []
    clock.advance(0.5)
    (result,) = scheduler.tick()
    assert (result.name, result.slot, result.run_id, result.skipped) == (
        "short",
        T0 + EVERY,
        "run-1",
        0,
    )
    assert recorder.starts == [("short", T0 + EVERY)]
    assert scheduler.tick() == []  # the same slot is never started twice
    after = store.get("short")
    assert after.next_due == T0 + 2 * EVERY
    assert after.last_slot == T0 + EVERY
    assert (after.last_run_id, after.last_started_at, after.runs_started) == (
        "run-1",
        T0 + EVERY,
        1,
    )
    clock.advance(EVERY)
    scheduler.tick()
    assert recorder.starts[-1] == ("short", T0 + 2 * EVERY)
    assert store.get("short").runs_started == 2


def test_missed_ticks_start_one_run(store: ScheduleStore, clock: Clock) -> None:
    store.add("down", Trigger(every=EVERY), SEEDS)
    recorder = Recorder()
    scheduler = _scheduler(store, recorder)
    clock.advance(10 * EVERY + 3)  # the scheduler was down for ten slots
    (result,) = scheduler.tick()
    assert result.slot == T0 + EVERY  # the oldest missed slot, standing in for nine more
    assert result.skipped == 9
    assert scheduler.tick() == []
    assert recorder.starts == [("down", T0 + EVERY)]
    after = store.get("down")
    assert after.next_due > clock()
    assert after.next_due == T0 + 11 * EVERY  # still on its grid
    assert after.runs_started == 1


def test_missed_cron_ticks_start_one_run(store: ScheduleStore, clock: Clock) -> None:
    store.add("cron", parse_trigger(None, "*/5 * * * *"), SEEDS)
    recorder = Recorder()
    scheduler = _scheduler(store, recorder)
    clock.now = _ts("2030-01-01T01:02:00")
    (result,) = scheduler.tick()
    assert result.slot == _ts("2030-01-01T00:05:00")
    assert result.skipped == 11  # 00:10 .. 01:00
    assert scheduler.tick() == []
    assert store.get("cron").next_due == _ts("2030-01-01T01:05:00")


def test_two_schedulers_start_each_slot_exactly_once(
    redis_url: str, keys: Keys, clock: Clock
) -> None:
    """Four schedulers on their own clients race on the same due slots, round after round."""
    names = [f"race{i}" for i in range(5)]
    rounds = 60
    clients = [redis_from_url(redis_url) for _ in range(4)]
    try:
        stores = [ScheduleStore(c, keys, clock=clock) for c in clients]
        for name in names:
            stores[0].add(name, Trigger(every=EVERY), SEEDS)
        recorder = Recorder()
        schedulers = [Scheduler(s, recorder, identity=f"s{i}") for i, s in enumerate(stores)]
        barrier = threading.Barrier(len(schedulers) + 1, timeout=BARRIER_TIMEOUT)
        failures: list[BaseException] = []

        def worker(scheduler: Scheduler) -> None:
            try:
                for _ in range(rounds):
                    barrier.wait()  # the clock has moved: go
                    scheduler.tick()
                    barrier.wait()  # done with this round
            except BaseException as exc:
                failures.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=worker, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for _ in range(rounds):
            clock.advance(EVERY)
            barrier.wait()
            barrier.wait()
        for thread in threads:
            thread.join(BARRIER_TIMEOUT)
        assert not failures, failures
        expected = {(n, T0 + k * EVERY) for n in names for k in range(1, rounds + 1)}
        assert len(recorder.starts) == len(expected)
        assert set(recorder.starts) == expected
        assert {stores[0].get(n).runs_started for n in names} == {rounds}
    finally:
        for client in clients:
            client.close()


def test_a_lost_race_starts_nothing(redis_url: str, keys: Keys, clock: Clock) -> None:
    """The claim is a compare-and-set on the slot the scheduler saw as due."""
    other = redis_from_url(redis_url)
    try:
        first = ScheduleStore(other, keys, clock=clock)
        first.add("cas", Trigger(every=EVERY), SEEDS)
        clock.advance(EVERY)
        ((name, slot),) = first.due(clock())
        second = ScheduleStore(redis_from_url(redis_url), keys, clock=clock)
        try:
            assert second.claim(name, slot, now=clock(), claimer="b") is not None
            assert first.claim(name, slot, now=clock(), claimer="a") is None
            assert first.get(name).last_slot == slot
        finally:
            second.client.close()
    finally:
        other.close()


def test_pause_and_resume_skip_missed_slots(store: ScheduleStore, clock: Clock) -> None:
    store.add("p", Trigger(every=EVERY), SEEDS)
    recorder = Recorder()
    scheduler = _scheduler(store, recorder)
    assert store.pause("p").paused
    assert store.pause("p").paused  # idempotent
    clock.advance(5 * EVERY + 4)
    assert scheduler.tick() == []
    assert store.get("p").as_json()["next_run"] is None
    resumed = store.resume("p")
    assert not resumed.paused
    assert resumed.next_due == T0 + 6 * EVERY  # the first slot after now, on the grid
    assert scheduler.tick() == []  # the missed slots are not made up for
    assert store.resume("p") == resumed  # resuming an active schedule changes nothing
    clock.advance(6)
    (result,) = scheduler.tick()
    assert result.slot == T0 + 6 * EVERY and result.skipped == 0
    assert recorder.starts == [("p", T0 + 6 * EVERY)]


def test_remove(store: ScheduleStore, clock: Clock) -> None:
    store.add("gone", Trigger(every=EVERY), SEEDS)
    store.add("kept", Trigger(every=EVERY), SEEDS)
    store.remove("gone")
    with pytest.raises(ScheduleNotFound):
        store.remove("gone")
    with pytest.raises(ScheduleNotFound):
        store.pause("gone")
    with pytest.raises(ScheduleNotFound):
        store.resume("gone")
    recorder = Recorder()
    clock.advance(EVERY)
    _scheduler(store, recorder).tick()
    assert recorder.starts == [("kept", T0 + EVERY)]
    assert store.names() == ["kept"]
    assert not store.record_start("gone", "run-x", started_at=clock())  # never recreated
    assert not store.client.exists(store.keys.schedule("gone"))


def test_run_now_starts_at_once_and_keeps_the_next_due(store: ScheduleStore, clock: Clock) -> None:
    store.add("now", Trigger(every=EVERY), SEEDS)
    store.pause("now")
    recorder = Recorder()
    clock.advance(1)
    assert start_now(store, "now", recorder) == "run-1"
    assert recorder.starts == [("now", None)]
    after = store.get("now")
    assert after.next_due == T0 + EVERY and after.paused
    assert (after.last_run_id, after.last_started_at, after.runs_started) == ("run-1", T0 + 1, 1)
    with pytest.raises(ScheduleNotFound):
        start_now(store, "nope", recorder)


def test_a_failed_start_is_recorded_and_the_slot_not_retried(
    store: ScheduleStore, clock: Clock
) -> None:
    store.add("fails", Trigger(every=EVERY), SEEDS)

    def broken(schedule: Schedule, slot: float | None) -> str:
        raise RunStartError("cannot launch the crawl")

    scheduler = Scheduler(store, broken, identity="s1")
    clock.advance(EVERY)
    (result,) = scheduler.tick()
    assert not result.ok and "cannot launch" in result.error
    assert scheduler.tick() == []
    after = store.get("fails")
    assert after.last_start_failed and after.runs_started == 0
    assert after.next_due == T0 + 2 * EVERY
    assert "cannot launch" in (after.as_json()["last_error"] or "")
    with pytest.raises(RunStartError):
        start_now(store, "fails", broken)


def test_a_corrupt_schedule_is_reported_once(store: ScheduleStore, clock: Clock) -> None:
    store.add("bad", Trigger(every=EVERY), SEEDS)
    store.add("good", Trigger(every=EVERY), SEEDS)
    store.client.hset(store.keys.schedule("bad"), "seeds", "not json")
    recorder = Recorder()
    scheduler = _scheduler(store, recorder)
    clock.advance(EVERY)
    results = scheduler.tick()
    assert [(r.name, r.ok) for r in results] == [("bad", False), ("good", True)]
    assert "schedule 'bad' is corrupt (seeds" in results[0].error
    clock.advance(EVERY)
    assert [r.name for r in scheduler.tick()] == ["good"]


# -- the daemon loop -----------------------------------------------------------------------


def test_daemon_loop_waits_for_each_slot(store: ScheduleStore, clock: Clock) -> None:
    """The loop waits until the next slot; its wait is replaced by one that moves the clock."""
    store.add("loop", Trigger(every=EVERY), SEEDS)
    recorder = Recorder()
    scheduler = Scheduler(store, recorder, identity="s1", max_wait=4.0)
    stop = threading.Event()
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.advance(seconds)
        if len(recorder.starts) == 3:
            stop.set()
        return stop.is_set()

    stats = scheduler.run(stop, wait=wait)
    assert recorder.starts == [("loop", T0 + k * EVERY) for k in (1, 2, 3)]
    assert stats.started == 3 and stats.failed == 0
    assert max(waits) <= 4.0
    assert all(w > 0 for w in waits)


def test_daemon_once_and_stop_event(store: ScheduleStore, clock: Clock) -> None:
    store.add("o", Trigger(every=EVERY), SEEDS)
    recorder = Recorder()
    scheduler = Scheduler(store, recorder, identity="s1", max_wait=3600.0)
    clock.advance(EVERY)
    stats = scheduler.run(threading.Event(), once=True)
    assert stats.ticks == 1 and stats.started == 1
    stop = threading.Event()
    waiting = threading.Event()
    results: list[Any] = []

    def wait(seconds: float) -> bool:
        waiting.set()
        return stop.wait(seconds)  # a real wait, ended by the event

    thread = threading.Thread(target=lambda: results.append(scheduler.run(stop, wait=wait)))
    thread.start()
    assert waiting.wait(BARRIER_TIMEOUT)
    stop.set()
    thread.join(BARRIER_TIMEOUT)
    assert not thread.is_alive()
    assert results[0].started == 0


# -- starting a run ------------------------------------------------------------------------


def test_run_starter_creates_the_run_then_launches_it(store: ScheduleStore) -> None:
    schedule = store.add("start", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1))
    created: list[dict[str, Any]] = []
    launched: list[str] = []

    def create_run(
        *, seeds: list[str], options: CrawlOptions, origin: str, run_id: str | None = None
    ) -> str:
        created.append({"seeds": seeds, "options": options, "origin": origin, "id": run_id})
        return run_id or "20300101T000099Z-fedcba"

    starter = RunStarter(create_run, launched.append)
    first = starter(schedule, T0 + EVERY)
    # A slot's run has one id, whoever starts it and however often.
    assert first == slot_run_id("start", T0 + EVERY)
    assert first.startswith("20300101T000017Z-")
    assert created == [
        {
            "seeds": SEEDS,
            "options": CrawlOptions(depth=1),
            "origin": "schedule:start@2030-01-01T00:00:17Z",
            "id": first,
        }
    ]
    assert launched == [first]
    assert starter(schedule, None) == "20300101T000099Z-fedcba"
    assert created[-1]["origin"] == "schedule:start@manual"
    assert created[-1]["id"] is None
    assert slot_run_id("other", T0 + EVERY) != first


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[CrawlLauncher]:
    command = (sys.executable, "-c", "import sys; print('crawling run', sys.argv[1])")
    launcher = CrawlLauncher(tmp_path / "runs", command=command)
    yield launcher
    for child in launcher._children:
        child.wait(BARRIER_TIMEOUT)


def test_crawl_launcher_logs_under_the_data_dir(launcher: CrawlLauncher, tmp_path: Path) -> None:
    launcher("20300101T000017Z-abcdef")
    (child,) = launcher._children
    assert child.wait(BARRIER_TIMEOUT) == 0
    log = tmp_path / "runs" / "20300101T000017Z-abcdef.log"
    assert log.read_text() == "crawling run 20300101T000017Z-abcdef\n"
    launcher.reap()
    assert launcher._children == []
    with pytest.raises(RunStartError, match="not safe"):
        launcher("../escape")


def test_scheduled_runs_are_queued_run_records(
    redis_client: redis.Redis, keys: Keys, store: ScheduleStore, clock: Clock
) -> None:
    session = Session(redis_client, "unused://", keys)
    store.add("records", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1))
    launched: list[str] = []
    scheduler = Scheduler(store, RunStarter(StoreRunCreator(session), launched.append))
    clock.advance(EVERY)
    (result,) = scheduler.tick()
    assert launched == [result.run_id]
    record = RunStore(redis_client, keys).get(result.run_id)
    assert (record.status, record.origin) == ("queued", "schedule:records@2030-01-01T00:00:17Z")
    assert list(record.seeds) == SEEDS
    assert run_status(session, result.run_id) == "queued"
    assert run_status(session, "nope") is None


def test_a_distributed_schedules_runs_are_offered_to_the_workers_not_launched(
    redis_client: redis.Redis, keys: Keys, store: ScheduleStore, clock: Clock
) -> None:
    session = Session(redis_client, "unused://", keys)
    store.add("shared", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1, distributed=True))
    store.add("local", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1))
    launched: list[str] = []
    scheduler = Scheduler(store, RunStarter(StoreRunCreator(session), launched.append))
    clock.advance(EVERY)
    results = {r.name: r for r in scheduler.tick()}
    assert launched == [results["local"].run_id]  # the other one is the workers' to crawl
    runs = RunStore(redis_client, keys)
    assert runs.distributed() == [results["shared"].run_id]
    record = runs.get(results["shared"].run_id)
    assert (record.status, record.distributed) == ("queued", True)
    assert runs.get(results["local"].run_id).distributed is False


def test_a_slot_claimed_by_a_scheduler_that_died_is_started_once_by_another(
    redis_client: redis.Redis, keys: Keys, store: ScheduleStore, clock: Clock
) -> None:
    session = Session(redis_client, "unused://", keys)
    store.add("orphan", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1))
    clock.advance(EVERY)
    [(name, slot)] = store.due(clock())
    # A scheduler claims the slot and dies before it creates the run.
    assert store.claim(name, slot, now=clock(), claimer="dead") is not None
    launched: list[str] = []
    survivor = Scheduler(store, RunStarter(StoreRunCreator(session), launched.append))
    assert survivor.tick() == []  # within the grace period: the claimer may still be at it
    clock.advance(LOST_SLOT_GRACE)
    results = [r for r in survivor.tick() if r.slot == slot]
    assert [(r.name, r.ok) for r in results] == [("orphan", True)]
    assert launched[0] == slot_run_id("orphan", slot)
    assert RunStore(redis_client, keys).get(launched[0]).status == "queued"
    clock.advance(LOST_SLOT_GRACE)
    assert [r for r in survivor.tick() if r.slot == slot] == []


def test_a_lost_slot_whose_run_exists_is_not_created_twice(
    redis_client: redis.Redis, keys: Keys, store: ScheduleStore, clock: Clock
) -> None:
    session = Session(redis_client, "unused://", keys)
    store.add("half", Trigger(every=EVERY), SEEDS, CrawlOptions(depth=1))
    clock.advance(EVERY)
    [(name, slot)] = store.due(clock())
    store.claim(name, slot, now=clock(), claimer="dead")
    # The dead scheduler had created the run (and maybe launched it) before dying.
    runs = RunStore(redis_client, keys)
    runs.create(seeds=SEEDS, options={"depth": 1}, origin="x", run_id=slot_run_id(name, slot))
    before = len(runs.ids())
    launched: list[str] = []
    clock.advance(LOST_SLOT_GRACE)
    Scheduler(store, RunStarter(StoreRunCreator(session), launched.append)).tick()
    # The lost slot is launched again under its one id (harmless: only a queued run starts);
    # the slots due meanwhile get their own runs. No second record for the lost slot.
    assert launched[0] == slot_run_id(name, slot)
    assert len(runs.ids()) == before + len(launched) - 1
