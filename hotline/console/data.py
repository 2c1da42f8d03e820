"""What the console's pages and API read and do, once for both.

Each function takes the :class:`~hotline.console.state.ConsoleState` (and the acting
:class:`~hotline.console.state.Principal` when it changes something) and returns plain
JSON-ready data; the API returns it as it is, the pages render it. Every change goes through
the same store method the CLI uses, and lands in the audit stream with the principal's name.
Nothing here ever fetches or holds an image: records carry URLs and hashes only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, overload

from crawler.seeds import parse_seed_lines
from hotline.console.security import ApiError
from hotline.console.state import ConsoleState, Principal
from hotline.scheduler import RunStarter, StoreRunCreator, start_now
from matchers.errors import MatcherError
from matchers.lists import ALLOW, KNOWN, HashList, parse_csv_text, validate_list_name
from store.audit import append_event
from store.clock import iso, parse_iso
from store.errors import RunNotFound, ScheduleError, ScheduleExists, ScheduleNotFound
from store.lists import EVERY_CATEGORY, ClassificationMap, normalise_classification
from store.options import CrawlOptions
from store.queue import HitRecord, StreamEntry
from store.review import ReviewConflict, ReviewDesk, ReviewItem, ReviewNotFound, ReviewReasonError
from store.runs import STATUSES as RUN_STATUSES
from store.runs import RunRecord
from store.schedules import parse_trigger, validate_schedule_name
from takedown.notice import reference_for
from takedown.notices import (
    CLOSED_STATUSES,
    UNROUTABLE,
    WAITING_STATUSES,
    LockBusy,
    NotAwaitingManual,
    Notice,
    NoticeNotFound,
    NoticeStateError,
)
from takedown.notices import (
    STATUSES as NOTICE_STATUSES,
)
from takedown.stats import ProviderStats, provider_stats

__all__ = [
    "MAX_PAGE",
    "HitFilter",
    "LazyRows",
    "Page",
    "audit_events",
    "cancel_run",
    "decide_review",
    "hit_detail",
    "hits_csv",
    "list_hits",
    "list_runs",
    "lists_info",
    "manual_delivery",
    "notice_action",
    "notice_detail",
    "notices",
    "overview",
    "provider_rows",
    "review_detail",
    "review_items",
    "run_detail",
    "schedule_action",
    "schedules",
    "stats",
    "submit_report",
    "upload_list",
]

#: Most records one page of a listing holds.
MAX_PAGE: Final = 500
#: Upload size cap of a hash list in the console (a list of 10 M SHA-256 rows is about 1 GB;
#: lists that large are imported with ``hotline hashes import``).
MAX_LIST_UPLOAD: Final = 256 * 1024 * 1024
#: Most seed URLs one report may carry.
MAX_REPORT_URLS: Final = 1000
#: What a run started from the console says started it: ``console:<user>``.
ORIGIN_PREFIX: Final = "console:"
WEEK: Final = 7 * 86400.0
_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class Page:
    """``limit`` records from ``offset`` of a listing, with its total."""

    limit: int = 50
    offset: int = 0

    def take(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        chunk = list(items[self.offset : self.offset + self.limit])
        # From the page's bounds, not its rows: a lazy listing's page comes back short when
        # a record went away after the listing counted it.
        following = min(self.offset + self.limit, len(items))
        return {
            "items": chunk,
            "total": len(items),
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": following if following < len(items) else None,
        }


def _audit(
    state: ConsoleState, who: Principal, incident: str, event: str, detail: str = ""
) -> None:
    append_event(
        state.session.client,
        state.session.keys,
        incident=incident,
        event=event,
        actor=who.actor,
        detail=detail,
    )


# -- overview ------------------------------------------------------------------------------


def overview(state: ConsoleState) -> dict[str, Any]:
    """Running crawls with their live counts, queue depths, notices by state, removals of
    the last seven days, and the health flags of recent runs."""
    session = state.session
    client, keys = session.client, session.keys
    now = time.time()
    recent = session.runs().list(limit=50)
    active = [r.as_json(now=now) for r in recent if r.status in {"queued", "running"}]
    counts = state.takedown.store.counts()
    desk = ReviewDesk(client, keys)
    pending_review = desk.pending()
    closed = state.takedown.store.fields_of_each(("closed_at",), "removed").values()
    removed_week = sum(1 for (at,) in closed if at and now - float(at) <= WEEK)
    health: dict[str, list[str]] = {}
    for run in recent[:20]:
        for flag in run.health:
            health.setdefault(flag, []).append(run.id)
    return {
        "time": iso(now),
        "active_runs": active,
        "queues": {
            "hits": session.hits().count("confirmed"),
            "review_pending": pending_review,
            "notices_pending": sum(counts.get(s, 0) for s in ("queued", *WAITING_STATUSES)),
            "dead_letters": int(client.xlen(keys.dead_letters)),
        },
        "notices": counts,
        "removed_this_week": removed_week,
        "health": [{"flag": flag, "runs": runs} for flag, runs in sorted(health.items())],
    }


# -- reports and runs ----------------------------------------------------------------------


def submit_report(
    state: ConsoleState, who: Principal, lines: Iterable[str], *, source: str
) -> dict[str, Any]:
    """Start an on-demand run of the reported URLs (one per line; ``#`` comments and blank
    lines skipped): a queued run record (origin ``console:<user>``) whose crawl is launched
    at once, or left to the workers when the console queues distributed runs."""
    seeds, problems = parse_seed_lines(list(lines), source=source)
    rejected = [
        {"source": p.source, "line": p.line, "url": p.text, "reason": p.reason} for p in problems
    ]
    if not seeds:
        raise ApiError(422, "no_valid_url", "no valid URL to crawl: " + _first_problem(problems))
    if len(seeds) > MAX_REPORT_URLS:
        raise ApiError(422, "too_many_urls", f"at most {MAX_REPORT_URLS} URLs per report")
    options: CrawlOptions = state.settings.crawl_options
    run_id = StoreRunCreator(state.session)(
        seeds=[s.url for s in seeds], options=options, origin=f"{ORIGIN_PREFIX}{who.name}"
    )
    if not options.distributed:
        state.launch(run_id)
    _audit(state, who, f"run:{run_id}", "report_submitted", f"{len(seeds)} URLs")
    return {"run": run_detail(state, run_id), "rejected": rejected}


def _first_problem(problems: Sequence[Any]) -> str:
    return str(problems[0]) if problems else "none given"


def list_runs(state: ConsoleState, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    if status is not None and status not in RUN_STATUSES:
        raise ApiError(422, "bad_status", f"status must be one of {', '.join(RUN_STATUSES)}")
    now = time.time()
    return [r.as_json(now=now) for r in state.session.runs().list(limit=limit, status=status)]


def _run(state: ConsoleState, run_id: str) -> RunRecord:
    try:
        return state.session.runs().get(run_id)
    except RunNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


def run_detail(state: ConsoleState, run_id: str) -> dict[str, Any]:
    return _run(state, run_id).as_json(full=True, now=time.time())


def cancel_run(state: ConsoleState, who: Principal, run_id: str) -> dict[str, Any]:
    run = _run(state, run_id)
    if not state.session.runs().request_cancel(run.id):
        raise ApiError(409, "conflict", f"run {run.id} is {run.status}: it has ended already")
    _audit(state, who, f"run:{run.id}", "run_cancel_requested")
    return run_detail(state, run.id)


# -- schedules -----------------------------------------------------------------------------


def schedules(state: ConsoleState) -> list[dict[str, Any]]:
    return [s.as_json() for s in state.session.schedules().all()]


def schedule_action(
    state: ConsoleState,
    who: Principal,
    action: str,
    name: str,
    form: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``add`` (``form``: seeds, every or cron, depth, max_pages), ``pause``, ``resume``,
    ``remove`` or ``run`` (start a run now)."""
    store = state.session.schedules()
    try:
        if action == "add":
            form = form or {}
            validate_schedule_name(name)
            trigger = parse_trigger(
                _blank_none(form.get("every")),
                _blank_none(form.get("cron")),
                min_interval=state.config.schedule_min_interval(),
            )
            seeds, problems = parse_seed_lines(_lines(form.get("seeds")), source=f"schedule {name}")
            if problems:
                raise ApiError(422, "bad_seed", str(problems[0]))
            base = state.settings.crawl_options
            options = CrawlOptions(
                depth=_int(form.get("depth"), base.depth, "depth"),
                max_pages=_int(form.get("max_pages"), base.max_pages, "max_pages"),
                allow_private_networks=base.allow_private_networks,
                allowed_networks=base.allowed_networks,
                distributed=base.distributed,
            )
            schedule = store.add(name, trigger, [s.url for s in seeds], options)
            result = schedule.as_json()
        elif action == "pause":
            result = store.pause(name).as_json()
        elif action == "resume":
            result = store.resume(name).as_json()
        elif action == "remove":
            store.remove(name)
            result = {"name": name, "removed": True}
        elif action == "run":
            store.get(name)
            starter = RunStarter(StoreRunCreator(state.session), state.launch)
            result = {"schedule": name, "run_id": start_now(store, name, starter)}
        else:
            raise ApiError(404, "not_found", f"no schedule action {action!r}")
    except ScheduleExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except ScheduleNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ScheduleError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    _audit(state, who, f"schedule:{name}", f"schedule_{action}")
    return result


