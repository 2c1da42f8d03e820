"""Crawler traps: pages without end that hold no content (calendars, session-id loops,
faceted-search explosions, repeated path segments), told apart from the site's real pages.

Two defences, both per crawl process and per host:

* **Shapes** a page URL cannot have on a real site: a path repeating its segments
  (``/a/b/a/b/…``, or one segment three times), and session ids in the URL (``;jsessionid=``,
  ``?sid=…``): the URL is judged without them, so a page met again under a new session id
  is the same page.
* **Budgets per path template.** A URL's template is its host and path with numbers, dates
  and ids generalised (``/calendar/{date}``, ``/item/{n}``) plus the names of its query
  parameters; its *family* is the same without the query (every facet combination of
  ``/search``). A template or family may schedule :data:`FREE_PAGES` pages, and
  :data:`PAGES_PER_PRODUCTIVE` more for each of its pages that was *productive*: it showed an
  image not seen before in the crawl, a file, or a link to a page of another template (a
  calendar month linking to a new event page is productive; a month linking only to the next
  month is not). A template whose pages keep yielding only more of themselves runs out of
  budget: its further pages are held, released as soon as a page of the template or family
  proves productive, and never crawled otherwise (``crawl/trap_pages_skipped``).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "FREE_PAGES",
    "MAX_HELD",
    "PAGES_PER_PRODUCTIVE",
    "TrapGuard",
    "path_template",
    "strip_session",
    "trap_shape",
]

T = TypeVar("T")

#: Pages a template (and a family) may schedule before any of them proved productive.
FREE_PAGES: Final = 2
#: Further pages a template may schedule for each of its pages that was productive.
PAGES_PER_PRODUCTIVE: Final = 2
#: Query parameter names that carry a session id (compared in lowercase).
SESSION_PARAMETERS: Final = frozenset(
    {"sid", "sessionid", "session_id", "session", "phpsessid", "jsessionid", "sess", "s_id"}
)
#: A path segment repeated this many times makes a loop (``/a/x/a/x/a``).
REPEATED_SEGMENT: Final = 3

_PATH_PARAMETERS: Final = re.compile(r";(jsessionid|phpsessid|sid|sessionid)=[^/?#]*", re.I)
_DATE: Final = re.compile(r"^(19|20)\d\d([-_.]?(0[1-9]|1[0-2])([-_.]?([0-2]\d|3[01]))?)?$")
_NUMBER: Final = re.compile(r"^\d+$")
#: A hex or UUID-like id (8 or more hex digits and dashes, a digit among them).
_ID: Final = re.compile(r"^(?=.*\d)[0-9a-f-]{8,}$", re.I)
_DIGITS: Final = re.compile(r"\d+")
_MONTH_NAMES: Final = frozenset(
    (
        *("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        *("january", "february", "march", "april", "june", "july", "august", "september"),
        *("october", "november", "december"),
    )
)


def strip_session(url: str) -> str:
    """``url`` without session ids (``;jsessionid=…`` in the path, ``sid=…`` and the like in
    the query), for telling a page met again under a new session from a new page."""
    parts = urlsplit(url)
    path = _PATH_PARAMETERS.sub("", parts.path)
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in SESSION_PARAMETERS
    ]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def trap_shape(url: str) -> str | None:
    """Why a page URL is a trap by its shape alone (``repeated_segments``), or None: a run of
    two or more segments repeated at once (``/a/b/a/b``), or a segment that is not a number
    three times (``/x/a/y/a/z/a``)."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    words = Counter(s for s in segments if not _NUMBER.match(s))
    if any(count >= REPEATED_SEGMENT for count in words.values()):
        return "repeated_segments"
    for size in range(2, len(segments) // 2 + 1):
        for start in range(len(segments) - 2 * size + 1):
            if segments[start : start + size] == segments[start + size : start + 2 * size]:
                return "repeated_segments"
    return None


def _general(segment: str) -> str:
    lowered = segment.lower()
    if _DATE.match(lowered):
        return "{date}"
    if _NUMBER.match(lowered):
        return "{n}"
    if lowered in _MONTH_NAMES:
        return "{month}"
    if _ID.match(lowered):
        return "{id}"
    return _DIGITS.sub("{n}", lowered)  # article17 -> article{n}


def path_template(url: str) -> tuple[str, str]:
    """``(template, family)`` of a page URL: host and generalised path, with (template) and
    without (family) the sorted names of its query parameters, session ids left out."""
    parts = urlsplit(strip_session(url))
    path = "/".join(_general(s) for s in parts.path.split("/"))
    family = f"{parts.hostname or ''}{path}"
    names = sorted({_general(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return (f"{family}?{'&'.join(names)}" if names else family), family


#: Pages held per template while it has no budget (further ones are dropped).
MAX_HELD: Final = 1000


@dataclass
class _Budget:
    scheduled: int = 0
    productive: int = 0

    def allows(self) -> bool:
        return self.scheduled < FREE_PAGES + PAGES_PER_PRODUCTIVE * self.productive


@dataclass
class TrapGuard(Generic[T]):
    """The budgets of one crawl (see the module docstring); not thread-safe (the reactor
    thread owns it).

    A page over budget is *held* (its request, as ``T``), not dropped: when a page of its
    template or family proves productive, held pages are released in the order they came.
    What is still held when the crawl ends is what the traps cost it: nothing.
    """

    budgets: dict[str, _Budget] = field(default_factory=dict)
    #: Held pages per template: (url, its template and family, payload), in arrival order.
    held: dict[str, deque[tuple[str, tuple[str, str], T]]] = field(default_factory=dict)

    def admit(self, url: str) -> str | None:
        """Count ``url`` as scheduled, or say why not: ``repeated_segments`` (never to be
        crawled) or ``template_budget`` (the caller may :meth:`hold` it)."""
        shape = trap_shape(url)
        if shape is not None:
            return shape
        keys = path_template(url)
        if not self._allows(keys):
            return "template_budget"
        self._count(keys)
        return None

    def hold(self, url: str, payload: T) -> bool:
        """Keep ``payload`` (the page's request) until its template has budget again; False
        when already :data:`MAX_HELD` pages of the template are held (then it is dropped)."""
        keys = path_template(url)
        queue = self.held.setdefault(keys[0], deque())
        if len(queue) >= MAX_HELD:
            return False
        queue.append((url, keys, payload))
        return True

    def productive(self, url: str) -> list[tuple[str, T]]:
        """The page at ``url`` was productive: credit its template and family, and return the
        held pages (url, payload) that their budgets now admit (counted as scheduled)."""
        credited = set(path_template(url))
        for key in credited:
            self._budget(key).productive += 1
        released: list[tuple[str, T]] = []
        for template, queue in list(self.held.items()):
            # Only a queue sharing a credited template or family can have budget again.
            while queue and credited & set(queue[0][1]) and self._allows(queue[0][1]):
                held_url, keys, payload = queue.popleft()
                self._count(keys)
                released.append((held_url, payload))
            if not queue:
                del self.held[template]
        return released

    def still_held(self) -> dict[str, int]:
        """Templates with pages held, and how many: the templates cut so far."""
        return {key: len(queue) for key, queue in sorted(self.held.items())}

    def _allows(self, keys: tuple[str, str]) -> bool:
        return all(self._budget(key).allows() for key in keys)

    def _count(self, keys: tuple[str, str]) -> None:
        for key in set(keys):
            self._budget(key).scheduled += 1

    def _budget(self, key: str) -> _Budget:
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = _Budget()
        return budget
