"""Notice and takedown: from a confirmed hit to a removed image.

Routing a hit to whoever can remove it, writing the notice, delivering it, recording what
happened, and checking until the content is gone. Redis-backed state every package shares
(connection, keys, the hit streams, run records) lives in :mod:`store`; this package builds on
it and never imports the crawler.

Modules:

``model``
    The values passed between the modules: recipients, routes, the hotline's identity,
    rendered notices, delivery receipts, and the channel, route-method and kind names.
``routing``
    :class:`~takedown.routing.Router`: who receives the notice for an image URL (the
    directory, then CDN ranges, then RDAP), with a trail an analyst can read.
``directory``
    The hotline's provider directory (YAML or CSV): domains, CIDRs and ASNs to abuse contacts.
``cdn``
    The built-in CDN ranges (package data ``data/cdns.yaml``).
``rdap``
    The RDAP client and its Redis cache: who holds an address, who sold a domain.
``http``
    The one HTTP client factory for RDAP and webhooks, and the bounded read of an answer.
``notice``
    Rendering a notice, reminder or escalation (templates in ``templates/``) into an
    RFC 5322 message with its ``HL-`` reference (:func:`~takedown.notice.reference_for`).
``xarf``
    The machine-readable half of a notice: the X-ARF v4 ``content/csam`` report, validated.
``channels``
    Delivery: one module per channel (SMTP, webhook, outbox) behind one interface, and the
    :class:`~takedown.channels.dispatch.Deliverer` that picks one per recipient.
``notifier``
    The consumer of the ``hits`` stream: route, render, deliver, record, dead-letter.
``notices``
    The notice records in Redis: status, timeline, the audit stream, per-notice locks.
``recheck``
    Verified removal: which notices are due for a recheck, and what a verdict does
    (removed, reminder, escalation).
``retention``
    How long each kind of record is kept (``[retention]``), and the purge that deletes the
    expired ones with every index entry naming them.
``stats``
    The figures hotlines publish: per provider, notices sent, removed, and how fast.
``settings``
    The ``[hotline]``, ``[notices]``, ``[rdap]``, ``[smtp]``, ``[webhook]``, ``[outbox]``
    and ``[retention]`` tables of the TOML configuration, parsed once.
``errors``
    The package's exception tree (its docstring lists every exception, wherever defined).
"""