def _blank_none(value: Any) -> str | None:
    return None if value is None or not str(value).strip() else str(value).strip()


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines()
    return [str(v) for v in value]


def _int(value: Any, default: int, field: str) -> int:
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ApiError(422, "invalid", f"{field}: expected a whole number") from None
    if number < 0 or (field == "max_pages" and number < 1):
        raise ApiError(422, "invalid", f"{field}: {number} is out of range")
    return number


# -- hits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HitFilter:
    run: str | None = None
    list: str | None = None
    provider: str | None = None
    since: str | None = None  # ISO date or time, inclusive
    until: str | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        return _when(self.since, "since", end=False), _when(self.until, "until", end=True)


def _when(value: str | None, field: str, *, end: bool) -> float | None:
    if not value:
        return None
    raw = value.strip()
    try:
        if len(raw) == 10:  # a date: the whole day
            start = parse_iso(raw + "T00:00:00Z")
            return start + 86400.0 - 0.001 if end else start
        return parse_iso(raw if raw.endswith("Z") else raw + "Z")
    except ValueError:
        raise ApiError(
            422, "invalid", f"{field}: expected a date (2026-12-04) or UTC time"
        ) from None


class LazyRows(Sequence[dict[str, Any]], Generic[_Item]):
    """A listing whose length is known at once and whose rows are made only when read: a
    page of 50 out of 100 000 hits or notices costs 50 rows, not 100 000."""

    def __init__(
        self, items: Sequence[_Item], make: Callable[[Sequence[_Item]], list[dict[str, Any]]]
    ) -> None:
        self._items = items
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return self._make(self._items[index])
        return self._make([self._items[index]])[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self._items), MAX_PAGE):
            yield from self[start : start + MAX_PAGE]


