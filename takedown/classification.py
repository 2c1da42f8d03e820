"""Which X-ARF ``classification`` a hit's notice carries, and who decided it.

A hotline list has its own categories (whatever its vendor calls them); an X-ARF
``content/csam`` report needs one of ``baseline``, ``A1``, ``A2``, ``B1``, ``B2``
(:data:`store.lists.CLASSIFICATIONS`), each of which asserts something about the material.
So the mapping is explicit, from two places, the first that has an answer wins:

1. the configuration's ``[classification]`` table: for the hit's list, its category's own
   entry, else the list's ``*`` (every category) entry;
2. the list's stored mapping (``hotline hashes import|build … --classification``): the
   category's own entry, else the ``*`` entry.

The configuration wins over the stored mapping so a hotline can correct a list's mapping
without re-importing the list. Nothing else is consulted: a category with no mapping has no
classification (:func:`decide` returns ``None``) and its notice waits as ``unclassified`` for
an analyst (``hotline notices classify``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from store.lists import EVERY_CATEGORY, ClassificationMap, ListStore

__all__ = ["Classifier", "Decision", "decide"]


@dataclass(frozen=True, slots=True)
class Decision:
    """A classification and where it came from, in words for the timeline."""

    value: str
    source: str


def _rule(mapping: ClassificationMap, category: str) -> str:
    return "category" if category.strip() in mapping.categories else EVERY_CATEGORY


def decide(
    list_name: str,
    category: str,
    *,
    configured: Mapping[str, ClassificationMap],
    stored: ClassificationMap | None,
) -> Decision | None:
    """The classification of a hit on ``list_name`` with ``category``, or ``None``."""
    config = configured.get(list_name)
    if config is not None:
        value = config.lookup(category)
        if value is not None:
            rule = _rule(config, category)
            return Decision(value, f"configuration [classification] {list_name} ({rule})")
    if stored is not None:
        value = stored.lookup(category)
        if value is not None:
            rule = _rule(stored, category)
            return Decision(value, f"list {list_name} ({rule})")
    return None


class Classifier:
    """:func:`decide` with the stored mappings read from Redis (one read per hit)."""

    def __init__(self, configured: Mapping[str, ClassificationMap], lists: ListStore) -> None:
        self.configured = configured
        self.lists = lists

    def decide(self, list_name: str, category: str) -> Decision | None:
        return decide(
            list_name,
            category,
            configured=self.configured,
            stored=self.lists.classification(list_name),
        )
