"""Retention: the purge against a real redis-server, with a clock the test moves.

One world is built the way production builds it: hits and review items queued with the
project's queue, notices made by the real notifier (outbox delivery, a channel that fails into
the dead-letter stream, an unroutable host, an unreadable entry), closed and reopened through
the notice store. Then it is aged 600 days and purged. Every key under the test's prefix is read
before and after: the purge must remove exactly the expected records and index entries and
leave every other byte as it was.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from store.clock import DAY, HOUR, iso
from store.keys import NOTIFIER_GROUP, Keys
from store.queue import HitQueue, HitRecord
from store.review import ReviewDesk
from store.text import text
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.directory import ProviderDirectory
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.retention import (
    KINDS,
    PurgeBusy,
    PurgeInterrupted,
    Purger,
    PurgeReport,
    RetentionSettings,
    run_daily,
)
from takedown.routing import Router
from takedown.settings import SettingsError, TakedownSettings
from tests import builders
from tests.builders import TEST_IDENTITY, make_hit
from tests.helpers import CLOCK_START, HOST_A, HOST_B, Clock

T0 = CLOCK_START
#: When the world is purged: 600 days after it began.
NOW = T0 + 600 * DAY
#: A host no directory entry names (no RDAP in these tests): its notices are unroutable.
NOBODY = "127.0.0.9"
DIRECTORY = f"""
- name: Alpha Hosting
  cidrs: [{HOST_A}/32]
  abuse: abuse@alpha-hosting.example
  channel: outbox
- name: Beta Hosting
  cidrs: [{HOST_B}/32]
  abuse: abuse@beta-hosting.example
"""
#: Notice ids planted in two indexes without a notice (what an older crash could leave).
DANGLING_SENT = "f" * 32
DANGLING_RECHECK = "e" * 32

Item = tuple[Any, ...]
Snapshot = dict[str, tuple[str, frozenset[Item]]]


def snapshot(client: redis.Redis, prefix: str) -> Snapshot:
    """Every key under ``prefix``: its type and its content as a set of items (a stream's
    entries with their fields, a hash's fields with their values, a sorted set's members with
    their scores)."""
    out: Snapshot = {}
    for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = text(raw)
        kind = text(cast("bytes", client.type(key)))
        items: set[Item]
        if kind == "string":
            items = {(cast("bytes", client.get(key)),)}
        elif kind == "hash":
            items = set(cast("dict[bytes, bytes]", client.hgetall(key)).items())
        elif kind == "zset":
            items = {
                (m, s)
                for m, s in cast(
                    "list[tuple[bytes, float]]", client.zrange(key, 0, -1, withscores=True)
                )
            }
        elif kind == "stream":
            items = {
                (text(i), frozenset(d.items()))
                for i, d in cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(key))
            }
        else:
            pytest.fail(f"unexpected key type {kind} of {key}")
        out[key] = (kind, frozenset(items))
    return out


def entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of ``stream``, oldest first."""
    return cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(stream))


def ident(item: Item) -> str:
    """What names an item within its key: the entry id, the field, the member, the value."""
    return text(item[0])