#: What a hit row shows of its notice: status and provider (the notice's own fields).
_NOTICE_SUMMARY: Final = ("status", "provider")


def _hit_json(record: HitRecord, notice: tuple[str, ...] | None) -> dict[str, Any]:
    data = record.as_json()
    data["id"] = record.incident
    data["notice"] = (
        None
        if notice is None
        else {
            "id": record.incident,
            "reference": reference_for(record.incident),
            "status": notice[0],
            "provider": notice[1] or None,
        }
    )
    return data


def list_hits(state: ConsoleState, flt: HitFilter) -> LazyRows[StreamEntry]:
    """Confirmed hits, newest first, each with its notice (reference, status, provider).

    Redis selects the entries by run and list and names each one's incident and first-seen
    time; notices are read as their status and provider only (all of them to filter by
    provider, else the page's); a row's record is read and made when its page is."""
    since, until = flt.bounds()
    store = state.takedown.store
    # Every notice's provider when the filter needs it; else only the page's notices.
    notices = store.fields_of_each(_NOTICE_SUMMARY) if flt.provider else None
    queue = state.session.hits()
    matched: list[StreamEntry] = []
    for entry in queue.select("confirmed", crawl=flt.run or "", list_name=flt.list or ""):
        if notices is not None:
            notice = notices.get(entry.incident)
            if notice is None or (notice[1] or UNROUTABLE) != flt.provider:
                continue
        if since is not None or until is not None:
            try:
                seen = parse_iso(entry.first_seen)
            except ValueError:
                continue
            if (since is not None and seen < since) or (until is not None and seen > until):
                continue
        matched.append(entry)
    matched.reverse()

    def rows(page: Sequence[StreamEntry]) -> list[dict[str, Any]]:
        records = [r for _, r in queue.records("confirmed", [entry.id for entry in page])]
        summaries = notices
        if summaries is None:
            summaries = store.fields_of([r.incident for r in records], _NOTICE_SUMMARY)
        return [_hit_json(r, summaries.get(r.incident)) for r in records]

    return LazyRows(matched, rows)


