"""The shared frontier of distributed runs on a real Redis: leasing, acknowledgement, the
shared dupefilter and page cap, dead workers' requests put back, the drained check, the end
of a run; and the run store's side of distributed runs (joining, counts summed per worker)."""

from __future__ import annotations

import threading

import pytest
import redis

from store.connection import redis_from_url
from store.errors import RunStateError
from store.frontier import (
    ADDED,
    CAPPED,
    DUPLICATE,
    ENDED,
    Frontier,
    end_abandoned_cancel,
    recorded_lease,
)
from store.keys import Keys
from store.runs import RunStats, RunStore
from tests.helpers import Clock

LEASE = 30.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


@pytest.fixture
def store(redis_client: redis.Redis, keys: Keys, clock: Clock) -> RunStore:
    return RunStore(redis_client, keys, clock=clock)


@pytest.fixture
def run_id(store: RunStore) -> str:
    """A distributed run, joined (running)."""
    run_id = store.create(seeds=["http://a.example/"], options={}, origin="cli", distributed=True)
    store.join(run_id)
    return run_id


@pytest.fixture
def frontier(redis_client: redis.Redis, keys: Keys, run_id: str, clock: Clock) -> Frontier:
    return Frontier(redis_client, keys, run_id, clock=clock)


def test_requests_come_out_by_priority_and_stay_leased_until_acked(
    frontier: Frontier, redis_client: redis.Redis, keys: Keys, run_id: str
) -> None:
    assert frontier.push(b"low", 0.0, fingerprint="f-low") == ADDED
    assert frontier.push(b"high", -10.0, fingerprint="f-high") == ADDED
    assert len(frontier) == 2
    assert frontier.pop("w1") == (b"high", -10.0)
    assert frontier.pop("w2") == (b"low", 0.0)
    assert frontier.pop("w1") is None
    assert len(frontier) == 0
    assert frontier.in_flight() == {"w1": 1, "w2": 1}
    frontier.ack("w1", b"high")
    assert frontier.in_flight() == {"w1": 0, "w2": 1}
    assert redis_client.hkeys(keys.frontier_inflight(run_id, "w2")) == [b"low"]


def test_the_dupefilter_and_the_page_cap_are_shared(frontier: Frontier) -> None:
    assert frontier.push(b"a", 0.0, fingerprint="fa") == ADDED
    assert frontier.push(b"a-again", 0.0, fingerprint="fa") == DUPLICATE
    assert frontier.push(b"unfiltered", 0.0) == ADDED  # dont_filter: no fingerprint
    assert frontier.push(b"unfiltered", 0.0) == ADDED
    seed = "http://a.example/"
    for n in range(3):
        assert frontier.push(b"p%d" % n, 0.0, fingerprint=f"p{n}", seed=seed, page_cap=3) == ADDED
    assert frontier.push(b"p3", 0.0, fingerprint="p3", seed=seed, page_cap=3) == CAPPED
    other = "http://b.example/"
    assert frontier.push(b"q0", 0.0, fingerprint="q0", seed=other, page_cap=3) == ADDED
    # a duplicate page does not use up the cap
    assert frontier.push(b"q0", 0.0, fingerprint="q0", seed=other, page_cap=1) == DUPLICATE
    assert len(frontier) == 6


def test_a_silent_workers_requests_go_back_after_the_lease(
    frontier: Frontier, clock: Clock
) -> None:
    for n in range(3):
        frontier.push(b"r%d" % n, float(n), fingerprint=f"r{n}")
    assert frontier.pop("doomed") is not None
    assert frontier.pop("doomed") is not None
    assert frontier.pop("alive") is not None
    clock.now += LEASE  # exactly the lease: not yet dead
    frontier.heartbeat("alive")
    assert frontier.drain(LEASE).state == "busy"
    assert frontier.in_flight() == {"doomed": 2, "alive": 1}

    clock.now += 0.5  # one past it
    drain = frontier.drain(LEASE)
    assert (drain.state, drain.reclaimed) == ("busy", 2)
    assert frontier.in_flight() == {"alive": 1}
    leased = [frontier.pop("alive"), frontier.pop("alive")]
    assert sorted(popped[0] for popped in leased if popped) == [b"r0", b"r1"]


