"""The form channel: a notice prepared for an abuse desk that only takes reports by web form.

Some desks answer e-mailed complaints with an auto-reply pointing to their web form. For a
recipient with ``channel: form`` and a ``form_url``, :class:`FormChannel` writes the notice
exactly as the outbox does (``<notice_id>.<kind>.<sequence>.eml`` and ``.json``; the JSON
carries the recipient and so the form URL) and returns a receipt whose destination is the
form URL. Nothing is sent: the analyst opens the form, pastes the prepared text, submits it,
and runs ``hotline notices mark-sent ID``; until then the notice is ``awaiting_manual``.

Errors are :class:`~takedown.errors.DeliveryError`: permanent for a recipient without a usable
form URL, otherwise those of the outbox (a directory that cannot be written is transient).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from takedown.channels.base import is_loopback
from takedown.channels.outbox import OutboxChannel
from takedown.errors import DeliveryError
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = ["FormChannel", "form_url_problem"]


def form_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an abuse form's address (``https://``, or ``http://`` on loopback),
    or None when it can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"form URL {url!r} cannot be parsed"
    if parts.scheme not in ("https", "http") or not host:
        return f"form URL {url!r} is not an http(s) URL with a host"
    if parts.scheme == "http" and not is_loopback(host):
        return f"form URL {url!r} is plain http: use the https address of the form"
    return None


class FormChannel:
    """Prepares notices for an abuse desk's web form (see the module docstring).

    ``outbox`` is the channel that writes the files; the two share one directory.
    """

    name: ClassVar[Channel] = "form"

    def __init__(self, outbox: OutboxChannel) -> None:
        self.outbox = outbox

    def close(self) -> None:
        """Nothing to release (the outbox closes nothing either)."""

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        recipient = notice.recipient
        url = recipient.form_url
        if not url:
            raise DeliveryError(
                f"recipient {recipient.provider} takes reports by web form but has no form_url",
                permanent=True,
            )
        problem = form_url_problem(url)
        if problem:
            raise DeliveryError(f"recipient {recipient.provider}: {problem}", permanent=True)
        self.outbox.deliver(notice)
        eml, meta = self.outbox.paths(notice)
        return DeliveryReceipt(
            channel=self.name,
            destination=url,
            detail=f"prepared {eml.name} and {meta.name} in {eml.parent} for the form",
        )