def hit_detail(state: ConsoleState, incident: str) -> dict[str, Any]:
    """One hit (its latest sighting) with every hash, the match, and its notice with the
    timeline."""
    queue = state.session.hits()
    record = queue.latest("confirmed", incident)
    if record is None:  # the latest purged, an earlier sighting kept: find it in the stream
        sightings = [e.id for e in queue.select("confirmed") if e.incident == incident]
        found = queue.records("confirmed", sightings[-1:])
        if not found:
            raise ApiError(404, "not_found", f"no confirmed hit {incident!r}")
        record = found[0][1]
    notice: Notice | None = None
    with contextlib.suppress(NoticeNotFound):
        notice = state.takedown.store.get(incident)
    summary = None if notice is None else (notice.status, notice.fields.get("provider", ""))
    data = _hit_json(record, summary)
    if notice is not None:
        data["notice"]["timeline"] = [e.to_dict() for e in state.takedown.store.timeline(notice.id)]
    return data


#: Columns of the hits CSV export, in order.
CSV_COLUMNS: Final = (
    "id",
    "first_seen",
    "url",
    "page",
    "list",
    "entry",
    "category",
    "algorithm",
    "distance",
    "corroborated_by",
    "sha256",
    "md5",
    "sha1",
    "pdq",
    "phash",
    "ip",
    "crawl",
    "notice_reference",
    "notice_status",
    "provider",
)