def test_a_request_whose_lease_expired_max_attempts_times_is_a_dead_letter(
    frontier: Frontier, clock: Clock, redis_client: redis.Redis, keys: Keys, run_id: str
) -> None:
    member = b'{"meta":{},"url":"http://a.example/stalls"}'
    frontier.push(member, 0.0, fingerprint="stalls")
    frontier.push(b'{"url":"http://a.example/fine"}', 1.0, fingerprint="fine")
    for attempt in (1, 2):
        assert frontier.pop(f"w{attempt}") == (member, 0.0)
        clock.now += LEASE + 1
        drain = frontier.drain(LEASE, max_attempts=3)
        assert (drain.reclaimed, drain.dead, drain.alive) == (1, 0, 0)
    assert frontier.dead_letters() == []
    assert frontier.pop("w3") == (member, 0.0)
    clock.now += LEASE + 1
    drain = frontier.drain(LEASE, max_attempts=3)
    assert (drain.state, drain.reclaimed, drain.dead) == ("busy", 0, 1)  # "fine" is pending
    (letter,) = frontier.dead_letters()
    assert (letter.url, letter.reason, letter.attempts, letter.worker) == (
        "http://a.example/stalls",
        "lease_expired",
        3,
        "w3",
    )
    assert frontier.pop("w4") == (b'{"url":"http://a.example/fine"}', 1.0)  # not the dead one
    frontier.ack("w4", b'{"url":"http://a.example/fine"}')
    assert frontier.drain(LEASE).state == "drained"  # a dead letter is not pending
    frontier.clear()
    assert redis_client.hlen(keys.frontier_dead(run_id)) == 1  # kept with the run
    assert not redis_client.exists(keys.frontier_attempts(run_id))


def test_a_release_on_stop_is_no_failed_attempt(frontier: Frontier, clock: Clock) -> None:
    frontier.push(b'{"url":"http://a.example/x"}', 0.0, fingerprint="x")
    for n in range(5):
        assert frontier.pop(f"w{n}") is not None
        assert frontier.release(f"w{n}") == 1
    assert frontier.dead_letters() == [] and len(frontier) == 1


def test_a_cancelled_run_whose_workers_all_died_is_ended(
    frontier: Frontier, store: RunStore, run_id: str, clock: Clock
) -> None:
    frontier.push(b'{"url":"http://a.example/x"}', 0.0, fingerprint="x")
    assert frontier.pop("doomed") is not None
    assert not end_abandoned_cancel(store, run_id, LEASE)  # no cancel asked
    assert store.request_cancel(run_id)
    assert not end_abandoned_cancel(store, run_id, LEASE)  # its worker may still stop it
    assert store.get(run_id).status == "running"
    clock.now += LEASE + 1
    frontier.heartbeat("alive")  # a live worker in the run stops it itself
    assert not end_abandoned_cancel(store, run_id, LEASE)
    clock.now += LEASE + 1
    assert end_abandoned_cancel(store, run_id, LEASE)
    record = store.get(run_id)
    assert (record.status, record.reason) == ("cancelled", "cancelled")
    assert store.distributed() == []
    assert not end_abandoned_cancel(store, run_id, LEASE)  # ended: nothing more to do


def test_the_lease_of_a_run_is_its_override_or_the_default(store: RunStore) -> None:
    def lease_of(overrides: dict[str, str]) -> float:
        run_id = store.create(
            seeds=["http://a.example/"], options={"overrides": overrides}, origin="cli"
        )
        return recorded_lease(store.get(run_id), 30.0)

    assert lease_of({"FRONTIER_LEASE": "1.5"}) == 1.5
    assert lease_of({}) == 30.0
    assert lease_of({"FRONTIER_LEASE": "soon"}) == 30.0
    assert lease_of({"FRONTIER_LEASE": "-1"}) == 30.0
    assert lease_of({"FRONTIER_LEASE": "inf"}) == 30.0


def test_drained_only_when_nothing_is_pending_or_in_flight(frontier: Frontier) -> None:
    assert frontier.drain(LEASE).state == "drained"  # nothing pushed yet
    frontier.push(b"x", 0.0, fingerprint="x")
    assert frontier.drain(LEASE).state == "busy"  # pending
    popped = frontier.pop("w1")
    assert popped is not None
    assert frontier.drain(LEASE).state == "busy"  # in flight
    frontier.ack("w1", popped[0])
    assert frontier.drain(LEASE).state == "drained"


def test_a_stopping_worker_puts_its_requests_back_at_once(frontier: Frontier) -> None:
    frontier.push(b"x", -5.0, fingerprint="x")
    frontier.push(b"y", 0.0, fingerprint="y")
    assert frontier.pop("w1") == (b"x", -5.0)
    assert frontier.release("w1") == 1
    assert frontier.in_flight() == {}
    assert frontier.pop("w2") == (b"x", -5.0)  # with its priority


