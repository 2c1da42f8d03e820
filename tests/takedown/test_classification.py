"""X-ARF classification: where it comes from, and a hit without one is never noticed.

The notifier runs for real: hits go through the project's queue into a real redis-server,
lists are stored by the real list store, notices are rendered by the real renderer and
delivered to an aiosmtpd server. What is asserted is what leaves the system (the messages
the SMTP server received and the X-ARF report attached to each) and what an analyst sees
(status, timeline, audit), never a value the test itself passed in unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from matchers.lists import HashList, ListEntry
from store.keys import NOTIFIER_GROUP, Keys
from store.lists import EVERY_CATEGORY, ClassificationMap, ListStore
from store.queue import HitQueue, HitRecord
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.classification import decide
from takedown.directory import ProviderDirectory
from takedown.errors import NoticeError
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NoticeStateError, NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.routing import Router
from takedown.settings import SettingsError, TakedownSettings
from tests.builders import TEST_IDENTITY, TEST_LIST, make_hit
from tests.helpers import HOST_A
from tests.servers.smtp import SmtpServer

ALPHA = "abuse@alpha-hosting.example"
DIRECTORY = f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: {ALPHA}\n"
#: The category :func:`tests.builders.make_hit` gives its hits.
CATEGORY = "test"


def cmap(**values: str) -> ClassificationMap:
    """A map from keyword arguments; ``every`` stands for ``*``."""
    return ClassificationMap({EVERY_CATEGORY if k == "every" else k: v for k, v in values.items()})


# -- where a classification comes from ------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "stored", "expected"),
    [
        ({}, None, None),
        ({}, cmap(), None),
        ({}, cmap(other="A1"), None),
        ({}, cmap(every="B2"), "B2"),
        ({}, cmap(every="B2", test="A2"), "A2"),
        ({"known": cmap(every="B1")}, cmap(test="A2"), "B1"),  # the configuration wins
        ({"known": cmap(test="A1", every="B1")}, cmap(every="B2"), "A1"),
        ({"known": cmap(other="A1")}, cmap(every="B2"), "B2"),  # config silent: list decides
        ({"other-list": cmap(every="A1")}, None, None),
    ],
)
def test_the_configuration_then_the_list_decide_and_nothing_else(
    configured: Mapping[str, ClassificationMap], stored: ClassificationMap | None, expected: str
) -> None:
    decision = decide(TEST_LIST, CATEGORY, configured=configured, stored=stored)
    assert (decision.value if decision else None) == expected


def test_a_category_named_like_a_classification_is_not_one() -> None:
    assert decide(TEST_LIST, "baseline", configured={}, stored=cmap()) is None
    assert decide(TEST_LIST, "A1", configured={}, stored=cmap(other="B1")) is None


def test_configuration_table_forms(tmp_path: Path) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(
        '[classification]\nlocal = "Baseline"\niwf.cat-1 = "a1"\n'
        '"dotted.list" = "B2"\n[classification.vendor]\n"*" = "B1"\n"x y" = "A2"\n',
        encoding="utf-8",
    )
    settings = TakedownSettings.load(config, {})
    assert {name: m.as_dict() for name, m in settings.classification.items()} == {
        "local": {"*": "baseline"},
        "iwf": {"cat-1": "A1"},
        "dotted.list": {"*": "B2"},
        "vendor": {"*": "B1", "x y": "A2"},
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('known = "A9"', r"\[classification\] known: 'A9' is not an X-ARF classification"),
        ('known.test = "illegal"', r"\[classification\] known\.test: 'illegal' is not an X-ARF"),
        ("known = 1", r"\[classification\] known: expected a string, got 1"),
        ('"bad name!" = "A1"', r"\[classification\] bad name!: not a list name"),
    ],
)
def test_bad_configuration_values_name_the_file_and_field(
    tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(f"[classification]\n{table}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"^{config}: {message}") as caught:
        TakedownSettings.load(config, {})
    assert "\n" not in str(caught.value)


# -- the notifier ---------------------------------------------------------------------------


@dataclass
class Rig:
    client: redis.Redis
    keys: Keys
    store: NoticeStore
    smtp: SmtpServer
    outbox_dir: Path
    closers: list[Deliverer] = field(default_factory=list)

    def notifier(self, configured: Mapping[str, ClassificationMap] | None = None) -> Notifier:
        deliverer = Deliverer(
            SmtpChannel(SmtpSettings(self.smtp.host, self.smtp.port, security="none")),
            None,
            OutboxChannel(OutboxSettings(self.outbox_dir)),
        )
        self.closers.append(deliverer)
        return Notifier(
            self.client,
            self.keys,
            router=Router(ProviderDirectory.from_yaml(DIRECTORY), ProviderDirectory.empty(), None),
            sender=NoticeSender(self.store, NoticeRenderer(TEST_IDENTITY), deliverer, NoticeFacts),
            settings=TakedownSettings(classification=configured or {}),
            consumer="c1",
        )

    def store_list(self, classification: ClassificationMap | None) -> None:
        """Store list ``known`` (made-up hashes) with ``classification`` (None: keep)."""
        entries = [ListEntry("sha256", f"{i:064x}", f"k{i:03d}", CATEGORY) for i in range(3)]
        ListStore(self.client, self.keys).save(
            HashList(name=TEST_LIST, entries=entries), classification=classification
        )

    def enqueue(self, hit: HitRecord) -> None:
        assert HitQueue(self.client, self.keys).enqueue(hit) is not None

    def redeliver(self, hit: HitRecord) -> None:
        """A second copy of the hit in the stream (what at-least-once delivery can produce;
        the queue itself enqueues an incident once)."""
        self.client.xadd(self.keys.hits, hit.to_fields())  # type: ignore[arg-type]

    def reports(self) -> list[dict[str, Any]]:
        """The X-ARF report attached to each message the SMTP server received."""
        out = []
        for received in self.smtp.messages:
            [attachment] = [
                part
                for part in received.message.iter_attachments()
                if part.get_filename() == "xarf.json"
            ]
            out.append(json.loads(attachment.get_content()))
        return out

    def pending(self) -> int:
        return int(self.client.xpending(self.keys.hits, NOTIFIER_GROUP)["pending"])


@pytest.fixture
def rig(
    redis_client: redis.Redis, redis_prefix: str, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Rig]:
    keys = Keys(redis_prefix)
    result = Rig(redis_client, keys, NoticeStore(redis_client, keys), smtp_server, tmp_path / "o")
    try:
        yield result
    finally:
        for deliverer in result.closers:
            deliverer.close()


def test_an_unmapped_category_is_not_noticed_and_waits_for_an_analyst(rig: Rig) -> None:
    rig.store_list(None)  # the list is known, but nobody said what its category is
    hit = make_hit(1)
    rig.enqueue(hit)
    stats = rig.notifier().run(once=True)
    assert (stats.sent, stats.unclassified) == (0, 1)
    assert rig.smtp.messages == []
    assert not rig.outbox_dir.exists()
    assert rig.pending() == 0  # acknowledged: it waits as a notice, not as a stream entry
    assert rig.store.status(hit.incident) == "unclassified"
    assert rig.store.ids("unclassified") == [hit.incident]
    [queued, unclassified] = rig.store.timeline(hit.incident)
    assert (queued.event, unclassified.event) == ("queued", "unclassified")
    assert "'test'" in unclassified.detail and "notices classify" in unclassified.detail
    # Nothing later sends it on its own: another run, the same hit again.
    rig.redeliver(hit)
    assert rig.notifier().run(once=True).sent == 0
    assert rig.smtp.messages == []
    assert rig.store.status(hit.incident) == "unclassified"


def test_without_any_list_or_configuration_nothing_is_noticed(rig: Rig) -> None:
    rig.enqueue(make_hit(2))
    assert rig.notifier({"another-list": cmap(every="A1")}).run(once=True).unclassified == 1
    assert rig.smtp.messages == []


def test_a_mapped_category_is_noticed_with_its_classification(rig: Rig) -> None:
    rig.store_list(cmap(test="B2"))
    first = make_hit(3)
    other = make_hit(4, category="unmapped-category")
    rig.enqueue(first)
    rig.enqueue(other)
    stats = rig.notifier().run(once=True)
    assert (stats.sent, stats.unclassified) == (1, 1)
    [report] = rig.reports()
    assert report["url"] == first.url
    assert report["classification"] == "B2"
    assert rig.store.status(other.incident) == "unclassified"
    classified = [e for e in rig.store.timeline(first.incident) if e.event == "classified"]
    assert [e.detail for e in classified] == [f"B2 from list {TEST_LIST} (category)"]


def test_the_stored_mapping_survives_a_new_version_of_the_list(rig: Rig) -> None:
    rig.store_list(cmap(every="A2"))
    rig.store_list(None)  # a new version, imported without --classification
    rig.enqueue(make_hit(5))
    assert rig.notifier().run(once=True).sent == 1
    assert [r["classification"] for r in rig.reports()] == ["A2"]


def test_a_replaced_mapping_applies_to_the_next_hits(rig: Rig) -> None:
    rig.store_list(cmap(every="A2"))
    rig.enqueue(make_hit(6))
    rig.notifier().run(once=True)
    rig.store_list(cmap(every="B1"))
    rig.enqueue(make_hit(7))
    rig.notifier().run(once=True)
    assert [r["classification"] for r in rig.reports()] == ["A2", "B1"]


def test_the_configuration_overrides_the_list(rig: Rig) -> None:
    rig.store_list(cmap(every="B2"))
    rig.enqueue(make_hit(8))
    assert rig.notifier({TEST_LIST: cmap(test="A1")}).run(once=True).sent == 1
    assert [r["classification"] for r in rig.reports()] == ["A1"]


def test_classify_sends_exactly_one_notice_with_the_chosen_value(rig: Rig) -> None:
    hit = make_hit(9)
    rig.enqueue(hit)
    notifier = rig.notifier()
    notifier.run(once=True)
    assert rig.store.status(hit.incident) == "unclassified"

    outcome = notifier.classify(
        hit.incident, "a1", actor="analyst@alice", reason="seen by two analysts"
    )
    assert outcome == "sent"
    [report] = rig.reports()
    assert report["classification"] == "A1"
    assert report["url"] == hit.url
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    assert notice.fields["classification"] == "A1"
    events = rig.store.timeline(hit.incident)
    assert [e.event for e in events] == ["queued", "unclassified", "classified", "routed", "sent"]
    decision = events[2]
    assert decision.actor == "analyst@alice"
    assert "A1" in decision.detail and "seen by two analysts" in decision.detail
    assert any(e.event == "classified" and e.actor == "analyst@alice" for e in rig.store.audit())

    # Exactly one: later runs, the same hit again, and a second decision send nothing more.
    rig.redeliver(hit)
    rig.notifier().run(once=True)
    with pytest.raises(NoticeError, match="already sent \\(or prepared\\) with classification A1"):
        notifier.classify(hit.incident, "B1", actor="analyst@bob")
    assert len(rig.smtp.messages) == 1


def test_classify_refuses_a_value_outside_x_arf(rig: Rig) -> None:
    hit = make_hit(10)
    rig.enqueue(hit)
    notifier = rig.notifier()
    notifier.run(once=True)
    for bad in ("A3", "", "national-only"):
        with pytest.raises(NoticeError, match="not an X-ARF classification"):
            notifier.classify(hit.incident, bad, actor="analyst@alice")
    assert rig.store.status(hit.incident) == "unclassified"
    assert rig.smtp.messages == []


def test_a_resend_does_not_send_an_unclassified_notice(rig: Rig) -> None:
    hit = make_hit(11)
    rig.enqueue(hit)
    notifier = rig.notifier()
    notifier.run(once=True)
    with pytest.raises(NoticeStateError, match="is unclassified: nothing can be sent before"):
        notifier.resend(hit.incident, actor="analyst@alice")
    assert rig.smtp.messages == []
    assert rig.store.status(hit.incident) == "unclassified"
