"""Delivery channels: how a rendered notice leaves the hotline.

One module per channel behind one interface, and the dispatcher that picks among them:

``base``
    What a channel is (:class:`~takedown.channels.base.DeliveryChannel`: a ``name``,
    ``deliver(notice) -> DeliveryReceipt``, ``close()``) and what channels share: the loopback
    check, one-line excerpts for error messages, the notice's JSON payload.
``smtp``
    :class:`~takedown.channels.smtp.SmtpChannel`: the e-mail through the hotline's relay
    (STARTTLS or TLS, verified certificates, credentials never in clear text off loopback).
``webhook``
    :class:`~takedown.channels.webhook.WebhookChannel`: a signed JSON POST with an idempotency
    key, retried with capped, jittered backoff; plain ``http://`` only to loopback.
``signature``
    The webhook signature scheme: signing, and :func:`~takedown.channels.signature.verify_signature`
    for receivers.
``outbox``
    :class:`~takedown.channels.outbox.OutboxChannel`: ``.json`` and ``.eml`` files written
    atomically into a directory, for hotlines that send by hand.
``dispatch``
    :class:`~takedown.channels.dispatch.Deliverer`: sends each notice through the channel its
    recipient names, optionally falling back to the outbox.

Errors are :class:`~takedown.errors.DeliveryError` with ``permanent`` set when sending the
same message again cannot succeed: an SMTP 5xx reply (also to AUTH), a recipient without an
address or a usable webhook URL, a webhook 4xx other than 408/429, a redirect. SMTP 4xx
replies, connection failures, TLS failures, timeouts and exhausted webhook retries are
transient. Messages are one line and never contain the SMTP password, the webhook secret, or a
webhook URL's user info or query string.

Import from the modules (``from takedown.channels.smtp import SmtpChannel``); this package
module imports none of them, so the interface comes without :mod:`smtplib` or httpx.
"""
