"""Verified removal: which notices are due for a recheck, and what a recheck's verdict does.

The schedule is the ``recheck`` sorted set (notice id scored by the unix time its next check
is due). :meth:`RecheckBook.claim_due` hands out due notices as
:class:`store.rechecks.RecheckTarget` (the noticed URL and hashes, with the confirm thresholds
of the list the hit matched). Fetching is the crawler's job (its recheck spider: the same
safety rules and hashing as a crawl); it answers with a :class:`store.rechecks.RecheckResult`,
and :meth:`RecheckBook.apply` decides what the verdict means:

* **removed** (404, 410, 451, or bytes that no longer match): the notice is closed with the
  time to removal as an interval, [last seen online, first seen gone].
* **unreachable** (network errors, 5xx, 403, ...): counts as removed only after
  ``unreachable_confirmations`` in a row, a hosting outage is not a removal; the content is
  then taken as gone since the first failure of the run.
* **online**: the last-seen time moves on; a reminder goes to the provider when the last
  message is ``reminder_interval`` old (numbered, same reference); once the notice is
  ``escalate_after`` old the registrar and the upstream network are written to and the notice
  is flagged ``escalated`` for an analyst.

Taking due notices is a lease: the claim moves each notice's due time ``lease`` seconds ahead
in the same script, so two recheck processes never fetch the same notice at once, and a process
that dies mid-check only delays that notice by the lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import ClassVar, cast

from matchers.lists import Thresholds
from store.base import RedisStore
from store.clock import parse_iso
from store.lists import ListStore
from store.rechecks import RecheckResult, RecheckTarget
from store.text import text
from takedown.channels.base import is_manual
from takedown.errors import DeliveryError, NoticeError
from takedown.model import Recipient, Route
from takedown.notices import OPEN_STATUSES, Notice, NoticeNotFound, NoticeStore
from takedown.notifier import NoticeSender, Router, route_target
from takedown.settings import TakedownSettings

__all__ = ["InvalidTarget", "RecheckBook"]

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id)
end
return due
"""


#: Told about a claimed notice that cannot be rechecked (its id, why); it comes back once its
#: lease runs out.
InvalidTarget = Callable[[str, ValueError], None]