def hits_csv(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The hits as CSV, a line at a time (cells that a spreadsheet would run as a formula are
    prefixed with an apostrophe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        notice = row.get("notice") or {}
        values = {
            **row,
            "notice_reference": notice.get("reference"),
            "notice_status": notice.get("status"),
            "provider": notice.get("provider"),
        }
        writer.writerow(_cell(values.get(c)) for c in CSV_COLUMNS)
        yield buffer.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


# -- review --------------------------------------------------------------------------------


def _desk(state: ConsoleState) -> ReviewDesk:
    return ReviewDesk(state.session.client, state.session.keys)


def _review_json(item: ReviewItem) -> dict[str, Any]:
    return item.as_json()


def review_items(state: ConsoleState, *, pending: bool) -> LazyRows[StreamEntry]:
    """Near misses, newest first (only undecided ones with ``pending``); as the hits, a
    row's record and decision are read when its page is."""
    queue, desk = state.session.hits(), _desk(state)
    entries = queue.select("review")
    if pending:
        decided = desk.decided()
        entries = [e for e in entries if e.incident not in decided]
    entries.reverse()

    def rows(page: Sequence[StreamEntry]) -> list[dict[str, Any]]:
        records = queue.records("review", [entry.id for entry in page])
        decisions = desk.decisions_of([r.incident for _, r in records])
        return [
            _review_json(ReviewItem(r, entry, decisions.get(r.incident))) for entry, r in records
        ]

    return LazyRows(entries, rows)


def review_detail(state: ConsoleState, item_id: str) -> dict[str, Any]:
    desk = _desk(state)
    try:
        item = desk.find(item_id)
    except ReviewNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    data = _review_json(item)
    data["timeline"] = desk.timeline(item.id)
    return data


def decide_review(
    state: ConsoleState,
    who: Principal,
    item_id: str,
    decision: str,
    reason: str,
    *,
    allow_list: str | None = None,
) -> dict[str, Any]:
    """Confirm (it becomes a hit, noticed once) or dismiss (never reported again; with
    ``allow_list`` the image's hashes also go to that allow-list) a review item."""
    desk = _desk(state)
    try:
        if decision == "confirm":
            outcome = desk.confirm(item_id, actor=who.actor, reason=reason)
        elif decision == "dismiss":
            outcome = desk.dismiss(
                item_id, actor=who.actor, reason=reason, allow_list=allow_list or None
            )
        else:
            raise ApiError(422, "invalid", "decision must be confirm or dismiss")
    except ReviewNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ReviewConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except (ReviewReasonError, MatcherError, ValueError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    data: dict[str, Any] = {"id": outcome.item.id, "new": outcome.new}
    data.update(outcome.decision.as_json())
    allowed = outcome.allow_listed
    data["allow_list"] = (
        None if allowed is None else {"name": allowed.list, "version": allowed.version}
    )
    return data


# -- notices -------------------------------------------------------------------------------


def notices(state: ConsoleState, *, status: str | None, provider: str | None) -> LazyRows[str]:
    """Notices, newest first, each with its reference; a row is read when its page is."""
    if status is not None and status not in NOTICE_STATUSES:
        raise ApiError(422, "bad_status", f"status must be one of {', '.join(NOTICE_STATUSES)}")
    store = state.takedown.store
    ids = store.ids(status, provider=provider)
    ids.reverse()

    def rows(page: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for notice in store.get_many(page):
            data = notice.as_json()
            data["reference"] = reference_for(notice.id)
            out.append(data)
        return out

    return LazyRows(ids, rows)


def _notice(state: ConsoleState, notice_id: str) -> Notice:
    try:
        return state.takedown.store.find(notice_id)
    except NoticeNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


def notice_detail(state: ConsoleState, notice_id: str) -> dict[str, Any]:
    notice = _notice(state, notice_id)
    data = notice.as_json()
    data["reference"] = reference_for(notice.id)
    data["hit"] = notice.hit.as_json()
    data["classification"] = notice.fields.get("classification") or None
    data["timeline"] = [e.to_dict() for e in state.takedown.store.timeline(notice.id)]
    route = notice.route
    recipient = None if route is None else route.recipient
    data["form_url"] = (
        recipient.form_url
        if recipient is not None and notice.fields.get("channel") == "form"
        else None
    )
    return data


def manual_delivery(state: ConsoleState, notice_id: str) -> dict[str, Any] | None:
    """The text and X-ARF report of a notice to send by hand (outbox or web form), rendered
    as the notifier renders them; None when it has no route or no identity is configured."""
    notice = _notice(state, notice_id)
    sender = state.takedown.sender
    route = notice.route
    if sender is None or route is None or route.recipient is None:
        return None
    outgoing = sender.render(notice, route, kind="notice", sequence=0)
    return {
        "subject": outgoing.subject,
        "recipient": outgoing.recipient.address or outgoing.recipient.form_url,
        "text": outgoing.text,
        "xarf": dict(outgoing.xarf),
        "message_id": outgoing.message_id,
    }


def notice_action(
    state: ConsoleState, who: Principal, action: str, notice_id: str, *, note: str = ""
) -> dict[str, Any]:
    """``resend``, ``mark-sent`` (``note``: what was done) or ``reopen`` (``note``: why)."""
    notice = _notice(state, notice_id)
    takedown = state.takedown
    try:
        if action == "mark-sent":
            recheck_at = takedown.store.clock() + takedown.settings.recheck_delay(0)
            takedown.store.mark_sent(
                notice.id, actor=who.actor, recheck_at=recheck_at, note=note.strip()
            )
            outcome = "sent"
        elif action in {"resend", "reopen"}:
            if takedown.sender is None:
                raise ApiError(
                    409, "no_identity", "notices cannot be sent: no hotline identity configured"
                )
            worker = takedown.notifier()
            if action == "resend":
                outcome = worker.resend(notice.id, actor=who.actor)
            else:
                if not note.strip():
                    raise ApiError(422, "invalid", "reason: say why the notice is reopened")
                outcome = worker.reopen(notice.id, actor=who.actor, reason=note.strip())
        else:
            raise ApiError(404, "not_found", f"no notice action {action!r}")
    except (NoticeStateError, NotAwaitingManual) as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except LockBusy as exc:
        raise ApiError(409, "busy", f"{exc}; try again in a moment") from None
    after = takedown.store.get(notice.id)
    return {
        "id": notice.id,
        "reference": reference_for(notice.id),
        "outcome": outcome,
        "status": after.status,
        "error": after.fields.get("last_error") or None,
    }


# -- stats, lists, audit -------------------------------------------------------------------


def provider_rows(state: ConsoleState) -> list[ProviderStats]:
    return provider_stats(state.takedown.store.figures())


def stats(state: ConsoleState) -> dict[str, Any]:
    rows = provider_rows(state)
    return {
        "providers": [r.as_dict() for r in rows],
        "statuses": state.takedown.store.counts(),
        "closed_statuses": list(CLOSED_STATUSES),
    }


def lists_info(state: ConsoleState) -> list[dict[str, Any]]:
    return [info.as_json() for info in state.session.lists().info()]


def upload_list(
    state: ConsoleState,
    who: Principal,
    name: str,
    body: bytes,
    *,
    filename: str,
    allow: bool = False,
    classification: str = "",
) -> dict[str, Any]:
    """Store a new version of list ``name`` from a native CSV (``algorithm,hash,id,category``):
    every row valid or nothing is stored; the list's thresholds (and, unless
    ``classification`` is given, its classification mapping) carry over."""
    try:
        validate_list_name(name)
        text = body.decode("utf-8-sig")
        entries = parse_csv_text(text, source=filename or "upload")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid", f"{filename}: not UTF-8 text") from None
    except (MatcherError, ValueError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    if not entries:
        raise ApiError(422, "invalid", f"{filename}: no hash rows")
    lists = state.session.lists()
    earlier = {info.name: info for info in lists.info()}.get(name)
    thresholds = None if earlier is None else earlier.thresholds
    hash_list = HashList(name, entries, thresholds, kind=ALLOW if allow else KNOWN)
    mapping = None
    if classification.strip():
        if allow:
            raise ApiError(422, "invalid", "an allow-list is never noticed: no classification")
        try:
            mapping = ClassificationMap(
                {EVERY_CATEGORY: normalise_classification(classification.strip())}
            )
        except ValueError as exc:
            raise ApiError(422, "invalid", f"classification: {exc}") from None
    info = lists.save(hash_list, classification=mapping)
    _audit(
        state, who, f"list:{name}", "list_uploaded", f"version {info.version}, {info.total} entries"
    )
    return info.as_json()


def audit_events(state: ConsoleState, *, limit: int) -> list[dict[str, str]]:
    """The newest ``limit`` events of the audit stream, newest first."""
    events = [e.to_dict() for e in state.takedown.store.audit(count=limit)]
    events.reverse()
    return events
