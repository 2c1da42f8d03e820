"""Verified removal: which notices are due for a recheck, and what a recheck's verdict does.

The schedule is the ``recheck`` sorted set (notice id scored by the unix time its next check
is due). :meth:`RecheckBook.claim_due` hands out due notices as
:class:`store.rechecks.RecheckTarget` (the noticed URL and hashes, with the confirm thresholds
of the list the hit matched). Fetching is the crawler's job (its recheck spider: the same
safety rules, User-Agent and hashing as a crawl, and a second, browser-like look before any
verdict that could close a notice); it answers with a :class:`store.rechecks.RecheckResult`,
and :meth:`RecheckBook.apply` decides what the verdict means. The rules:

* **refused** (the recheck's own address policy refused the fetch): a configuration error.
  It is reported and counted (``policy_refusals``), and the notice's state is unchanged.
* **removed** (404, 410, 451, or bytes that no longer match) is *confirmed* only when seen
  twice, the second time at least ``removal_confirm_after`` after the first; the notice then
  closes as ``removed`` with the time to removal as an interval, [last seen online, first
  seen gone]. A first sighting schedules the confirming check; one sooner does not count.
* **unreachable** (network errors, timeouts, 403, 429, 5xx ...) closes a notice as
  ``gone_unreachable`` (reported apart from removals) only after ``unreachable_confirmations``
  counted checks spanning at least ``unreachable_min_span``. A check counts only when it comes
  at least the schedule's first step after the last counted one, so ``recheck --all`` run
  twice in a row proves nothing.
* **online**: the last-seen time moves on and any pending removal or unreachable streak is
  forgotten; a reminder goes to the provider when the last message is ``reminder_interval``
  old (numbered, same reference); once the notice is ``escalate_after`` old the registrar and
  the upstream network are written to and the notice is flagged ``escalated``.
* A closed notice is still looked at every ``watch_interval`` for ``watch_for``: content seen
  online again **reopens** it (``reappeared``; the notifier sends a new numbered notice with
  the same reference and the removal clock restarts).

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
from store.clock import format_duration, parse_iso
from store.lists import ListStore
from store.rechecks import RecheckResult, RecheckTarget
from store.text import text
from takedown.channels.base import is_manual
from takedown.classification import Classifier
from takedown.errors import DeliveryError, NoticeError
from takedown.model import Recipient, Route
from takedown.notices import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Notice,
    NoticeNotFound,
    NoticeStore,
)
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
            watched = notice.status in CLOSED_STATUSES and self._watching(notice)
            if (notice.status not in OPEN_STATUSES and not watched) or notice.hit.url.startswith(
                "data:"
            ):
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
                        referer=hit.page or None,
                        media_type=hit.media_type,
                        container_sha256=hit.container_sha256 or None,
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

    def _watching(self, notice: Notice) -> bool:
        """Whether a closed notice is still watched for the content coming back."""
        closed = notice.time("closed_at") or notice.time("first_seen_gone")
        return bool(self.settings.watch_for) and (
            closed is None or self.clock() - closed < self.settings.watch_for
        )

    def apply(self, outcome: RecheckResult) -> str:
        """Record one verdict and act on it; returns what happened: ``removed``,
        ``gone_unreachable``, ``removal_pending`` (first sighting, or a confirming check too
        soon), ``unreachable``, ``online``, ``reminded``, ``escalated``, ``refused`` (by the
        address policy), ``reappeared`` (a closed notice's content is back), ``watched`` (a
        closed notice still gone) or ``closed`` (nothing to do for this notice)."""
        try:
            notice = self.store.get(outcome.notice_id)
        except NoticeNotFound:
            self.client.zrem(self.keys.recheck, outcome.notice_id)
            return "closed"
        checked = parse_iso(outcome.checked_at)
        detail = outcome.reason + (
            f" (http {outcome.http_status})"
            if outcome.http_status and str(outcome.http_status) not in outcome.reason
            else ""
        )
        if outcome.profile == "browser":
            detail += " [browser-like second look]"
        if outcome.state not in ("online", "removed", "unreachable", "refused"):
            raise ValueError(f"unknown recheck state {outcome.state!r}")
        if notice.status in CLOSED_STATUSES:
            return self._watched(notice, outcome, checked=checked, detail=detail)
        if notice.status not in OPEN_STATUSES:
            self.client.zrem(self.keys.recheck, notice.id)
            return "closed"
        if outcome.state == "refused":
            self.store.record(
                notice.id,
                "recheck_refused",
                actor=self.actor,
                detail=f"configuration error, notice unchanged: {detail}",
                increment={"policy_refusals": 1},
                recheck_at=checked + self.settings.recheck_delay(notice.count("checks")),
            )
            return "refused"
        if outcome.state == "removed":
            return self._removal_seen(notice, checked=checked, detail=detail)
        if outcome.state == "unreachable":
            return self._unreachable(notice, checked=checked, detail=detail)
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
                "last_unreachable_at": "",
                "removal_seen_at": "",
            },
            increment={"checks": 1},
            recheck_at=checked + self.settings.recheck_delay(checks),
        )
        notice = self.store.get(notice.id)
        return self._follow_up(notice)

    def _removal_seen(self, notice: Notice, *, checked: float, detail: str) -> str:
        """A removed verdict: the first sighting waits for a confirming look, the confirming
        look ``removal_confirm_after`` later closes the notice."""
        wait = self.settings.removal_confirm_after
        seen = notice.time("removal_seen_at")
        if seen is not None and checked - seen >= wait:
            self._close(
                notice,
                "removed",
                gone_at=seen,
                checked=checked,
                reason=f"{detail}; confirmed {format_duration(checked - seen)} after "
                f"it was first seen gone",
            )
            return "removed"
        if seen is None:
            note = f"{detail}: seen gone; confirming in {format_duration(wait)}"
            fields: dict[str, str | float | int] = {"removal_seen_at": checked}
            due = checked + wait
        else:
            note = (
                f"{detail}: not counted, only {format_duration(max(0.0, checked - seen))} "
                f"after the first sighting (a removal is confirmed {format_duration(wait)} later)"
            )
            fields = {}
            due = seen + wait
        self.store.record(
            notice.id,
            "removal_seen",
            actor=self.actor,
            detail=note,
            fields={**fields, "last_checked": checked},
            increment={"checks": 1},
            recheck_at=due,
        )
        return "removal_pending"

    def _unreachable(self, notice: Notice, *, checked: float, detail: str) -> str:
        """An unreachable verdict counts towards ``gone_unreachable`` only when spaced from
        the last counted one; enough of them over ``unreachable_min_span`` close the notice."""
        settings = self.settings
        needed = settings.unreachable_confirmations
        last = notice.time("last_unreachable_at")
        if last is not None and checked - last < settings.check_spacing:
            self.store.record(
                notice.id,
                "unreachable",
                actor=self.actor,
                detail=f"{detail} (not counted: {format_duration(max(0.0, checked - last))} "
                f"after the last counted check)",
                fields={"last_checked": checked},
                increment={"checks": 1},
                recheck_at=max(checked + settings.recheck_delay(0), last + settings.check_spacing),
            )
            return "unreachable"
        streak = notice.count("unreachable_streak") + 1
        first_failure = notice.time("first_unreachable_at") or checked
        span = checked - first_failure
        if streak >= needed and span >= settings.unreachable_min_span:
            self._close(
                notice,
                "gone_unreachable",
                gone_at=first_failure,
                checked=checked,
                reason=f"unreachable on {streak} checks over {format_duration(span)}: {detail}",
            )
            return "gone_unreachable"
        checks = notice.count("checks") + 1
        self.store.record(
            notice.id,
            "unreachable",
            actor=self.actor,
            detail=f"{detail} ({streak} of {needed} checks over {format_duration(span)} of "
            f"{format_duration(settings.unreachable_min_span)})",
            fields={
                "unreachable_streak": streak,
                "first_unreachable_at": first_failure,
                "last_unreachable_at": checked,
                "last_checked": checked,
            },
            increment={"checks": 1},
            recheck_at=checked + settings.recheck_delay(checks),
        )
        return "unreachable"

    def _close(
        self, notice: Notice, status: str, *, gone_at: float, checked: float, reason: str
    ) -> None:
        watch = self.settings.watch_for > 0
        self.store.record(
            notice.id,
            status,
            actor=self.actor,
            status=status,
            detail=reason,
            fields={
                "first_seen_gone": gone_at,
                "last_checked": checked,
                "closed_at": checked,
                "removal_reason": reason,
            },
            increment={"checks": 1},
            recheck_at=checked + self.settings.watch_interval if watch else None,
            stop_rechecks=not watch,
        )

    def _watched(
        self, notice: Notice, outcome: RecheckResult, *, checked: float, detail: str
    ) -> str:
        """A look at a closed notice: content online again reopens it; anything else keeps
        it closed (and watched until ``watch_for`` is over)."""
        if outcome.state == "online":
            self.store.reopen(
                notice.id,
                actor=self.actor,
                event="reappeared",
                detail=f"the content is online again: {detail}",
                at=checked,
            )
            return "reappeared"
        if not self._watching(notice):
            self.client.zrem(self.keys.recheck, notice.id)
            return "closed"
        self.client.zadd(self.keys.recheck, {notice.id: checked + self.settings.watch_interval})
        self.client.hset(self.keys.notice(notice.id), "last_checked", repr(checked))
        return "watched"

    # -- reminders and escalation -------------------------------------------------------------

    def _follow_up(self, notice: Notice) -> str:
        sender = self.sender
        if sender is None:
            return "online"
        now = self.clock()
        if not notice.fields.get("classification"):
            notice = self._classify_earlier_notice(notice)
        sent_at = notice.time("sent_at") or notice.created
        if notice.status == "sent" and now - sent_at >= self.settings.escalate_after:
            return self._escalate(notice, sender)
        last_message = notice.time("last_message_at") or sent_at
        if now - last_message >= self.settings.reminder_interval:
            return self._remind(notice, sender)
        return "online"

    def _classify_earlier_notice(self, notice: Notice) -> Notice:
        """A notice sent before classifications were stored with it: its reminders and
        escalations take the classification its list's category maps to now (configuration
        or the list's mapping), recorded as a ``classified`` event. With none, the message is
        not rendered (the failure names the missing classification) until a mapping exists."""
        hit = notice.hit
        decision = Classifier(self.settings.classification, self._lists()).decide(
            hit.list, hit.category
        )
        if decision is None:
            return notice
        self.store.record(
            notice.id,
            "classified",
            actor=self.actor,
            fields={"classification": decision.value},
            detail=f"{decision.value} from {decision.source} (for a notice sent before "
            "classifications were kept with each notice)",
        )
        return self.store.get(notice.id)

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
