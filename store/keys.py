"""Every Redis key the project uses, in one place.

All keys start with a configurable prefix (default ``hotline:``) so several hotlines, or a test
and a production deployment, can share one Redis server. Nothing else in the code base builds a
key name by hand: it asks a :class:`Keys` instance.

Layout (``P`` is the prefix)::

    P hits                  stream   confirmed matches, one entry per incident
    P review                stream   near misses for an analyst, never noticed automatically
    P hits:ids              hash     incident id -> stream entry id (idempotent enqueueing)
    P review:ids            hash     incident id -> stream entry id
    P review:decisions      hash     incident id -> an analyst's decision on a review item
                                     (JSON: decision, actor, reason, time, hit entry,
                                     allow-list; :mod:`store.review`)
    P review:dismissed      set      incident ids an analyst dismissed: never queued again
    P hits:reappeared       hash     incident id -> hits entry appended again because the
                                     content of its closed notice was found online again;
                                     deleted (HDEL) by whoever reopens the notice
    P lists                 set      names of the known-hash lists
    P list:<name>           hash     one list's metadata: version, counts, kind, thresholds
    P list:<name>:v<N>      list     version N of the list, serialized, in chunks of <= 64 MiB
    P list:<name>:lock      string   held while an analyst's decision adds entries to the list
    P crawls                zset     run (crawl) id scored by creation time (unix seconds;
                                     before runs existed: by start time)
    P crawl:<id>            hash     one run (:mod:`store.runs`): status, origin, seeds and
                                     options (JSON), created/started/finished (unix seconds),
                                     reason, counts and health (JSON, live while running),
                                     cancel_requested, stopping, stats (Scrapy's, at the end)
    P crawls:distributed    zset     runs that `hotline worker` processes share, by creation
                                     time; a run leaves it when it ends
    P crawl:<id>:parts      hash     a distributed run's live counts per worker (JSON); the
                                     run's counts are their sum
    P crawl:<id>:frontier   zset     a distributed run's pending requests (scrapy-redis
                                     priority queue: serialized request, score -priority)
    P crawl:<id>:seen       set      its request fingerprints (the shared dupefilter)
    P crawl:<id>:budget     hash     seed URL -> pages admitted for it (the cap is shared)
    P crawl:<id>:workers    hash     worker id -> last heartbeat (unix seconds)
    P crawl:<id>:inflight:<worker>  hash  requests a worker took and has not finished:
                                     serialized request -> score (back to the frontier if
                                     the worker's heartbeat stops)
    P crawl:<id>:attempts   hash     serialized request -> times a worker's lease on it
                                     expired (it went back to the frontier)
    P crawl:<id>:dead       hash     serialized request -> why it was given up (JSON:
                                     reason, attempts, last worker, time); kept after the
                                     run ends, for `hotline runs show`
    P hits:dead             stream   hits the notifier gave up on, with the last error
    P notices               zset     notice id scored by creation time (unix seconds)
    P notices:status:<s>    zset     the notices currently in status <s>, same scores
    P notice:<id>           hash     one notice: the hit, its route, status, times, counters
    P notice:<id>:timeline  stream   that notice's state changes (the audit, per notice)
    P notice:<id>:lock      string   held by the process sending for this notice
    P audit                 stream   every state change of every notice, with time and actor
    P recheck               zset     notice id scored by the unix time its next recheck is due
    P rdap:doc:<query URL>  string   cached RDAP answer (JSON), with a TTL
    P rdap:index:entries    zset     the cached answers' keys by time stored (for the bound)
    P purge:lock            string   held by the process purging expired records (with a TTL)
    P purge:last            string   unix time the last purge finished (daily purges run once)
    P metrics:walk          string   the daemons' shared count of notices by status and
                                     channel, time to removal and pending review items
                                     (JSON, :mod:`hotline.metrics`), with a short TTL
    P schedules             set      names of the crawl schedules
    P schedule:<name>       hash     one schedule: trigger, seeds, crawl options, next due,
                                     last claimed slot, last run, counters
    P schedules:due         zset     active (not paused) schedule names scored by the unix
                                     time their next run is due
    P users                 set      names of the analyst console's accounts
    P user:<name>           hash     one account (:mod:`store.accounts`): role, created,
                                     disabled, password_changed, the Argon2id hash
    P user:<name>:sessions  set      the SHA-256 of each of its sessions (to end them all)
    P tokens                hash     API token name -> SHA-256 of its secret
    P token:<sha256>        hash     one API token: name, role, created, revoked, last_used
                                     (never the secret)
    P session:<sha256>      hash     one console session, by the SHA-256 of its cookie's
                                     token: user, CSRF token, created, last_seen; TTL: idle
    P login:fail:user:<name>      string  failed logins for that name (also unknown names),
                                          a counter with a TTL (the throttling window)
    P login:fail:addr:<address>   string  failed logins from that client address, alike

The notifier's consumer group on ``P hits`` is :data:`NOTIFIER_GROUP`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "hotline:"
NOTIFIER_GROUP = "notifier"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is usable as a key prefix, else raise ``ValueError``."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"key prefix {prefix!r} must be 1-64 characters of letters, digits, '_', '.', ':', '-'"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)

    @property
    def hits(self) -> str:
        return f"{self.prefix}hits"

    @property
    def review(self) -> str:
        return f"{self.prefix}review"

    def stream(self, verdict: str) -> str:
        """The stream for a verdict: ``confirmed`` -> hits, ``review`` -> review."""
        if verdict == "confirmed":
            return self.hits
        if verdict == "review":
            return self.review
        raise ValueError(f"unknown verdict {verdict!r}")

    def stream_ids(self, verdict: str) -> str:
        return f"{self.stream(verdict)}:ids"

    @property
    def review_decisions(self) -> str:
        return f"{self.review}:decisions"

    @property
    def review_dismissed(self) -> str:
        return f"{self.review}:dismissed"

    @property
    def hits_reappeared(self) -> str:
        return f"{self.hits}:reappeared"

    @property
    def lists(self) -> str:
        return f"{self.prefix}lists"

    def list(self, name: str) -> str:
        return f"{self.prefix}list:{name}"

    def list_data(self, name: str, version: int) -> str:
        return f"{self.prefix}list:{name}:v{version}"

    def list_lock(self, name: str) -> str:
        return f"{self.prefix}list:{name}:lock"

    @property
    def crawls(self) -> str:
        return f"{self.prefix}crawls"

    def crawl(self, crawl_id: str) -> str:
        return f"{self.prefix}crawl:{crawl_id}"

    @property
    def crawls_distributed(self) -> str:
        return f"{self.prefix}crawls:distributed"

    def crawl_parts(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:parts"

    def frontier(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:frontier"

    def frontier_seen(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:seen"

    def frontier_budget(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:budget"

    def frontier_workers(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:workers"

    def frontier_inflight(self, crawl_id: str, worker: str) -> str:
        return f"{self.crawl(crawl_id)}:inflight:{worker}"

    def frontier_attempts(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:attempts"

    def frontier_dead(self, crawl_id: str) -> str:
        return f"{self.crawl(crawl_id)}:dead"

    @property
    def dead_letters(self) -> str:
        return f"{self.hits}:dead"

    @property
    def notices(self) -> str:
        return f"{self.prefix}notices"

    def notices_in(self, status: str) -> str:
        return f"{self.prefix}notices:status:{status}"

    def notice(self, notice_id: str) -> str:
        return f"{self.prefix}notice:{notice_id}"

    def notice_timeline(self, notice_id: str) -> str:
        return f"{self.prefix}notice:{notice_id}:timeline"

    def notice_lock(self, notice_id: str) -> str:
        return f"{self.prefix}notice:{notice_id}:lock"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    @property
    def recheck(self) -> str:
        return f"{self.prefix}recheck"

    def rdap(self, kind: str, value: str) -> str:
        return f"{self.prefix}rdap:{kind}:{value}"

    @property
    def purge_lock(self) -> str:
        return f"{self.prefix}purge:lock"

    @property
    def purge_last(self) -> str:
        return f"{self.prefix}purge:last"

    @property
    def metrics_walk(self) -> str:
        return f"{self.prefix}metrics:walk"

    @property
    def schedules(self) -> str:
        return f"{self.prefix}schedules"

    def schedule(self, name: str) -> str:
        return f"{self.prefix}schedule:{name}"

    @property
    def schedules_due(self) -> str:
        return f"{self.prefix}schedules:due"

    @property
    def users(self) -> str:
        return f"{self.prefix}users"

    def user(self, name: str) -> str:
        return f"{self.prefix}user:{name}"

    def user_sessions(self, name: str) -> str:
        return f"{self.prefix}user:{name}:sessions"

    @property
    def tokens(self) -> str:
        return f"{self.prefix}tokens"

    def token(self, digest: str) -> str:
        return f"{self.prefix}token:{digest}"

    def session(self, digest: str) -> str:
        return f"{self.prefix}session:{digest}"

    def login_failures_user(self, name: str) -> str:
        return f"{self.prefix}login:fail:user:{name}"

    def login_failures_address(self, address: str) -> str:
        return f"{self.prefix}login:fail:addr:{address}"
