"""The scheduler daemon (``hotline scheduler``): start one run for every due slot of every
schedule, and the one function that starts a run (also used by ``hotline schedule run``).

Each tick reads the due schedules, claims each slot (:meth:`ScheduleStore.claim`, an atomic
compare-and-set that also moves the schedule to its first slot after now) and starts one run
per slot won. Several schedulers may run at once, on one machine or many: they race on the
claim and exactly one wins each slot, so there is no leader to elect and no failover delay
when one of them stops. Between ticks the daemon waits on an event until the earliest slot
(at most :data:`MAX_WAIT` seconds, so schedules added meanwhile are seen), and SIGINT or
SIGTERM ends the wait at once.

Starting a run is two steps behind two injectable callables: ``create_run`` makes the queued
run record (:meth:`store.runs.RunStore.create`) and ``launch`` starts ``hotline crawl --run ID``
as a detached process whose output goes to ``<data dir>/runs/<ID>.log``. The log holds what
the crawl prints (counts, URLs, errors), never image content.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from hotline.errors import HotlineError
from hotline.paths import DATA_DIR_MODE
from hotline.services import Session
from store.clock import iso
from store.errors import RunExists, ScheduleCorrupt, ScheduleError, StoreError
from store.options import CrawlOptions
from store.runs import RunStore, new_run_id, schedule_origin
from store.schedules import DEFAULT_CLAIM_BATCH, Schedule, ScheduleStore

__all__ = [
    "MAX_WAIT",
    "CrawlLauncher",
    "RunStartError",
    "RunStarter",
    "Scheduler",
    "SchedulerStats",
    "StartResult",
    "StoreRunCreator",
    "default_identity",
    "run_origin",
    "run_status",
    "start_now",
    "start_run",
]

#: Longest wait between two ticks, in seconds (a schedule added meanwhile is seen this late).
MAX_WAIT: Final = 5.0
#: Shortest wait between two ticks, so a slot that stays due cannot make the loop spin.
MIN_WAIT: Final = 0.1
#: Seconds after which a claimed slot whose start was never recorded counts as lost (its
#: scheduler died between the claim and the start) and is started by another scheduler.
LOST_SLOT_GRACE: Final = 60.0
#: Directory under the data directory that holds one log per launched crawl.
RUN_LOG_DIR: Final = "runs"
_SAFE_RUN_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class RunStartError(HotlineError):
    """A run could not be created or its crawl could not be launched."""


class CreateRun(Protocol):
    def __call__(
        self, *, seeds: list[str], options: CrawlOptions, origin: str, run_id: str | None = None
    ) -> str: ...


#: Starts the crawl of a queued run, given its id.
Launch = Callable[[str], None]
#: Starts one run for a schedule and a slot (None: on demand); returns the run id.
StartFn = Callable[[Schedule, float | None], str]


def default_identity() -> str:
    return f"scheduler@{socket.gethostname()}:{os.getpid()}"


def slot_run_id(name: str, slot: float) -> str:
    """The id of the run a schedule starts for ``slot``: the same every time it is computed,
    so a slot whose start is retried (after a scheduler died) cannot make a second run. It has
    the crawl id format: the slot's UTC second and a suffix from the schedule's name."""
    return new_run_id(slot, hashlib.sha256(name.encode()).hexdigest()[:6])


def run_origin(name: str, slot: float | None) -> str:
    """What a run record says started it: ``schedule:NAME@SLOT`` (the UTC due time it was
    started for) or ``schedule:NAME@manual`` (``schedule run``)."""
    return f"{schedule_origin(name)}@{'manual' if slot is None else iso(slot)}"


# -- starting a run ------------------------------------------------------------------------


class StoreRunCreator:
    """``RunStore(client, keys).create``: a queued run record."""

    def __init__(self, session: Session) -> None:
        self.store = RunStore(session.client, session.keys)

    def __call__(
        self, *, seeds: list[str], options: CrawlOptions, origin: str, run_id: str | None = None
    ) -> str:
        """Create the queued run; a slot's run that exists already (a retried start) is
        returned as it is: launching it again is harmless, since only a queued run starts."""
        try:
            return self.store.create(
                seeds=seeds,
                options=options,
                origin=origin,
                run_id=run_id,
                distributed=options.distributed,
            )
        except RunExists:
            if run_id is None:  # a new random id that is taken: nothing sensible to return
                raise RunStartError("cannot create the run: a new run id was taken") from None
            return run_id
        except (ValueError, StoreError) as exc:
            raise RunStartError(f"cannot create the run: {exc}") from None


def run_status(session: Session, run_id: str) -> str | None:
    """The status of a run record, or None when there is no such run."""
    if not run_id:
        return None
    return RunStore(session.client, session.keys).status(run_id)


class CrawlLauncher:
    """Launch ``hotline crawl --run ID`` as a detached process (its own session, so a
    Ctrl-C of the scheduler does not stop it); output goes to ``<log_dir>/<ID>.log``."""

    def __init__(
        self,
        log_dir: Path,
        *,
        command: Sequence[str] = (sys.executable, "-m", "hotline.cli", "crawl", "--run"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.command = tuple(command)
        self.env = env
        self._children: list[subprocess.Popen[bytes]] = []

    def __call__(self, run_id: str) -> None:
        if _SAFE_RUN_ID.fullmatch(run_id) is None:
            raise RunStartError(f"run id {run_id!r} is not safe as a file name")
        self.reap()
        try:
            self.log_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
            with (self.log_dir / f"{run_id}.log").open("ab") as log:
                child = subprocess.Popen(
                    [*self.command, run_id],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=None if self.env is None else dict(self.env),
                )
        except OSError as exc:
            raise RunStartError(f"cannot launch the crawl of run {run_id}: {exc}") from None
        self._children.append(child)

    def reap(self) -> None:
        """Collect the exit status of crawls that ended (no zombies in a long-lived daemon)."""
        self._children = [c for c in self._children if c.poll() is None]


class RunStarter:
    """Create the queued run, then launch its crawl; a distributed run is crawled by the
    workers (``hotline worker``), which find it as soon as it is created."""

    def __init__(self, create_run: CreateRun, launch: Launch) -> None:
        self.create_run = create_run
        self.launch = launch

    def __call__(self, schedule: Schedule, slot: float | None) -> str:
        run_id = self.create_run(
            seeds=list(schedule.seeds),
            options=schedule.options,
            origin=run_origin(schedule.name, slot),
            run_id=None if slot is None else slot_run_id(schedule.name, slot),
        )
        if not schedule.options.distributed:
            self.launch(run_id)
        return run_id


def start_run(
    session: Session,
    schedule: Schedule,
    *,
    data_dir: Path,
    slot: float | None = None,
    create_run: CreateRun | None = None,
    launch: Launch | None = None,
) -> str:
    """Start one run of ``schedule`` (for ``slot``, or on demand) and return its id."""
    starter = RunStarter(
        create_run or StoreRunCreator(session),
        launch or CrawlLauncher(data_dir / RUN_LOG_DIR),
    )
    return starter(schedule, slot)


def start_now(
    store: ScheduleStore, name: str, start: StartFn, *, clock: Callable[[], float] | None = None
) -> str:
    """``schedule run NAME``: start a run now, whatever the schedule's timing (and paused or
    not); the next due time stays as it is."""
    schedule = store.get(name)
    now = (clock or store.clock)()
    try:
        run_id = start(schedule, None)
    except RunStartError as exc:
        store.record_failure(name, str(exc), at=now)
        raise
    store.record_start(name, run_id, started_at=now)
    return run_id


# -- the daemon ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartResult:
    """One claimed slot and what came of it."""

    name: str
    slot: float
    run_id: str = ""
    error: str = ""
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.error

    def as_json(self) -> dict[str, Any]:
        return {
            "schedule": self.name,
            "slot": iso(self.slot),
            "run_id": self.run_id or None,
            "error": self.error or None,
            "skipped_slots": self.skipped,
        }


@dataclass
class SchedulerStats:
    ticks: int = 0
    started: int = 0
    failed: int = 0
    results: list[StartResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "started": self.started,
            "failed": self.failed,
            "runs": [r.as_json() for r in self.results],
        }


class Scheduler:
    """Claims due slots and starts one run for each (see the module docstring)."""

    def __init__(
        self,
        store: ScheduleStore,
        start: StartFn,
        *,
        clock: Callable[[], float] | None = None,
        identity: str | None = None,
        batch: int = DEFAULT_CLAIM_BATCH,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.store = store
        self.start = start
        self.clock = clock or store.clock
        self.identity = identity or default_identity()
        self.batch = batch
        self.max_wait = max_wait
        self._full_batch = False
        self._last_lost_check = float("-inf")

    def tick(self) -> list[StartResult]:
        """Claim what is due now and start it; returns one result per slot won."""
        now = self.clock()
        results = [self._start(name, slot, now) for name, slot in self._lost(now)]
        due = self.store.due(now, limit=self.batch)
        self._full_batch = len(due) >= self.batch
        for name, slot in due:
            try:
                claim = self.store.claim(name, slot, now=now, claimer=self.identity)
            except ScheduleCorrupt as exc:  # taken off the due set by the claim; report it
                results.append(StartResult(name, slot, error=str(exc)))
                continue
            if claim is None:  # another scheduler won this slot, or it was paused/removed
                continue
            results.append(self._start(name, slot, now, claim.schedule, skipped=claim.skipped))
        return results

    def _lost(self, now: float) -> list[tuple[str, float]]:
        """Slots another scheduler claimed and died before starting (checked at most once
        per :data:`LOST_SLOT_GRACE`, so a busy loop does not scan every schedule)."""
        if now - self._last_lost_check < LOST_SLOT_GRACE / 2:
            return []
        self._last_lost_check = now
        return self.store.unstarted(now, grace=LOST_SLOT_GRACE)

    def _start(
        self,
        name: str,
        slot: float,
        now: float,
        schedule: Schedule | None = None,
        *,
        skipped: int = 0,
    ) -> StartResult:
        """Start the run of a claimed slot and record the outcome on the schedule."""
        try:
            run_id = self.start(schedule or self.store.get(name), slot)
        except (RunStartError, ScheduleError) as exc:
            self.store.record_failure(name, str(exc), at=now, slot=slot)
            return StartResult(name, slot, error=str(exc), skipped=skipped)
        self.store.record_start(name, run_id, started_at=now, slot=slot)
        return StartResult(name, slot, run_id=run_id, skipped=skipped)

    def delay(self) -> float:
        """Seconds to wait before the next tick."""
        if self._full_batch:
            return 0.0
        earliest = self.store.next_due_time()
        if earliest is None:
            return self.max_wait
        return min(self.max_wait, max(MIN_WAIT, earliest - self.clock()))

    def run(
        self,
        stop: threading.Event,
        *,
        once: bool = False,
        on_result: Callable[[StartResult], None] | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> SchedulerStats:
        """Tick until ``stop`` is set (or once). ``wait(seconds)`` returns True to stop; it
        defaults to ``stop.wait``, a test passes one that moves its clock instead."""
        wait = wait or stop.wait
        stats = SchedulerStats()
        while not stop.is_set():
            for result in self.tick():
                stats.results.append(result)
                if result.ok:
                    stats.started += 1
                else:
                    stats.failed += 1
                if on_result is not None:
                    on_result(result)
            stats.ticks += 1
            if once or wait(self.delay()):
                break
        return stats
