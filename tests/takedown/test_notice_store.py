"""Notice records, status sets, audit streams and locks against a real redis-server."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import cast

import pytest
import redis

from store.clock import iso, parse_iso
from store.keys import Keys
from store.text import text
from takedown.model import DeliveryReceipt, Recipient, Route
from takedown.notices import HitGone, LockBusy, NoticeNotFound, NoticeStore
from takedown.stats import nearest_rank, provider_stats
from tests.builders import make_hit
from tests.helpers import HOST_A, Clock

#: Every optional field set, so a round trip through the store has to keep each of them.
HIT = make_hit(pdq="d" * 64, pdq_quality=88, phash="e" * 16)


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str) -> NoticeStore:
    return NoticeStore(redis_client, Keys(redis_prefix), clock=Clock(1_800_000_000.0))


def test_create_is_idempotent_and_audited(store: NoticeStore) -> None:
    assert store.create(HIT, actor="test") is True
    assert store.create(HIT, actor="test") is False
    notice = store.get(HIT.incident)
    assert notice.status == "queued"
    assert notice.hit == HIT
    assert store.ids() == [HIT.incident]
    assert store.ids("queued") == [HIT.incident]
    events = store.timeline(HIT.incident)
    assert [e.event for e in events] == ["queued"]
    assert [e.notice for e in store.audit()] == [HIT.incident]
    # The crawl saw the image online: that is the first "last seen online".
    assert notice.time("last_seen_online") == parse_iso(HIT.first_seen)


def test_a_hit_no_longer_queued_makes_no_notice(
    store: NoticeStore, redis_client: redis.Redis, redis_prefix: str
) -> None:
    # The notifier passes the stream entry it read: once a purge has deleted that entry (with
    # its notice), the notice is not made again from the copy the notifier holds.
    keys = Keys(redis_prefix)
    kept = text(cast("bytes", redis_client.xadd(keys.hits, {"incident": HIT.incident})))
    purged = text(cast("bytes", redis_client.xadd(keys.hits, {"incident": HIT.incident})))
    redis_client.xdel(keys.hits, purged)
    with pytest.raises(HitGone, match=purged):
        store.create(HIT, actor="notifier@test", entry_id=purged)
    assert not redis_client.exists(keys.notice(HIT.incident))
    assert store.ids() == []
    assert store.audit() == []
    assert store.create(HIT, actor="notifier@test", entry_id=kept) is True
    assert store.get(HIT.incident).status == "queued"


def test_racing_creates_make_one_record(store: NoticeStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: store.create(HIT, actor="t"), range(16)))
    assert created.count(True) == 1
    assert len(store.timeline(HIT.incident)) == 1


def test_status_moves_between_sets_with_one_event_each(store: NoticeStore) -> None:
    store.create(HIT, actor="t")
    route = Route(
        host=HOST_A,
        ip=HOST_A,
        method="directory-cidr",
        recipient=Recipient("Alpha Hosting", "abuse@alpha.example", "smtp"),
        provider="Alpha Hosting",
    )
    store.routed(HIT.incident, route, actor="t")
    store.sent(
        HIT.incident,
        DeliveryReceipt("smtp", "abuse@alpha.example", "250 OK"),
        actor="t",
        message_id="<x@y>",
        recheck_at=123.0,
    )
    assert store.ids("queued") == []
    assert store.ids("sent") == [HIT.incident]
    assert store.counts()["sent"] == 1
    notice = store.get(HIT.incident)
    assert notice.provider == "Alpha Hosting"
    assert notice.route == route
    assert notice.fields["recipient"] == "abuse@alpha.example"
    assert [e.event for e in store.timeline(HIT.incident)] == ["queued", "routed", "sent"]
    assert store.client.zscore(store.keys.recheck, HIT.incident) == 123.0
    store.record(HIT.incident, "removed", actor="t", status="removed", stop_rechecks=True)
    assert store.client.zscore(store.keys.recheck, HIT.incident) is None
    assert store.ids("sent") == []
    assert store.ids("removed") == [HIT.incident]


def test_unroutable_route_sets_status(store: NoticeStore) -> None:
    store.create(HIT, actor="t")
    route = Route(host=HOST_A, ip=HOST_A, method="unroutable", recipient=None, trail=("x",))
    store.routed(HIT.incident, route, actor="t")
    assert store.status(HIT.incident) == "unroutable"
    assert store.timeline(HIT.incident)[-1].detail == "x"


def test_find_by_prefix_and_reference(store: NoticeStore) -> None:
    other = replace(HIT, entry="k02")
    store.create(HIT, actor="t")
    store.create(other, actor="t")
    assert store.find(HIT.incident[:10]).id == HIT.incident
    assert store.find("HL-" + other.incident[:12].upper()).id == other.incident
    with pytest.raises(NoticeNotFound, match="not a notice id"):
        store.find("xyz")
    with pytest.raises(NoticeNotFound, match="no notice"):
        store.find("f" * 32)


def test_record_on_missing_notice_fails(store: NoticeStore) -> None:
    with pytest.raises(NoticeNotFound):
        store.record("0" * 32, "sent", actor="t")


def test_lock_excludes_other_owners_but_not_a_restarted_same_owner(store: NoticeStore) -> None:
    store.create(HIT, actor="t")
    with store.lock(HIT.incident, owner="host-a"):
        with pytest.raises(LockBusy, match="host-a"), store.lock(HIT.incident, owner="host-b"):
            pass
        # The same consumer name after a crash (the old lock still set): taken over.
        with store.lock(HIT.incident, owner="host-a"):
            pass
    with store.lock(HIT.incident, owner="host-b"):
        pass


def test_time_to_removal_interval_and_stats(store: NoticeStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    durations = []
    for i in range(5):
        hit = replace(HIT, entry=f"k{i}")
        store.create(hit, actor="t")
        sent = clock.now
        store.record(
            hit.incident,
            "sent",
            actor="t",
            status="sent",
            fields={"sent_at": sent, "provider": "Alpha"},
        )
        if i < 4:
            gone = sent + 3600 * (i + 1)
            store.record(
                hit.incident,
                "removed",
                actor="t",
                status="removed",
                fields={"first_seen_gone": gone, "last_seen_online": gone - 600},
            )
            durations.append(3600 * (i + 1))
    rows = provider_stats(store.iter_notices())
    # The figures read without the hits make the same statistics.
    assert [r.as_dict() for r in provider_stats(store.figures())] == [r.as_dict() for r in rows]
    assert [r.provider for r in rows] == ["Alpha"]
    figures = rows[0].as_dict()
    assert figures["notices"] == 5
    assert figures["removed"] == 4
    assert figures["still_online"] == 1
    assert figures["time_to_removal_s"]["median"] == 7200
    assert figures["time_to_removal_s"]["p90"] == 14400
    assert figures["time_to_removal_s"]["median_lower_bound"] == 7200 - 600
    first = store.get(replace(HIT, entry="k0").incident)
    assert first.time_to_removal() == (3000.0, 3600.0)


def test_nearest_rank() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([5.0], 90) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert nearest_rank(values, 50) == 5.0
    assert nearest_rank(values, 90) == 9.0
    assert nearest_rank(values, 91) == 10.0


def test_iso_round_trip() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert parse_iso("2026-11-22T10:00:00Z") == parse_iso("2026-11-22T11:00:00+01:00")
    assert parse_iso(iso(1_800_000_000)) == 1_800_000_000


def test_the_tally_counts_what_a_walk_of_every_notice_finds(store: NoticeStore) -> None:
    """The tally reads a few fields inside Redis, in slices (here of 3); reading every
    notice whole must agree, channels, a fallback and a removal without its times included."""
    clock = store.clock
    assert isinstance(clock, Clock)
    for i in range(11):
        hit = replace(HIT, entry=f"k{i}")
        store.create(hit, actor="t")
        if i % 4 == 0:
            continue  # 0, 4, 8: queued, not routed
        channel = "email" if i % 3 == 0 else "webhook"
        store.record(hit.incident, "routed", actor="t", fields={"channel": channel})
        if i % 4 == 1:
            continue  # 1, 5, 9: routed
        sent = clock.now
        via = "outbox" if i == 7 else channel  # 7: a fallback carried it
        fields: dict[str, str | float | int] = {"sent_at": sent, "delivered_via": via}
        store.record(hit.incident, "sent", actor="t", status="sent", fields=fields)
        if i % 4 == 3:  # 3, 7: removed; 7 without the time it was found gone
            gone = {"first_seen_gone": sent + 2700} if i == 3 else {}
            closed = {"closed_at": sent + 3600}
            store.record(
                hit.incident, "removed", actor="t", status="removed", fields={**gone, **closed}
            )
    tally = store.tally(batch=3)

    assert tally.by_state == Counter(
        {
            ("queued", ""): 3,
            ("queued", "webhook"): 2,
            ("queued", "email"): 1,
            ("sent", "webhook"): 2,
            ("sent", "email"): 1,
            ("removed", "email"): 1,
            ("removed", "outbox"): 1,
        }
    )
    assert tally.removal_seconds == [2700.0]
    walked: Counter[tuple[str, str]] = Counter()
    for notice in store.iter_notices():
        channel = notice.fields.get("delivered_via") or notice.fields.get("channel", "")
        walked[(notice.status, channel)] += 1
    assert walked == tally.by_state
    assert store.tally(batch=11) == tally == store.tally(batch=1000)


def test_fields_of_each_and_get_many_read_what_the_records_hold(store: NoticeStore) -> None:
    hits = [replace(HIT, entry=f"k{i}") for i in range(5)]
    for i, hit in enumerate(hits):
        store.create(hit, actor="t")
        if i % 2:
            store.record(hit.incident, "routed", actor="t", fields={"provider": f"P{i}"})
    expected = {h.incident: ("queued", f"P{i}" if i % 2 else "") for i, h in enumerate(hits)}
    ids = store.ids()  # by creation time, then id (this clock stands still)
    assert sorted(ids) == sorted(expected)
    whole = {n.id: (n.status, n.fields.get("provider", "")) for n in store.iter_notices()}
    assert whole == expected
    for batch in (2, 5, 1000):  # slices that end inside, at and past the last notice
        assert store.fields_of_each(("status", "provider"), batch=batch) == whole
    assert list(store.fields_of_each(("provider",), "queued", batch=2)) == ids
    assert store.fields_of_each(("nothing",), "removed") == {}
    with pytest.raises(ValueError, match="at least one field"):
        store.fields_of_each(())
    picked = [ids[3], "0" * 32, ids[0]]  # in the order asked; a missing one left out
    assert [n.id for n in store.get_many(picked, batch=2)] == [ids[3], ids[0]]
    assert store.fields_of(picked, ("status", "provider")) == {
        i: whole[i] for i in picked if i in whole
    }


def test_the_statistics_from_figures_match_those_from_whole_notices(store: NoticeStore) -> None:
    """Every status, counters and times: ``figures()`` reads only what the statistics need."""
    clock = store.clock
    assert isinstance(clock, Clock)
    for i, status in enumerate(("queued", "unroutable", "failed", "sent", "escalated") * 2):
        hit = replace(HIT, entry=f"k{i}")
        store.create(hit, actor="t")
        provider = {"provider": f"P{i % 3}"} if i % 4 else {}
        store.record(hit.incident, "routed", actor="t", fields=provider)
        if status == "queued":
            continue
        sent = clock.now - 7200 * i
        store.record(
            hit.incident,
            status,
            actor="t",
            status=status,
            fields={"sent_at": sent, "last_seen_online": sent + 60 * i},
            increment={
                "reminders": i % 2,
                "escalations": int(i % 3 == 0),
                "reopens": int(i % 4 == 1),
            },
        )
        if i >= 5 and status in ("sent", "escalated"):
            store.record(
                hit.incident,
                "removed",
                actor="t",
                status="removed" if i % 2 else "gone_unreachable",
                fields={"first_seen_gone": sent + 3600 * i},
            )
    whole = [r.as_dict() for r in provider_stats(store.iter_notices())]
    assert [r.as_dict() for r in provider_stats(store.figures())] == whole
    assert sum(r["removed"] + r["gone_unreachable"] for r in whole) == 2  # 8 and 9
    assert any(r["time_to_removal_s"]["median"] for r in whole)
    assert {f.id for f in store.figures("removed")} == set(store.ids("removed"))
