"""Picking the channel for each notice: the :class:`Deliverer`.

The :class:`Deliverer` holds the configured channels and sends each notice through the one
``notice.recipient.channel`` names. If that channel is not configured the notice fails with a
*transient* :class:`~takedown.errors.DeliveryError` (once an operator configures the channel
the notice goes out), unless ``fallback_to_outbox`` is set: then such notices are written to
the outbox instead (the embedded set-up's default). A channel name outside
:data:`takedown.model.CHANNELS` is a permanent error.

The ``form`` channel is always there when an outbox is (it writes the same files). A
recipient that wants ``cloudflare`` when no Cloudflare credentials are configured gets the
``form`` channel if it has a ``form_url`` (the routing trail says so too, see
:mod:`takedown.channels.availability`), else the outbox fallback as above. Receipts from
``outbox`` and ``form`` mean *prepared*, not sent (:func:`takedown.channels.base.is_manual`).
"""

from __future__ import annotations

from dataclasses import replace

from takedown.channels.base import DeliveryChannel
from takedown.channels.cloudflare import CloudflareChannel
from takedown.channels.form import FormChannel
from takedown.channels.outbox import OutboxChannel
from takedown.channels.smtp import SmtpChannel
from takedown.channels.webhook import WebhookChannel
from takedown.errors import DeliveryError
from takedown.model import CHANNELS, DeliveryReceipt, OutgoingNotice

__all__ = ["Deliverer"]


class Deliverer:
    """Sends each notice through the channel its recipient asks for.

    A channel that is not configured makes :meth:`deliver` raise a transient
    :class:`DeliveryError` -- once an operator configures it, the retried notice goes out --
    unless ``fallback_to_outbox`` is set, in which case the notice is written to the outbox
    (this needs an outbox; the embedded set-up uses it so nothing is lost before mail is set
    up). An unknown channel name is a permanent error. :meth:`close` closes every channel.
    """

    def __init__(
        self,
        smtp: SmtpChannel | None = None,
        webhook: WebhookChannel | None = None,
        outbox: OutboxChannel | None = None,
        *,
        fallback_to_outbox: bool = False,
        cloudflare: CloudflareChannel | None = None,
    ) -> None:
        if fallback_to_outbox and outbox is None:
            raise ValueError("fallback_to_outbox needs an outbox channel")
        self.outbox = outbox
        self.fallback_to_outbox = fallback_to_outbox
        form = None if outbox is None else FormChannel(outbox)
        configured: tuple[DeliveryChannel | None, ...] = (smtp, webhook, outbox, form, cloudflare)
        self.channels: dict[str, DeliveryChannel] = {
            channel.name: channel for channel in configured if channel is not None
        }

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        wanted = notice.recipient.channel
        if wanted not in CHANNELS:
            raise DeliveryError(
                f"recipient {notice.recipient.provider} wants unknown channel {wanted!r}",
                permanent=True,
            )
        channel = self.channels.get(wanted)
        if channel is not None:
            return channel.deliver(notice)
        form = self.channels.get("form")
        if wanted == "cloudflare" and notice.recipient.form_url and form is not None:
            receipt = form.deliver(notice)
            return replace(receipt, detail=f"{receipt.detail} (no cloudflare channel configured)")
        if self.fallback_to_outbox and self.outbox is not None:
            receipt = self.outbox.deliver(notice)
            return replace(receipt, detail=f"{receipt.detail} (no {wanted} channel configured)")
        raise DeliveryError(
            f"recipient {notice.recipient.provider} wants channel {wanted!r} but no {wanted} "
            "is configured",
            permanent=False,
        )

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
