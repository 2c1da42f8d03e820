"""Routes that only name channels the hotline can use: the Cloudflare fallback.

A directory entry may ask for the ``cloudflare`` channel (the shipped Cloudflare entry does).
Without the API credentials (``HOTLINE_CLOUDFLARE_ACCOUNT_ID`` and
``HOTLINE_CLOUDFLARE_API_TOKEN``) that channel cannot be used; :func:`usable_route` then
turns the recipient into a ``form`` recipient for the entry's ``form_url`` (or, without one,
an ``outbox`` recipient), and says so in the route's trail, so ``hotline providers lookup``,
the notice's record and its timeline all show what will happen and why.

:class:`ChannelAwareRouter` applies it to every route a router returns; the CLI wraps its
router in one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Protocol

from store.environment import ENV_CLOUDFLARE_ACCOUNT_ID, ENV_CLOUDFLARE_API_TOKEN
from takedown.model import Channel, Route

__all__ = ["ChannelAwareRouter", "usable_route"]


class _Routes(Protocol):
    def route(self, url: str, ip: str | None = None) -> Route: ...


def usable_route(route: Route, available: Collection[Channel]) -> Route:
    """``route`` with a ``cloudflare`` recipient replaced when that channel is unavailable."""
    recipient = route.recipient
    if recipient is None or recipient.channel != "cloudflare" or "cloudflare" in available:
        return route
    why = (
        f"the Cloudflare abuse-reports API is not configured ({ENV_CLOUDFLARE_ACCOUNT_ID} and "
        f"{ENV_CLOUDFLARE_API_TOKEN} are not set)"
    )
    if recipient.form_url:
        channel: Channel = "form"
        note = (
            f"{why}: the notice is prepared for {recipient.provider}'s abuse form "
            f"{recipient.form_url} and waits for an analyst to submit it and run "
            "`hotline notices mark-sent`"
        )
    else:
        channel = "outbox"
        note = (
            f"{why} and {recipient.provider} has no form_url: the notice is prepared in the "
            "outbox and waits for an analyst to send it and run `hotline notices mark-sent`"
        )
    return replace(
        route,
        recipient=replace(recipient, channel=channel),
        trail=(*route.trail, note),
    )


class ChannelAwareRouter:
    """A router whose routes name only ``available`` channels (see :func:`usable_route`)."""

    def __init__(self, router: _Routes, available: Collection[Channel]) -> None:
        self.router = router
        self.available = frozenset(available)

    def route(self, url: str, ip: str | None = None) -> Route:
        return usable_route(self.router.route(url, ip), self.available)
