"""Wiring the notice-and-takedown parts together from the configuration.

The CLI's takedown commands (``notifier``, ``recheck``, ``notices``, ``providers``, ``stats``)
all build the same objects: the notice store, the router (provider directory, built-in CDN
ranges, RDAP with a Redis cache), the renderer and the delivery channels. This module builds
them once per command, from :class:`hotline.config.Config` and the TOML settings, and closes
what needs closing.

The embedded set-up (no ``[smtp]`` and no ``[webhook]`` configured) delivers to the outbox
directory, ``<data dir>/outbox`` by default, for hotlines that send by hand; with a channel
configured, providers that want another one fall back to the outbox too, so nothing is lost.
Outbox and form deliveries are only prepared: such notices wait as ``awaiting_manual`` until
an analyst runs ``hotline notices mark-sent``. The Cloudflare channel exists when
``HOTLINE_CLOUDFLARE_ACCOUNT_ID`` and ``HOTLINE_CLOUDFLARE_API_TOKEN`` are set; without them
the router turns Cloudflare recipients into form recipients and says so in the route's trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from hotline.config import Config
from hotline.errors import UsageError
from hotline.services import Session
from takedown.bootstrap import BOOTSTRAP_DIR_NAME, Bootstrap, BootstrapError
from takedown.cdn import load_builtin_cdns
from takedown.channels.availability import ChannelAwareRouter
from takedown.channels.cloudflare import CloudflareChannel, CloudflareSettings, RedisReportLedger
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.channels.webhook import WebhookChannel, WebhookSettings
from takedown.directory import ProviderDirectory
from takedown.errors import DirectoryError, TemplateError
from takedown.http import outbound_policy
from takedown.ip2asn import Ip2AsnError, IpToAsn
from takedown.model import CHANNELS
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NoticeStore
from takedown.notifier import NoticeSender, Notifier, default_consumer_name
from takedown.rdap import RdapClient, RedisRdapCache
from takedown.recheck import RecheckBook
from takedown.routing import Router
from takedown.settings import SettingsError, TakedownSettings

__all__ = ["OUTBOX_DIR_NAME", "Takedown", "open_router", "open_takedown"]

OUTBOX_DIR_NAME = "outbox"


@dataclass(slots=True)
class Takedown:
    settings: TakedownSettings
    store: NoticeStore
    router: ChannelAwareRouter
    sender: NoticeSender | None  # None when no identity is configured (read-only commands)
    consumer: str
    outbox_dir: Path

    def notifier(self) -> Notifier:
        return Notifier(
            self.store.client,
            self.store.keys,
            router=self.router,
            sender=self.require_sender(),
            settings=self.settings,
            consumer=self.consumer,
        )

    def recheck_book(self) -> RecheckBook:
        return RecheckBook(
            self.store,
            self.settings,
            sender=self.sender,
            router=self.router,
            actor=f"recheck@{self.consumer}",
        )

    def require_sender(self) -> NoticeSender:
        if self.sender is None:
            self.settings.require_identity()  # raises with the reason
            raise UsageError("notices cannot be sent: no hotline identity configured")
        return self.sender


def _directory(settings: TakedownSettings) -> ProviderDirectory:
    if settings.directory_path is None:
        return ProviderDirectory.empty()
    try:
        return ProviderDirectory.load(settings.directory_path)
    except DirectoryError as exc:
        raise UsageError(str(exc)) from None


def _asn_table(settings: TakedownSettings) -> IpToAsn | None:
    if not settings.ip_to_asn:
        return None
    try:
        return IpToAsn.load(settings.ip_to_asn)
    except Ip2AsnError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def open_router(
    session: Session, settings: TakedownSettings, *, data_dir: Path | None = None
) -> Iterator[ChannelAwareRouter]:
    """The router for this configuration (the RDAP client closed at the end); its routes name
    only channels this configuration can use (Cloudflare falls back to its form). The RDAP
    bootstrap files ``hotline rdap update`` wrote under ``data_dir`` win over the shipped ones."""
    with ExitStack() as stack:
        rdap = None
        if settings.rdap_url:
            cache = RedisRdapCache(
                session.client,
                session.keys.prefix,
                ttl=int(settings.rdap_cache_ttl) or 1,
                max_entries=settings.rdap_cache_entries,
            )
            try:
                bootstrap = Bootstrap.load(
                    None if data_dir is None else data_dir / BOOTSTRAP_DIR_NAME
                )
            except BootstrapError as exc:
                raise UsageError(str(exc)) from None
            rdap = stack.enter_context(
                RdapClient(
                    settings.rdap_url,
                    bootstrap=bootstrap,
                    timeout=settings.rdap_timeout,
                    policy=outbound_policy(settings.allowed_networks),
                    cache=cache,
                    cache_ttl=settings.rdap_cache_ttl,
                    negative_ttl=settings.rdap_negative_ttl,
                )
            )
        available = [c for c in CHANNELS if c != "cloudflare" or settings.cloudflare]
        router = Router(
            _directory(settings), load_builtin_cdns(), rdap, asn_table=_asn_table(settings)
        )
        yield ChannelAwareRouter(router, available)


def _cloudflare(settings: TakedownSettings, store: NoticeStore) -> CloudflareChannel | None:
    """The Cloudflare channel when its credentials are set (and the hotline has an identity)."""
    if not settings.cloudflare or settings.identity is None:
        return None
    try:
        options = CloudflareSettings(
            **settings.cloudflare,
            reporter_name=settings.identity.name,
            reporter_email=settings.identity.email,
        )
    except ValueError as exc:
        raise UsageError(f"{settings.source}: [cloudflare] {exc}") from None
    return CloudflareChannel(options, ledger=RedisReportLedger(store.client, store.keys))


def _deliverer(
    settings: TakedownSettings, outbox_dir: Path, store: NoticeStore | None = None
) -> Deliverer:
    """The channels configured; the outbox always, as the fallback of any missing one."""
    try:
        smtp = SmtpChannel(SmtpSettings(**settings.smtp)) if settings.smtp else None
    except ValueError as exc:
        raise UsageError(f"{settings.source}: [smtp] {exc}") from None
    try:
        webhook = (
            WebhookChannel(
                WebhookSettings(**settings.webhook),
                policy=outbound_policy(settings.allowed_networks),
            )
            if settings.webhook
            else None
        )
    except ValueError as exc:
        raise UsageError(f"{settings.source}: [webhook] {exc}") from None
    outbox = OutboxChannel(OutboxSettings(directory=outbox_dir))
    cloudflare = None if store is None else _cloudflare(settings, store)
    return Deliverer(
        smtp=smtp, webhook=webhook, outbox=outbox, fallback_to_outbox=True, cloudflare=cloudflare
    )


@contextmanager
def open_takedown(
    session: Session,
    config: Config,
    *,
    consumer: str | None = None,
    need_sender: bool = True,
) -> Iterator[Takedown]:
    settings = config.takedown_settings()
    if need_sender:
        try:
            settings.require_identity()
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
    outbox_dir = settings.outbox_dir or (config.data_dir / OUTBOX_DIR_NAME)
    store = NoticeStore(session.client, session.keys)
    with ExitStack() as stack:
        router = stack.enter_context(open_router(session, settings, data_dir=config.data_dir))
        sender = None
        if settings.identity is not None:
            try:
                renderer = NoticeRenderer(
                    settings.identity,
                    templates_dir=settings.templates_dir,
                    default_language=settings.language,
                )
            except TemplateError as exc:
                raise UsageError(str(exc)) from None
            deliverer = _deliverer(settings, outbox_dir, store)
            stack.callback(deliverer.close)
            sender = NoticeSender(store, renderer, deliverer, NoticeFacts)
        yield Takedown(
            settings=settings,
            store=store,
            router=router,
            sender=sender,
            consumer=consumer or default_consumer_name(),
            outbox_dir=outbox_dir,
        )