def changes(before: Snapshot, after: Snapshot) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per key, the names of the items that went and of those that came (a changed value
    shows in both)."""
    removed: dict[str, set[str]] = {}
    added: dict[str, set[str]] = {}
    for key in set(before) | set(after):
        old = before.get(key, ("", frozenset()))[1]
        new = after.get(key, ("", frozenset()))[1]
        if old - new:
            removed[key] = {ident(i) for i in old - new}
        if new - old:
            added[key] = {ident(i) for i in new - old}
    return removed, added


@dataclass
class World:
    client: redis.Redis
    keys: Keys
    clock: Clock
    store: NoticeStore
    outbox: Path
    hits: dict[str, HitRecord] = field(default_factory=dict)
    entries: dict[str, str] = field(default_factory=dict)  # name -> hits/review entry id
    dead: dict[str, str] = field(default_factory=dict)  # name -> dead letter entry id
    audit_boundary: str = ""  # the last audit entry written before the audit cutoff
    deliverers: list[Deliverer] = field(default_factory=list)

    def notifier(self) -> Notifier:
        deliverer = Deliverer(outbox=OutboxChannel(OutboxSettings(self.outbox)))
        self.deliverers.append(deliverer)
        sender = NoticeSender(self.store, NoticeRenderer(TEST_IDENTITY), deliverer, NoticeFacts)
        router = Router(ProviderDirectory.from_yaml(DIRECTORY), ProviderDirectory.empty(), None)
        return Notifier(
            self.client,
            self.keys,
            router=router,
            sender=sender,
            settings=TakedownSettings(
                max_attempts=1, retry_after=3600.0, classification=builders.TEST_CLASSIFICATION
            ),
            consumer="c1",
            clock=self.clock,
        )

    def enqueue(self, name: str, hit: HitRecord) -> None:
        entry_id = HitQueue(self.client, self.keys).enqueue(hit)
        assert entry_id is not None
        self.hits[name] = hit
        self.entries[name] = entry_id

    def id(self, name: str) -> str:
        return self.hits[name].incident

    def close(self, name: str, status: str = "removed") -> None:
        self.store.record(self.id(name), status, actor="test", status=status, stop_rechecks=True)

    def purger(self, settings: RetentionSettings | None = None, **kwargs: Any) -> Purger:
        return Purger(
            self.client,
            self.keys,
            settings or RetentionSettings(),
            actor="analyst@test",
            clock=self.clock,
            **kwargs,
        )

    def snapshot(self) -> Snapshot:
        return snapshot(self.client, self.keys.prefix)

    def expected_removals(self, before: Snapshot) -> dict[str, set[str]]:
        """What a purge at :data:`NOW` with the default periods must remove, and only that."""
        k = self.keys
        gone = ("A", "F", "I")  # closed long enough ago: the whole notice goes
        out: dict[str, set[str]] = {}
        for name in gone:
            for key in (k.notice(self.id(name)), k.notice_timeline(self.id(name))):
                out[key] = {ident(i) for i in before[key][1]}
        out[k.notice_lock(self.id("A"))] = {
            ident(i) for i in before[k.notice_lock(self.id("A"))][1]
        }
        out[k.notices] = {self.id(n) for n in gone}
        out[k.notices_in("removed")] = {self.id("A"), self.id("I")}
        out[k.notices_in("gone_unreachable")] = {self.id("F")}
        out[k.notices_in("sent")] = {DANGLING_SENT}
        out[k.recheck] = {DANGLING_RECHECK}
        # B is closed for 200 days: its hit goes (180 d), the notice stays (365 d).
        out[k.hits] = {self.entries[n] for n in ("A", "B", "F", "I", "J")}
        out[k.stream_ids("confirmed")] = {self.id(n) for n in ("A", "B", "F", "I")}
        out[k.review] = {self.entries[n] for n in ("review-A", "R1")}
        out[k.stream_ids("review")] = {self.id("A"), self.hits["R1"].incident}
        out[k.dead_letters] = {self.dead["I"], self.dead["J"]}
        out[k.audit] = {
            ident(i) for i in before[k.audit][1] if _id(ident(i)) <= _id(self.audit_boundary)
        }
        return out


EXPECTED_COUNTS = {
    "notices": 3,
    "hits": 5,
    "review": 2,
    "dead_letters": 2,
    "index_entries": 2,
}


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


@pytest.fixture
def world(redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> Iterator[World]:
    """Notices of every kind, old and new, open and closed (letters name them):

    A removed at day 10 (with a review item of the same incident and a lock a dead process
    left), B removed at day 400, C removed at day 500, D sent and never closed, E unroutable,
    F gone_unreachable at day 10, G removed at day 10 and reopened at day 20, H dead-lettered
    (failed), I dead-lettered, marked sent and removed at day 10, J an unreadable hit; review
    items R1 (day 0) and R2 (day 590); hits K (day 590) and L (day 0) that no notifier has
    read yet. The clock stops at day 600.
    """
    keys = Keys(redis_prefix)
    clock = Clock(T0)
    w = World(redis_client, keys, clock, NoticeStore(redis_client, keys, clock=clock), tmp_path)
    day0 = iso(T0)
    for number, name in enumerate("ABCDFG", start=1):
        w.enqueue(name, make_hit(number, first_seen=day0))
    w.enqueue("E", make_hit(5, NOBODY, first_seen=day0))
    w.enqueue("H", make_hit(8, HOST_B, first_seen=day0))
    w.enqueue("I", make_hit(9, HOST_B, first_seen=day0))
    w.enqueue("review-A", make_hit(1, verdict="review", first_seen=day0))
    w.enqueue("R1", make_hit(20, verdict="review", first_seen=day0))
    junk: dict[Any, Any] = {
        "url": f"http://{HOST_A}/img/099.jpg",
        "list": "known",
        "entry": "k99",
        "first_seen": "soon",
    }
    w.entries["J"] = text(redis_client.xadd(keys.hits, junk))
    try:
        stats = w.notifier().run(once=True)
        # The outbox only prepares notices: an analyst sends them and marks them sent.
        assert (len(stats.awaiting_manual), stats.unroutable, stats.dead_lettered) == (6, 1, 3)
        for notice_id in stats.awaiting_manual:
            w.store.mark_sent(notice_id, actor="analyst@test", recheck_at=T0 + DAY)
        for entry_id, data in cast(
            "list[tuple[bytes, dict[bytes, bytes]]]", redis_client.xrange(keys.dead_letters)
        ):
            notice = text(data[b"notice"])
            name = next((n for n in ("H", "I") if notice == w.id(n)), "J")
            w.dead[name] = text(entry_id)
        redis_client.set(keys.notice_lock(w.id("A")), "c9|a-process-that-died")
        redis_client.zadd(keys.notices_in("sent"), {DANGLING_SENT: T0})
        redis_client.zadd(keys.recheck, {DANGLING_RECHECK: T0})
        clock.now = T0 + 1 * DAY
        w.store.record(w.id("I"), "marked_sent", actor="analyst@test", status="sent")
        clock.now = T0 + 10 * DAY
        for name in ("A", "G", "I"):
            w.close(name)
        w.close("F", "gone_unreachable")
        clock.now = T0 + 20 * DAY
        w.store.record(w.id("G"), "reappeared", actor="recheck@test", status="sent")
        [(last, _)] = cast("list[tuple[bytes, Any]]", redis_client.xrevrange(keys.audit, count=1))
        w.audit_boundary = text(last)
        clock.now = T0 + 400 * DAY
        w.close("B")
        clock.now = T0 + 500 * DAY
        w.close("C")
        clock.now = T0 + 590 * DAY
        recent = iso(clock.now)
        w.enqueue("K", make_hit(10, first_seen=recent))
        w.enqueue("L", make_hit(11, first_seen=day0))
        w.enqueue("R2", make_hit(21, verdict="review", first_seen=recent))
        clock.now = NOW
        yield w
    finally:
        for deliverer in w.deliverers:
            deliverer.close()


# -- the purge ---------------------------------------------------------------------------------


def test_purge_removes_exactly_the_expired_records_and_their_index_entries(world: World) -> None:
    before = world.snapshot()
    report = world.purger().purge()
    after = world.snapshot()
    removed, added = changes(before, after)
    assert removed == world.expected_removals(before)
    assert set(added) == {world.keys.audit, world.keys.purge_last}
    assert len(added[world.keys.audit]) == 1
    assert report.counts == {**EXPECTED_COUNTS, "audit": len(removed[world.keys.audit])}
    assert report.changed == 0
    # The commands that read notices still work, and see only what was kept.
    store = NoticeStore(world.client, world.keys)
    kept = {n.id for n in store.iter_notices()}
    assert kept == {world.id(n) for n in "BCDEGH"}
    assert store.counts()["removed"] == 2


def test_open_and_waiting_notices_keep_everything_however_old(world: World) -> None:
    short = RetentionSettings(
        closed_notices=DAY, hits=DAY, review=DAY, dead_letters=DAY, audit=None
    )
    world.purger(short).purge()
    store = NoticeStore(world.client, world.keys)
    assert {n.status for n in store.iter_notices()} == {"sent", "unroutable", "failed"}
    ids = cast("dict[bytes, bytes]", world.client.hgetall(world.keys.stream_ids("confirmed")))
    # D, E, G, H: open or waiting; K and L: not read by any notifier yet.
    assert {text(k) for k in ids} == {world.id(n) for n in "DEGHKL"}
    for name in "DEGHKL":
        assert world.client.xrange(world.keys.hits, world.entries[name], world.entries[name])
    assert [text(d[b"notice"]) for _, d in entries(world.client, world.keys.dead_letters)] == [
        world.id("H")
    ]


def test_off_keeps_a_kind_forever(world: World) -> None:
    before = world.snapshot()
    keep_all = RetentionSettings(
        closed_notices=None, hits=None, review=None, dead_letters=None, audit=None
    )
    report = world.purger(keep_all).purge()
    removed, _ = changes(before, world.snapshot())
    # Only the two index entries that name no notice go.
    assert removed == {
        world.keys.notices_in("sent"): {DANGLING_SENT},
        world.keys.recheck: {DANGLING_RECHECK},
    }
    assert report.counts == {**dict.fromkeys(EXPECTED_COUNTS, 0), "index_entries": 2, "audit": 0}


def test_dry_run_counts_the_same_and_changes_nothing(world: World) -> None:
    before = world.snapshot()
    dry = world.purger().purge(dry_run=True)
    assert world.snapshot() == before
    assert dry.dry_run is True
    real = world.purger().purge()
    assert dry.counts == real.counts
    assert dry.counts["notices"] == EXPECTED_COUNTS["notices"]


def test_the_audit_gets_one_event_with_counts_and_no_url(world: World) -> None:
    report = world.purger().purge()
    [(_, raw)] = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        world.client.xrevrange(world.keys.audit, count=1),
    )
    event = {text(k): text(v) for k, v in raw.items()}
    assert event["event"] == "purged"
    assert event["actor"] == "analyst@test"
    assert event["notice"] == ""
    assert json.loads(event["counts"]) == report.counts
    assert json.loads(event["cutoffs"])["closed_notices"] == iso(NOW - 365 * DAY)
    for value in event.values():
        assert "http" not in value
        assert not any(hit.incident in value for hit in world.hits.values())
    # Nothing under the prefix names a purged record's URL any more.
    everything = repr(world.snapshot())
    for name in ("A", "F", "I"):
        assert world.hits[name].url not in everything
    assert "img/099.jpg" not in everything  # J


def test_a_purge_killed_half_way_leaves_no_dangling_entry_and_a_rerun_finishes(
    world: World,
) -> None:
    before = world.snapshot()

    class Killed(BaseException):
        pass

    def die_after_two_batches(kind: str, report: PurgeReport) -> None:
        if report.counts["notices"] == 2:
            raise Killed

    with pytest.raises(Killed):
        world.purger(batch=1, progress=die_after_two_batches).purge()
    store = NoticeStore(world.client, world.keys)
    k = world.keys
    planted = {DANGLING_SENT, DANGLING_RECHECK}
    for index in (
        k.notices,
        *(k.notices_in(s) for s in ("removed", "gone_unreachable")),
        k.recheck,
    ):
        for member in store.members(index):
            assert member in planted or world.client.exists(k.notice(member)), (index, member)
    for incident, entry_id in cast(
        "dict[bytes, bytes]", world.client.hgetall(k.stream_ids("confirmed"))
    ).items():
        assert world.client.xrange(k.hits, entry_id, entry_id), text(incident)
    assert len(list(store.iter_notices())) == len(store.ids())
    assert world.client.get(k.purge_lock) is None  # released on the way out

    report = world.purger().purge()
    removed, added = changes(before, world.snapshot())
    assert removed == world.expected_removals(before)
    assert len(added[k.audit]) == 1
    assert report.counts["notices"] == 1


def test_a_stop_request_ends_the_purge_between_batches_and_says_so(world: World) -> None:
    stop = threading.Event()

    def ask_to_stop(kind: str, report: PurgeReport) -> None:
        stop.set()

    with pytest.raises(PurgeInterrupted):
        world.purger(batch=1, progress=ask_to_stop, stop=stop).purge()
    [(_, raw)] = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        world.client.xrevrange(world.keys.audit, count=1),
    )
    assert text(raw[b"detail"]).endswith("(interrupted)")
    assert set(json.loads(raw[b"counts"])) == set(KINDS)
    assert world.client.get(world.keys.purge_last) is None  # not done: due again


# -- once a day, one process at a time ---------------------------------------------------------


def test_purge_if_due_runs_once_per_interval(world: World) -> None:
    purger = world.purger()
    first = purger.purge_if_due(DAY)
    assert first is not None
    assert first.counts["notices"] == 3
    world.clock.advance(DAY - 1)
    assert purger.purge_if_due(DAY) is None
    world.clock.advance(1)
    assert purger.purge_if_due(DAY) is not None
    purged_events = [
        d for _, d in entries(world.client, world.keys.audit) if d.get(b"event") == b"purged"
    ]
    assert len(purged_events) == 2


def test_a_held_lock_keeps_other_purges_out(world: World) -> None:
    world.client.set(world.keys.purge_lock, "notifier@host-b|0123")
    before = world.snapshot()
    with pytest.raises(PurgeBusy, match="notifier@host-b"):
        world.purger().purge()
    assert world.purger().purge_if_due(DAY) is None
    assert world.snapshot() == before


def test_run_daily_purges_at_start_and_stops_when_asked(world: World) -> None:
    stop = threading.Event()
    reports: list[PurgeReport] = []

    def reported(report: PurgeReport) -> None:
        reports.append(report)
        stop.set()

    run_daily(world.purger(stop=stop), stop, on_report=reported)
    assert [r.counts["notices"] for r in reports] == [3]
    assert not world.client.exists(world.keys.notice(world.id("A")))


# -- the [retention] table ---------------------------------------------------------------------


def load(tmp_path: Path, table: str) -> TakedownSettings:
    path = tmp_path / "hotline.toml"
    path.write_text("[retention]\n" + table, encoding="utf-8")
    return TakedownSettings.load(path, {})


def test_retention_defaults_and_values(tmp_path: Path) -> None:
    defaults = TakedownSettings.defaults({}).retention
    assert (defaults.closed_notices, defaults.hits, defaults.review) == (
        365 * DAY,
        180 * DAY,
        180 * DAY,
    )
    assert (defaults.dead_letters, defaults.audit) == (180 * DAY, 365 * DAY)
    given = load(tmp_path, 'closed_notices = "104w"\n')
    assert given.retention.closed_notices == 104 * 7 * DAY
    assert given.retention.hits == 180 * DAY  # not given: the default
    off = load(tmp_path, 'hits = "off"\nreview = 0\naudit = "0"\ndead_letters = "30d"\n')
    assert (off.retention.hits, off.retention.review, off.retention.audit) == (None, None, None)
    assert off.retention.dead_letters == 30 * DAY


@pytest.mark.parametrize(
    ("table", "field_name", "says"),
    [
        ('hits = "365"\n', "hits", "at least 1d"),
        ('audit = "12h"\n', "audit", "at least 1d"),
        ('review = "soon"\n', "review", "expected a duration"),
        ("dead_letters = true\n", "dead_letters", "expected a duration"),
        ('closed_notices = "-3d"\n', "closed_notices", "expected a duration"),
        ('notices = "30d"\n', "notices", "unknown field"),
    ],
)
def test_retention_errors_name_the_file_and_the_field(
    tmp_path: Path, table: str, field_name: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, table)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'hotline.toml'}: [retention] {field_name}: ")
    assert says in message


def test_a_purged_review_item_takes_its_decision_and_timeline_but_not_its_dismissal(
    world: World,
) -> None:
    """R1 (day 0, no notice) was decided by an analyst: the decision names the image URL in
    the incident's timeline. Purged with the item; the dismissal (an id only) stays, so the
    image stays dismissed."""
    keys = world.keys
    desk = ReviewDesk(world.client, keys, clock=world.clock)
    r1 = world.hits["R1"].incident
    world.clock.now = T0 + HOUR
    desk.dismiss(r1, actor="analyst@jo", reason="a look-alike")
    assert world.client.hexists(keys.review_decisions, r1)
    assert world.client.exists(keys.notice_timeline(r1))
    world.clock.now = NOW
    world.purger().purge()
    assert not world.client.hexists(keys.review_decisions, r1)
    assert not world.client.exists(keys.notice_timeline(r1))
    assert world.client.sismember(keys.review_dismissed, r1)
    assert HitQueue(world.client, keys).enqueue(world.hits["R1"]) is None  # still dismissed


def test_a_closed_notice_whose_content_is_back_is_not_purged(world: World) -> None:
    """A (removed at day 10, long expired) was found again by a crawl: its flagged hit waits
    for the notifier. Neither the notice nor that hit is purged."""
    a = world.hits["A"]
    entry = HitQueue(world.client, world.keys).enqueue(replace(a, crawl="crawl-again"))
    assert entry is not None
    world.purger().purge()
    assert NoticeStore(world.client, world.keys).status(a.incident) == "removed"
    assert world.client.xrange(world.keys.hits, entry, entry)
    assert text(cast("bytes", world.client.hget(world.keys.hits_reappeared, a.incident))) == entry


def test_a_hit_purged_while_the_notifier_holds_it_makes_no_notice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A purge elsewhere deletes the hits K and L from the stream after the notifier has read
    # them: no notice is made from the copies it holds, nothing is sent, the daemon goes on.
    notifier = world.notifier()
    create = notifier.store.create
    purged: list[str] = []

    def purged_then_create(hit: HitRecord, **kwargs: Any) -> Any:
        world.client.xdel(world.keys.hits, kwargs["entry_id"])
        purged.append(hit.incident)
        return create(hit, **kwargs)

    monkeypatch.setattr(notifier.store, "create", purged_then_create)
    prepared = sorted(world.outbox.rglob("*"))
    stats = notifier.run(once=True)
    assert sorted(purged) == sorted({world.id("K"), world.id("L")})
    assert not any(world.client.exists(world.keys.notice(world.id(n))) for n in "KL")
    assert (stats.errors, stats.dead_lettered, len(stats.awaiting_manual)) == ({}, 0, 0)
    assert stats.sent == 0
    assert sorted(world.outbox.rglob("*")) == prepared
    pending = world.client.xpending(world.keys.hits, NOTIFIER_GROUP)
    assert pending["pending"] == 0


def test_a_notice_purged_while_the_notifier_holds_its_hit_is_let_go(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A purge elsewhere removes the notice between the notifier's reading of the hit and its
    # sending: nothing is left to send, the hit is acknowledged and the daemon goes on.
    notifier = world.notifier()
    create = notifier.store.create
    purged: list[str] = []

    def create_then_purged(hit: HitRecord, **kwargs: Any) -> Any:
        created = create(hit, **kwargs)
        world.client.delete(world.keys.notice(hit.incident))
        purged.append(hit.incident)
        return created

    monkeypatch.setattr(notifier.store, "create", create_then_purged)
    stats = notifier.run(once=True)
    assert sorted(purged) == sorted({world.id("K"), world.id("L")})
    assert (stats.errors, stats.dead_lettered, len(stats.awaiting_manual)) == ({}, 0, 0)
    pending = world.client.xpending(world.keys.hits, NOTIFIER_GROUP)
    assert pending["pending"] == 0