def test_once_the_run_ended_nothing_is_added_or_taken_and_clear_removes_every_key(
    frontier: Frontier,
    store: RunStore,
    run_id: str,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    frontier.push(b"x", 0.0, fingerprint="x", seed="s", page_cap=5)
    frontier.push(b"y", 0.0, fingerprint="y")
    assert frontier.pop("w1") is not None
    store.finish(run_id, "cancelled", "cancelled", RunStats())
    assert frontier.push(b"z", 0.0, fingerprint="z") == ENDED
    assert frontier.pop("w1") is None
    assert frontier.heartbeat("w1") is False
    assert frontier.drain(LEASE).state == "ended"
    frontier.clear()
    left = sorted(k.decode() for k in redis_client.scan_iter(match=f"{keys.crawl(run_id)}:*"))
    assert left == []
    assert redis_client.exists(keys.crawl(run_id))  # the run record itself stays


def test_concurrent_pops_lease_each_request_once(
    redis_url: str, keys: Keys, run_id: str, frontier: Frontier
) -> None:
    total = 400
    for n in range(total):
        frontier.push(b"m%d" % n, float(n), fingerprint=f"m{n}")
    taken: dict[str, list[bytes]] = {}

    def take(worker: str) -> None:
        client = redis_from_url(redis_url)
        mine = Frontier(client, keys, run_id)
        got = taken.setdefault(worker, [])
        while (popped := mine.pop(worker)) is not None:
            got.append(popped[0])
        client.close()

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [m for got in taken.values() for m in got]
    assert len(everything) == total and len(set(everything)) == total
    assert sum(frontier.in_flight().values()) == total


# -- the run store's side --------------------------------------------------------------------


def test_the_first_worker_starts_a_distributed_run_and_the_others_join(
    store: RunStore, clock: Clock
) -> None:
    run_id = store.create(seeds=["http://a.example/"], options={}, origin="cli", distributed=True)
    assert store.distributed() == [run_id]
    store.join(run_id)
    record = store.get(run_id)
    assert (record.status, record.started, record.distributed) == ("running", clock.now, True)
    clock.now += 5
    store.join(run_id)  # a second worker: still the first start time
    assert store.get(run_id).started == clock.now - 5
    store.request_cancel(run_id)
    with pytest.raises(RunStateError, match="cancel requested"):
        store.join(run_id)
    store.finish(run_id, "cancelled", "cancelled", RunStats())
    assert store.distributed() == []
    with pytest.raises(RunStateError, match="cancelled"):
        store.join(run_id)


def test_a_queued_distributed_run_cancelled_leaves_the_workers_offer(store: RunStore) -> None:
    run_id = store.create(seeds=["http://a.example/"], options={}, origin="cli", distributed=True)
    plain = store.create(seeds=["http://a.example/"], options={}, origin="cli")
    assert store.distributed() == [run_id]
    assert store.request_cancel(run_id)
    assert store.distributed() == []
    assert store.get(plain).distributed is False


def test_a_runs_counts_are_the_sum_of_its_workers(store: RunStore, run_id: str) -> None:
    one = RunStats(
        requests=10,
        pages=3,
        images=5,
        confirmed=1,
        errors={"TimeoutError": 2},
        decode_errors={"truncated": 1},
    )
    two = RunStats(
        requests=7,
        pages=2,
        images=4,
        review=1,
        errors={"TimeoutError": 1, "X": 1},
        decode_errors={"truncated": 2, "unsupported": 1},
    )
    assert store.update_part(run_id, "w1", one) == one
    total = store.update_part(run_id, "w2", two)
    expected = RunStats(
        requests=17,
        pages=5,
        images=9,
        confirmed=1,
        review=1,
        errors={"TimeoutError": 3, "X": 1},
        decode_errors={"truncated": 3, "unsupported": 1},
    )
    assert total == expected
    later = RunStats(requests=12, pages=4, images=5, confirmed=1, errors={"TimeoutError": 2})
    assert store.update_part(run_id, "w1", later) is not None  # replaces w1's part
    record = store.get(run_id)
    assert record.stats.pages == 6 and record.stats.requests == 19
    assert record.workers == {"w1": later, "w2": two}
    store.finish(run_id, "finished", "finished", record.stats)
    assert store.update_part(run_id, "w2", two) is None  # a live update after the end
    final = RunStats(requests=8, pages=3, images=4, review=1, errors={"TimeoutError": 1, "X": 1})
    total = store.update_part(run_id, "w2", final, final=True)
    assert total is not None and total.pages == 7
    assert store.get(run_id).stats.pages == 7
    assert store.update_health(run_id, {"no_pages": "x"}) is False


def test_several_requests_leased_and_acknowledged_in_one_round_trip(
    frontier: Frontier, redis_client: redis.Redis, keys: Keys, run_id: str
) -> None:
    for n in range(5):
        frontier.push(b"r%d" % n, float(-n), fingerprint=f"r{n}")
    taken = frontier.pop_many("w1", 3)
    assert taken == [(b"r4", -4.0), (b"r3", -3.0), (b"r2", -2.0)]  # best first
    assert frontier.pop_many("w2", 10) == [(b"r1", -1.0), (b"r0", 0.0)]
    assert frontier.pop_many("w2", 10) == []
    frontier.ack("w1", b"r4", b"r2")
    frontier.ack("w1")  # nothing to acknowledge: no command
    assert redis_client.hkeys(keys.frontier_inflight(run_id, "w1")) == [b"r3"]
    assert frontier.in_flight() == {"w1": 1, "w2": 2}
