"""Crawl options: the one shape of "how to crawl" from the command line to the spider.

``hotline crawl`` and ``hotline schedule add`` build a :class:`CrawlOptions`; a run record
(:mod:`store.runs`) and a schedule (:mod:`store.schedules`) store it as the JSON object of
:meth:`CrawlOptions.as_dict`; ``hotline crawl --run``, the scheduler and ``hotline worker``
read it back with :meth:`CrawlOptions.from_dict`; the crawler turns it into Scrapy settings
(:func:`crawler.runsettings.crawl_settings`). Seeds, the Redis URL and the log level are not
options: they belong to the run, the process and the terminal.

The stored object has exactly the keys of :data:`OPTION_KEYS`. :meth:`~CrawlOptions.from_dict`
reads every record written so far: a missing key takes its default (a ``scrapy crawl`` run
records a subset), an unknown key or a bad value raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_HIT_DEPTH",
    "DEFAULT_MAX_PAGES_PER_SEED",
    "OPTION_KEYS",
    "CrawlOptions",
]

#: Links followed from each seed, counting the seed as depth 0.
DEFAULT_DEPTH: Final = 2
#: Distinct pages crawled per seed.
DEFAULT_MAX_PAGES_PER_SEED: Final = 200
#: Extra link depth below a page that yielded a confirmed hit.
DEFAULT_HIT_DEPTH: Final = 2


def _strings(value: Iterable[Any], name: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name}: expected a list, got {type(value).__name__}")
    return tuple(str(v) for v in value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool | int):  # JSON true/false; 0/1 from hand-written records
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return bool(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """How to crawl a run's seeds. Lists are kept as tuples and ``overrides`` (Scrapy
    settings, ``NAME=VALUE`` from ``--set``) as a read-only mapping, so a value is never
    changed after it was built."""

    depth: int = DEFAULT_DEPTH
    max_pages: int = DEFAULT_MAX_PAGES_PER_SEED
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    obey_robots: bool = False
    lists: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)
    distributed: bool = False  # crawled by `hotline worker` processes, not by the caller
    hit_depth: int = DEFAULT_HIT_DEPTH

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "allowed_networks", _strings(self.allowed_networks, "allowed_networks"))
        set_(self, "lists", _strings(self.lists, "lists"))
        if not isinstance(self.overrides, Mapping):
            raise ValueError(f"overrides: expected an object, got {type(self.overrides).__name__}")
        set_(
            self,
            "overrides",
            MappingProxyType({str(k): str(v) for k, v in self.overrides.items()}),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON object run records and schedules store (every key of :data:`OPTION_KEYS`)."""
        return {
            "depth": self.depth,
            "max_pages": self.max_pages,
            "allow_private_networks": self.allow_private_networks,
            "allowed_networks": list(self.allowed_networks),
            "obey_robots": self.obey_robots,
            "lists": list(self.lists),
            "overrides": dict(self.overrides),
            "distributed": self.distributed,
            "hit_depth": self.hit_depth,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrawlOptions:
        """The options of a stored object; missing keys take their defaults.

        Raises:
            ValueError: an unknown key, or a value of the wrong kind (names the key).
        """
        unknown = sorted(set(data) - set(OPTION_KEYS))
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}")
        default = cls()
        overrides = data.get("overrides", default.overrides)
        if not isinstance(overrides, Mapping):
            raise ValueError(f"overrides: expected an object, got {overrides!r}")
        return cls(
            depth=_count(data.get("depth", default.depth), "depth"),
            max_pages=_count(data.get("max_pages", default.max_pages), "max_pages"),
            allow_private_networks=_flag(
                data.get("allow_private_networks", default.allow_private_networks),
                "allow_private_networks",
            ),
            allowed_networks=_strings(
                data.get("allowed_networks", default.allowed_networks), "allowed_networks"
            ),
            obey_robots=_flag(data.get("obey_robots", default.obey_robots), "obey_robots"),
            lists=_strings(data.get("lists", default.lists), "lists"),
            overrides=overrides,
            distributed=_flag(data.get("distributed", default.distributed), "distributed"),
            hit_depth=_count(data.get("hit_depth", default.hit_depth), "hit_depth"),
        )


#: The keys of a stored options object, in :meth:`CrawlOptions.as_dict`'s order.
OPTION_KEYS: Final = tuple(f.name for f in fields(CrawlOptions))