class RecheckBook(RedisStore):
    """The recheck schedule and the state changes its verdicts cause."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "claim": _CLAIM,
    }

    def __init__(
        self,
        store: NoticeStore,
        settings: TakedownSettings,
        *,
        sender: NoticeSender | None = None,
        router: Router | None = None,
        actor: str = "recheck",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store.client, store.keys, clock=clock)
        self.store = store
        self.settings = settings
        self.sender = sender
        self.router = router
        self.actor = actor

    # -- the schedule ------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        limit: int = 100,
        everything: bool = False,
        on_invalid: InvalidTarget | None = None,
    ) -> list[RecheckTarget]:
        """Take up to ``limit`` notices that are due (or, with ``everything``, all that are
        scheduled) and lease them for ``recheck_lease`` seconds. Each target carries the
        confirm thresholds of the list its hit matched; a notice whose record does not make a
        valid target is left out and passed to ``on_invalid``."""
        now = self.clock()
        upper = "+inf" if everything else repr(now)
        ids = cast(
            "list[bytes]",
            self.script(
                "claim",
                keys=[self.keys.recheck],
                args=[upper, limit, repr(now + self.settings.recheck_lease)],
            ),
        )
        thresholds: dict[str, Thresholds] | None = None
        targets: list[RecheckTarget] = []
        for raw in ids:
            notice_id = text(raw)
            try:
                notice = self.store.get(notice_id)
            except NoticeNotFound:
                self.client.zrem(self.keys.recheck, notice_id)
                continue
            if notice.status not in OPEN_STATUSES or notice.hit.url.startswith("data:"):
                # A data: image lives inside its page; it cannot be fetched on its own.
                self.client.zrem(self.keys.recheck, notice_id)
                continue
            if thresholds is None:  # read once per claim, and only when something is due
                thresholds = {info.name: info.thresholds for info in self._lists().info()}
            hit = notice.hit
            limits = thresholds.get(hit.list) or Thresholds()
            try:
                targets.append(
                    RecheckTarget(
                        notice_id=notice_id,
                        url=hit.url,
                        sha256=hit.sha256,
                        pdq=hit.pdq or None,
                        phash=hit.phash or None,
                        pdq_threshold=limits.pdq_confirm,
                        phash_threshold=limits.phash_confirm,
                    )
                )
            except ValueError as exc:  # a corrupt record must not stop the others
                if on_invalid is not None:
                    on_invalid(notice_id, exc)
        return targets

    def _lists(self) -> ListStore:
        return ListStore(self.client, self.keys)

    def due_count(self) -> int:
        return int(self.client.zcount(self.keys.recheck, "-inf", repr(self.clock())))

    def scheduled_count(self) -> int:
        return int(self.client.zcard(self.keys.recheck))

    # -- verdicts ----------------------------------------------------------------------------

    def apply(self, outcome: RecheckResult) -> str:
        """Record one verdict and act on it; returns what happened: removed, online,
        reminded, escalated, unreachable or closed (the notice was no longer open)."""
        try:
            notice = self.store.get(outcome.notice_id)
        except NoticeNotFound:
            self.client.zrem(self.keys.recheck, outcome.notice_id)
            return "closed"
        if notice.status not in OPEN_STATUSES:
            self.client.zrem(self.keys.recheck, notice.id)
            return "closed"
        checked = parse_iso(outcome.checked_at)
        detail = outcome.reason + (
            f" (http {outcome.http_status})"
            if outcome.http_status and str(outcome.http_status) not in outcome.reason
            else ""
        )
        if outcome.state == "removed":
            self._removed(notice, gone_at=checked, checked=checked, reason=detail)
            return "removed"
        if outcome.state == "unreachable":
            streak = notice.count("unreachable_streak") + 1
            first_failure = notice.time("first_unreachable_at") or checked
            if streak >= self.settings.unreachable_confirmations:
                self._removed(
                    notice,
                    gone_at=first_failure,
                    checked=checked,
                    reason=f"unreachable {streak} times in a row: {detail}",
                )
                return "removed"
            self.store.record(
                notice.id,
                "unreachable",
                actor=self.actor,
                detail=f"{detail} ({streak} of {self.settings.unreachable_confirmations})",
                fields={
                    "unreachable_streak": streak,
                    "first_unreachable_at": first_failure,
                    "last_checked": checked,
                },
                increment={"checks": 1},
                recheck_at=checked + self.settings.recheck_delay(0),
            )
            return "unreachable"
        if outcome.state != "online":
            raise ValueError(f"unknown recheck state {outcome.state!r}")
        checks = notice.count("checks") + 1
        self.store.record(
            notice.id,
            "verified_online",
            actor=self.actor,
            detail=detail,
            fields={
                "last_seen_online": checked,
                "last_checked": checked,
                "unreachable_streak": 0,
                "first_unreachable_at": "",
            },
            increment={"checks": 1},
            recheck_at=checked + self.settings.recheck_delay(checks),
        )
        notice = self.store.get(notice.id)
        return self._follow_up(notice)

    def _removed(self, notice: Notice, *, gone_at: float, checked: float, reason: str) -> None:
        self.store.record(
            notice.id,
            "removed",
            actor=self.actor,
            status="removed",
            detail=reason,
            fields={
                "first_seen_gone": gone_at,
                "last_checked": checked,
                "removal_reason": reason,
            },
            increment={"checks": 1},
            stop_rechecks=True,
        )

    # -- reminders and escalation -------------------------------------------------------------

    def _follow_up(self, notice: Notice) -> str:
        sender = self.sender
        if sender is None:
            return "online"
        now = self.clock()
        sent_at = notice.time("sent_at") or notice.created
        if notice.status == "sent" and now - sent_at >= self.settings.escalate_after:
            return self._escalate(notice, sender)
        last_message = notice.time("last_message_at") or sent_at
        if now - last_message >= self.settings.reminder_interval:
            return self._remind(notice, sender)
        return "online"

    def _current_route(self, notice: Notice) -> Route | None:
        stored = notice.route
        if self.router is None:
            return stored
        route = self.router.route(route_target(notice.hit), notice.hit.ip or None)
        return route if route.recipient is not None else stored

    def _remind(self, notice: Notice, sender: NoticeSender) -> str:
        route = self._current_route(notice)
        if route is None or route.recipient is None:
            return "online"
        number = notice.count("reminders") + 1
        try:
            outgoing = sender.render(notice, route, kind="reminder", sequence=number)
            receipt = sender.deliver(notice, outgoing)
        except (DeliveryError, NoticeError) as exc:
            self.store.record(
                notice.id,
                "delivery_failed",
                actor=self.actor,
                detail=f"reminder {number}: {exc}",
                fields={"last_error": str(exc), "sending_since": ""},
            )
            return "online"
        if is_manual(receipt):
            # Written to the outbox (or for the form): a person sends it, as the notice.
            event = "reminder_prepared"
            detail = (
                f"reminder {number} prepared: {receipt.channel} {receipt.destination}: "
                f"{receipt.detail}; awaiting manual sending"
            )
        else:
            event = "reminded"
            detail = f"reminder {number}: {receipt.channel} to {receipt.destination}"
        self.store.record(
            notice.id,
            event,
            actor=self.actor,
            detail=detail,
            fields={"last_message_at": self.clock()},
            increment={"reminders": 1},
        )
        return "reminded"

    def _escalate(self, notice: Notice, sender: NoticeSender) -> str:
        route = notice.route or self._current_route(notice)
        contacts: list[Recipient] = []
        if route is not None:
            if route.registrar_abuse:
                contacts.append(
                    Recipient(route.registrar or "registrar", route.registrar_abuse, "smtp")
                )
            if route.upstream_abuse:
                contacts.append(Recipient("upstream network", route.upstream_abuse, "smtp"))
        # One message per contact, each with its own number (and so its own Message-ID and
        # outbox file); a retry of a failed round reuses the same numbers.
        base = notice.count("escalation_messages")
        delivered: list[str] = []
        errors: list[str] = []
        for index, recipient in enumerate(contacts, start=1):
            if route is None:  # never: the contacts come from the route
                break
            try:
                outgoing = sender.render(
                    notice, route, kind="escalation", sequence=base + index, recipient=recipient
                )
                receipt = sender.deliver(notice, outgoing)
            except (DeliveryError, NoticeError) as exc:
                errors.append(f"{recipient.address}: {exc}")
                continue
            delivered.append(f"{recipient.provider} <{receipt.destination}>")
        if contacts and not delivered:
            self.store.record(
                notice.id,
                "delivery_failed",
                actor=self.actor,
                detail="escalation: " + "; ".join(errors),
                fields={"last_error": errors[-1], "sending_since": ""},
            )
            return "online"
        detail = (
            "escalated to " + ", ".join(delivered)
            if delivered
            else "no registrar or upstream contact known: an analyst must act"
        )
        if errors:
            detail += "; failed: " + "; ".join(errors)
        self.store.record(
            notice.id,
            "escalated",
            actor=self.actor,
            status="escalated",
            detail=detail,
            fields={"escalated_at": self.clock(), "last_message_at": self.clock()},
            increment={"escalations": 1, "escalation_messages": len(contacts)},
        )
        return "escalated"
