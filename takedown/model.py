"""Values shared by routing, notices, delivery and rechecks.

These are plain frozen dataclasses with a JSON form (``to_dict`` / ``from_dict``) so they can be
stored in a Redis hash field, printed by ``--json`` and passed between processes unchanged.
None of them can hold image content: URLs, hashes, addresses and text only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "CHANNELS",
    "NOTICE_KINDS",
    "ROUTE_METHODS",
    "Channel",
    "DeliveryReceipt",
    "HotlineIdentity",
    "NoticeKind",
    "OutgoingNotice",
    "Recipient",
    "Route",
    "RouteMethod",
]

Channel = Literal["smtp", "webhook", "outbox", "form", "cloudflare"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)

RouteMethod = Literal[
    "directory-domain", "directory-cidr", "directory-asn", "cdn", "rdap", "unroutable", "approved"
]
ROUTE_METHODS: tuple[RouteMethod, ...] = get_args(RouteMethod)

NoticeKind = Literal["notice", "reminder", "escalation", "reappearance"]
NOTICE_KINDS: tuple[NoticeKind, ...] = get_args(NoticeKind)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who receives a notice and how.

    ``address`` is the abuse mailbox (needed for ``smtp``; recorded for the others);
    ``webhook_url`` is needed for ``webhook``; ``form_url`` is the abuse desk's web form, for
    ``form`` (and for ``cloudflare``, whose fallback it is). ``language`` picks the notice
    template (``en``, ``de``, ...). ``fallbacks`` are further abuse addresses of the same
    provider (RDAP records often list several), tried in order when mail to ``address`` is
    refused permanently.
    """

    provider: str
    address: str | None
    channel: Channel
    language: str = "en"
    webhook_url: str | None = None
    form_url: str | None = None
    fallbacks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipient:
        return cls(
            provider=str(data["provider"]),
            address=data.get("address"),
            channel=data["channel"],
            language=str(data.get("language") or "en"),
            webhook_url=data.get("webhook_url"),
            form_url=data.get("form_url"),
            fallbacks=tuple(str(a) for a in data.get("fallbacks") or ()),
        )


@dataclass(frozen=True, slots=True)
class Route:
    """The outcome of routing one image URL: who hosts it and who gets the notice.

    ``recipient`` is ``None`` when nobody could be found (``method == "unroutable"``): the
    notice then waits for an analyst. ``trail`` explains the decision step by step in words an
    analyst can read (``hotline providers lookup`` prints it). ``registrar_abuse`` is the
    domain registrar's abuse address, kept for escalation; ``upstream_abuse`` the abuse address
    of the network above the hosting provider (the RDAP parent network or the directory's
    ``upstream``), also for escalation. ``as_name`` is the AS's name from the IP-to-AS
    table. ``suggested`` is offered when nobody was found (RFC 2142 ``abuse@`` the registrable
    domain): never used until an analyst approves it (``hotline notices approve-route``), which
    makes it the recipient with method ``approved``.
    """

    host: str
    ip: str | None
    method: RouteMethod
    recipient: Recipient | None
    provider: str | None = None
    asn: int | None = None
    network: str | None = None
    cdn: str | None = None
    registrar: str | None = None
    registrar_abuse: str | None = None
    upstream_abuse: str | None = None
    trail: tuple[str, ...] = field(default_factory=tuple)
    as_name: str | None = None
    suggested: Recipient | None = None

    @property
    def routable(self) -> bool:
        return self.recipient is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trail"] = list(self.trail)
        out["recipient"] = None if self.recipient is None else self.recipient.to_dict()
        out["suggested"] = None if self.suggested is None else self.suggested.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        recipient = data.get("recipient")
        suggested = data.get("suggested")
        asn = data.get("asn")
        return cls(
            host=str(data["host"]),
            ip=data.get("ip"),
            method=data["method"],
            recipient=None if recipient is None else Recipient.from_dict(recipient),
            provider=data.get("provider"),
            asn=None if asn is None else int(asn),
            network=data.get("network"),
            cdn=data.get("cdn"),
            registrar=data.get("registrar"),
            registrar_abuse=data.get("registrar_abuse"),
            upstream_abuse=data.get("upstream_abuse"),
            trail=tuple(data.get("trail") or ()),
            as_name=data.get("as_name"),
            suggested=None if suggested is None else Recipient.from_dict(suggested),
        )

    @classmethod
    def from_json(cls, text: str) -> Route:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class HotlineIdentity:
    """Who sends the notices: printed in every notice and used as the X-ARF reporter."""

    name: str
    email: str
    website: str
    country: str  # ISO 3166-1 alpha-2
    legal_basis: str
    address: str = ""
    phone: str = ""
    mail_domain: str = ""  # right-hand side of Message-IDs; defaults to the email's domain

    @property
    def message_id_domain(self) -> str:
        return self.mail_domain or self.email.rpartition("@")[2] or "localhost"


@dataclass(frozen=True, slots=True)
class OutgoingNotice:
    """One rendered message, ready for any channel.

    ``notice_id`` is the incident id (deterministic from image URL + list + entry);
    ``sequence`` is 0 for the first notice and n for the n-th reminder or escalation, so
    ``message_id`` (and the webhook's idempotency key) is the same every time the same
    message is (re)sent. ``email`` is the complete RFC 5322 message (an RFC 6522
    multipart/report carrying the text and the X-ARF JSON); the outbox writes it as ``.eml``.
    """

    notice_id: str
    kind: NoticeKind
    sequence: int
    recipient: Recipient
    sender: str
    subject: str
    text: str
    xarf: Mapping[str, Any]
    message_id: str
    email: bytes

    @property
    def idempotency_key(self) -> str:
        return f"{self.notice_id}.{self.kind}.{self.sequence}"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What a channel reports after accepting a message."""

    channel: Channel
    destination: str  # mailbox, webhook URL, outbox file path, form URL or API endpoint
    detail: str = ""  # e.g. the SMTP server's reply or the HTTP status
