"""What a delivery channel is, and the few things every channel shares.

:class:`DeliveryChannel` is the interface: a channel has a :attr:`~DeliveryChannel.name` (one
of :data:`takedown.model.CHANNELS`, the value a recipient's ``channel`` names), sends one
rendered notice with :meth:`~DeliveryChannel.deliver` and releases what it holds with
:meth:`~DeliveryChannel.close`. :class:`Delivers` is the part a caller needs: anything that
delivers a notice, a single channel or the :class:`~takedown.channels.dispatch.Deliverer`
that picks one per recipient.

:data:`MANUAL_CHANNELS` are the channels that only *prepare* a notice (``outbox``, ``form``):
a person sends it, so a receipt from one of them leaves the notice ``awaiting_manual`` until
``hotline notices mark-sent`` (:func:`is_manual`).

Also here: :func:`is_loopback` (plain-text credentials and plain ``http://`` are allowed only
to loopback), :func:`excerpt` (a server's reply or an error, cut to :data:`EXCERPT_CHARS` for
a one-line message) and the notice's JSON form (:func:`notice_payload`, :func:`encode_payload`)
that the webhook sends and the outbox writes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from store.text import one_line
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = [
    "EXCERPT_CHARS",
    "MANUAL_CHANNELS",
    "Delivers",
    "DeliveryChannel",
    "encode_payload",
    "excerpt",
    "is_loopback",
    "is_manual",
    "notice_payload",
    "payload_json",
]

#: Characters of a server's reply, a response body or an error quoted in an error message.
EXCERPT_CHARS = 200
#: Channels whose receipt means "prepared for a person to send", not "sent".
MANUAL_CHANNELS: frozenset[Channel] = frozenset({"outbox", "form"})


class Delivers(Protocol):
    """Anything that takes a rendered notice and reports where it went."""

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt: ...


class DeliveryChannel(Delivers, Protocol):
    """One way a notice leaves the hotline (SMTP, webhook, outbox).

    :meth:`deliver` returns a :class:`~takedown.model.DeliveryReceipt` once the other side
    accepted the message, or raises :class:`~takedown.errors.DeliveryError` (``permanent``
    when sending the same message again cannot succeed). :meth:`close` releases connections
    the channel owns; a closed channel is not used again.
    """

    name: ClassVar[Channel]

    def close(self) -> None: ...


def is_manual(receipt: DeliveryReceipt) -> bool:
    """True when ``receipt`` comes from a channel that only prepared the message
    (:data:`MANUAL_CHANNELS`): nobody has sent it yet."""
    return receipt.channel in MANUAL_CHANNELS


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``, ``[::1]``)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def excerpt(value: str | bytes | BaseException) -> str:
    """``value`` on one line and at most :data:`EXCERPT_CHARS` long (bytes read as UTF-8)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return one_line(value, EXCERPT_CHARS)


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot put a {type(value).__name__} into a notice payload")


def notice_payload(notice: OutgoingNotice) -> dict[str, Any]:
    """The JSON object a webhook receives (and the outbox writes next to the ``.eml``)."""
    return {
        "notice_id": notice.notice_id,
        "kind": notice.kind,
        "sequence": notice.sequence,
        "message_id": notice.message_id,
        "subject": notice.subject,
        "text": notice.text,
        "xarf": notice.xarf,
        "recipient": notice.recipient.to_dict(),
    }


def payload_json(notice: OutgoingNotice, *, indent: int | None = None) -> str:
    """:func:`notice_payload` as key-sorted JSON text: compact, or indented for people."""
    return json.dumps(
        notice_payload(notice),
        sort_keys=True,
        ensure_ascii=False,
        indent=indent,
        separators=(",", ":") if indent is None else None,
        default=_jsonable,
    )


def encode_payload(notice: OutgoingNotice) -> bytes:
    """The webhook body: compact, key-sorted UTF-8 JSON, identical for every re-send."""
    return payload_json(notice).encode("utf-8")
