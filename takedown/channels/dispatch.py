"""Picking the channel for each notice: the :class:`Deliverer`.

The :class:`Deliverer` holds the configured channels and sends each notice through the one
``notice.recipient.channel`` names. If that channel is not configured the notice fails with a
*transient* :class:`~takedown.errors.DeliveryError` (once an operator configures the channel
the notice goes out), unless ``fallback_to_outbox`` is set: then such notices are written to
the outbox instead (the embedded set-up's default). A channel name outside
:data:`takedown.model.CHANNELS` is a permanent error.
"""

from __future__ import annotations

from dataclasses import replace

from takedown.channels.base import DeliveryChannel
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
    ) -> None:
        if fallback_to_outbox and outbox is None:
            raise ValueError("fallback_to_outbox needs an outbox channel")
        self.outbox = outbox
        self.fallback_to_outbox = fallback_to_outbox
        configured: tuple[DeliveryChannel | None, ...] = (smtp, webhook, outbox)
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
