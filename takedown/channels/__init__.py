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
``form``
    :class:`~takedown.channels.form.FormChannel`: the outbox's files, for an abuse desk that
    only takes reports by web form; the receipt names the form URL.
``cloudflare``
    :class:`~takedown.channels.cloudflare.CloudflareChannel`: a CSAM report to Cloudflare's
    abuse-reports API (account id and token from the environment), each message reported once.
``availability``
    :class:`~takedown.channels.availability.ChannelAwareRouter`: a ``cloudflare`` recipient
    without API credentials becomes a ``form`` recipient, noted in the route's trail.
``dispatch``
    :class:`~takedown.channels.dispatch.Deliverer`: sends each notice through the channel its
    recipient names, optionally falling back to the outbox.

``outbox`` and ``form`` only *prepare* a notice (:data:`~takedown.channels.base.MANUAL_CHANNELS`):
the notifier leaves it ``awaiting_manual`` until an analyst runs ``hotline notices mark-sent``.

Errors are :class:`~takedown.errors.DeliveryError` with ``permanent`` set when sending the
same message again cannot succeed: an SMTP 5xx reply (also to AUTH), a recipient without an
address or a usable webhook URL, a webhook or Cloudflare 4xx other than 408/429, a
redirect, a Cloudflare report found interrupted (it may have arrived; an analyst decides).
SMTP 4xx replies, connection failures, TLS failures, timeouts and exhausted webhook retries are
transient. Messages are one line and never contain the SMTP password, the webhook secret, or a
webhook URL's user info or query string.

Import from the modules (``from takedown.channels.smtp import SmtpChannel``); this package
module imports none of them, so the interface comes without :mod:`smtplib` or httpx.
"""
