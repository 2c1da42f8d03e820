"""Notice-and-takedown settings: parsed once, from the hotline's TOML configuration file.

The file (``HOTLINE_CONFIG``, by default ``hotline.toml`` in the data directory) has these
tables; every key is optional except the hotline's identity, which a notice cannot go without::

    [hotline]                      # who sends the notices (EU DSA Art. 16: the notifier)
    name = "Example Hotline"
    email = "notices@hotline.example"
    website = "https://hotline.example"
    country = "NL"                 # ISO 3166-1 alpha-2
    legal_basis = "..."            # the law the content violates, as cited in notices
    address = "..."                # postal address, optional
    phone = "..."                  # optional
    mail_domain = "hotline.example"  # right-hand side of Message-IDs, optional

    [notices]
    language = "en"                # template language when the provider has none
    templates = "templates/"       # a directory of notice.<lang>.txt.j2 overriding the built-in
    directory = "providers.yaml"   # the provider directory (YAML or CSV)
    reminder_interval = "24h"      # still online this long after the last message: remind
    escalate_after = "7d"          # still online this long after the notice: escalate
    recheck_schedule = ["1h", "4h", "12h", "24h"]   # then the last step repeats
    unreachable_confirmations = 3  # unreachable checks (spread out) before "gone_unreachable"
    unreachable_min_span = "72h"   # ... and the time they must span
    removal_confirm_after = "1h"   # a removal is confirmed by a second look this much later
    watch_interval = "7d"          # a closed notice is looked at again this often ...
    watch_for = "90d"              # ... for this long; content found again reopens it ("0": off)
    user_agent = "..."             # the recheck's User-Agent (default: the crawl's)
    max_attempts = 5               # delivery attempts before a hit is dead-lettered
    retry_after = "60s"            # a failed delivery is retried after this long
    recheck_lease = "10m"          # a recheck taken by one process is not retaken before

    [rdap]
    url = "bootstrap"              # default: ask the registry the IANA bootstrap registry
                                   # names, directly; an http(s) URL sends every query to that
                                   # one service instead; "" turns RDAP off.
                                   # HOTLINE_RDAP_URL overrides.
    cache_ttl = "24h"              # how long an answer is cached
    negative_ttl = "5m"            # how long a failed lookup is cached (at most 1h)
    cache_entries = 10000          # most answers kept; the oldest are evicted
    timeout = "10s"

    [routing]
    ip_to_asn = "ip2asn-combined.tsv.gz"   # offline IP-to-AS table (ip2asn TSV, gzip or not);
                                           # a path or a list of paths (v4 and v6 files)

    [smtp]                         # password from HOTLINE_SMTP_PASSWORD only
    host = "smtp.hotline.example"
    port = 587
    security = "starttls"          # "starttls", "tls" or "none"
    username = "notices"
    ca_file = "/etc/ssl/private-relay.pem"   # optional extra CA

    [webhook]                      # secret from HOTLINE_WEBHOOK_SECRET only
    url = "https://abuse.provider.example/hook"   # default; a provider's webhook_url wins
    attempts = 4

    [outbox]
    directory = "outbox"           # default: <data dir>/outbox

    [network]                      # private networks RDAP and webhooks may reach (default none)
    allowed_networks = ["10.20.0.0/16"]

    [retention]                    # how long records are kept ("off" or 0: forever; >= 1d)
    closed_notices = "365d"        # removed / gone_unreachable notices, from when they closed
    hits = "180d"                  # hits of closed notices (from closing) or of none (queued)
    review = "180d"                # review items, by the same rule
    dead_letters = "180d"          # dead letters whose notice is closed or gone
    audit = "365d"                 # audit stream entries

    [cloudflare]                   # account id and token from HOTLINE_CLOUDFLARE_ACCOUNT_ID and
                                   # HOTLINE_CLOUDFLARE_API_TOKEN only; without them: form
    api_url = "https://api.cloudflare.com/client/v4"
    host_notification = "send"     # "send" or "send-anon"
    ncmec_notification = "send"    # "send" or "send-anon"
    owner_notification = "send-anon"   # "send", "send-anon" or "none"
    attempts = 4

    [classification]               # X-ARF classification of each list's categories
    local = "baseline"             # every category of list "local"
    iwf.A1 = "A1"                  # one category of list "iwf" (a [classification.iwf] table)
    iwf."*" = "baseline"           # every other category of "iwf"

``[classification]`` wins over the mapping stored with a list (``hashes import
--classification``); a category neither maps has none, and its notices wait as
``unclassified`` (see :mod:`takedown.classification`).

Relative paths are relative to the file. Secrets are read from the environment only, never
from the file. Errors name the file and the field: ``hotline.toml: [smtp] port: expected an
integer, got 'x'``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from matchers.errors import HashListError
from matchers.lists import validate_list_name
from store.addresses import parse_networks
from store.clock import DAY, HOUR, parse_duration
from store.environment import (
    ENV_CLOUDFLARE_ACCOUNT_ID,
    ENV_CLOUDFLARE_API_TOKEN,
    ENV_RDAP_URL,
    ENV_SMTP_PASSWORD,
    ENV_WEBHOOK_SECRET,
)
from store.lists import EVERY_CATEGORY, ClassificationMap, normalise_classification
from takedown.channels.cloudflare import (
    DEFAULT_CLOUDFLARE_API_URL,
    DEFAULT_CLOUDFLARE_ATTEMPTS,
    DEFAULT_CLOUDFLARE_BACKOFF,
    DEFAULT_CLOUDFLARE_TIMEOUT,
    DEFAULT_HOST_NOTIFICATION,
    DEFAULT_NCMEC_NOTIFICATION,
    DEFAULT_OWNER_NOTIFICATION,
    NOTIFICATIONS,
)
from takedown.channels.smtp import (
    DEFAULT_SMTP_SECURITY,
    DEFAULT_SMTP_TIMEOUT,
    SMTP_SECURITY,
)
from takedown.channels.webhook import (
    DEFAULT_WEBHOOK_ATTEMPTS,
    DEFAULT_WEBHOOK_BACKOFF,
    DEFAULT_WEBHOOK_TIMEOUT,
)
from takedown.errors import TakedownError
from takedown.http import DEFAULT_HTTP_TIMEOUT
from takedown.model import HotlineIdentity
from takedown.rdap import (
    DEFAULT_RDAP_URL,
    RDAP_BOOTSTRAP,
    RDAP_CACHE_MAX_ENTRIES,
    RDAP_NEGATIVE_TTL,
)
from takedown.retention import DEFAULT_RETENTION, MIN_PERIOD, RetentionSettings

__all__ = [
    "DEFAULT_RDAP_URL",
    "ENV_RDAP_URL",
    "ENV_SMTP_PASSWORD",
    "ENV_WEBHOOK_SECRET",
    "SettingsError",
    "TakedownSettings",
]

DEFAULT_REMINDER_INTERVAL = DAY
DEFAULT_ESCALATE_AFTER = 7 * DAY
DEFAULT_RECHECK_SCHEDULE: tuple[float, ...] = (HOUR, 4 * HOUR, 12 * HOUR, DAY)
DEFAULT_UNREACHABLE_CONFIRMATIONS = 3
DEFAULT_UNREACHABLE_MIN_SPAN = 3 * DAY
DEFAULT_REMOVAL_CONFIRM_AFTER = HOUR
DEFAULT_WATCH_INTERVAL = 7 * DAY
DEFAULT_WATCH_FOR = 90 * DAY
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_AFTER = 60.0
DEFAULT_RECHECK_LEASE = 600.0
DEFAULT_RDAP_CACHE_TTL = DAY
DEFAULT_RDAP_TIMEOUT = DEFAULT_HTTP_TIMEOUT
DEFAULT_RDAP_NEGATIVE_TTL = float(RDAP_NEGATIVE_TTL)
#: A failed lookup is never cached longer than this.
MAX_RDAP_NEGATIVE_TTL = HOUR
#: The ``[smtp]`` port when the file names none: message submission (RFC 6409).
DEFAULT_SMTP_PORT = 587

_TABLES: dict[str, frozenset[str]] = {
    "hotline": frozenset(
        {"name", "email", "website", "country", "legal_basis", "address", "phone", "mail_domain"}
    ),
    "notices": frozenset(
        {
            "language",
            "templates",
            "directory",
            "reminder_interval",
            "escalate_after",
            "recheck_schedule",
            "unreachable_confirmations",
            "max_attempts",
            "retry_after",
            "recheck_lease",
            "unreachable_min_span",
            "removal_confirm_after",
            "watch_interval",
            "watch_for",
            "user_agent",
        }
    ),
    "rdap": frozenset({"url", "cache_ttl", "negative_ttl", "cache_entries", "timeout"}),
    "routing": frozenset({"ip_to_asn"}),
    "smtp": frozenset({"host", "port", "security", "username", "ca_file", "timeout"}),
    "webhook": frozenset({"url", "attempts", "timeout", "backoff"}),
    "outbox": frozenset({"directory"}),
    "network": frozenset({"allowed_networks"}),
    "retention": frozenset(RetentionSettings.FIELDS),
    "classification": frozenset(),  # keys are list names, checked by _classification
    "cloudflare": frozenset(
        {
            "api_url",
            "host_notification",
            "ncmec_notification",
            "owner_notification",
            "attempts",
            "timeout",
            "backoff",
        }
    ),
}
_IDENTITY_REQUIRED = ("name", "email", "website", "country", "legal_basis")


class SettingsError(TakedownError):
    """The configuration file is unreadable or a field in it is wrong (names both)."""


@dataclass(frozen=True, slots=True)
class TakedownSettings:
    """Everything the notifier and the recheck scheduler need, typed."""

    source: str = "(defaults)"
    identity: HotlineIdentity | None = None
    language: str = "en"
    templates_dir: Path | None = None
    directory_path: Path | None = None
    reminder_interval: float = DEFAULT_REMINDER_INTERVAL
    escalate_after: float = DEFAULT_ESCALATE_AFTER
    recheck_schedule: tuple[float, ...] = DEFAULT_RECHECK_SCHEDULE
    unreachable_confirmations: int = DEFAULT_UNREACHABLE_CONFIRMATIONS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_after: float = DEFAULT_RETRY_AFTER
    recheck_lease: float = DEFAULT_RECHECK_LEASE
    unreachable_min_span: float = DEFAULT_UNREACHABLE_MIN_SPAN
    removal_confirm_after: float = DEFAULT_REMOVAL_CONFIRM_AFTER
    watch_interval: float = DEFAULT_WATCH_INTERVAL
    watch_for: float = DEFAULT_WATCH_FOR
    user_agent: str = ""
    rdap_url: str | None = DEFAULT_RDAP_URL
    rdap_cache_ttl: float = DEFAULT_RDAP_CACHE_TTL
    rdap_timeout: float = DEFAULT_RDAP_TIMEOUT
    rdap_negative_ttl: float = DEFAULT_RDAP_NEGATIVE_TTL
    rdap_cache_entries: int = RDAP_CACHE_MAX_ENTRIES
    ip_to_asn: tuple[Path, ...] = ()
    smtp: Mapping[str, Any] | None = None  # keyword arguments for SmtpSettings
    webhook: Mapping[str, Any] | None = None  # keyword arguments for WebhookSettings
    outbox_dir: Path | None = None
    #: Private networks RDAP and webhooks may reach (``[network] allowed_networks``).
    allowed_networks: tuple[str, ...] = ()
    retention: RetentionSettings = DEFAULT_RETENTION
    extra: Mapping[str, Any] = field(default_factory=dict)
    classification: Mapping[str, ClassificationMap] = field(default_factory=dict)
    #: Keyword arguments for CloudflareSettings (without the reporter, which the
    #: [hotline] identity gives); None when the API credentials are not in the environment.
    cloudflare: Mapping[str, Any] | None = None

    def recheck_delay(self, checks_done: int) -> float:
        """Seconds until the next recheck after ``checks_done`` rechecks (the last step of
        the schedule repeats)."""
        schedule = self.recheck_schedule
        return schedule[min(checks_done, len(schedule) - 1)]

    @property
    def check_spacing(self) -> float:
        """The least time between two checks that both count towards a verdict (the first
        step of the schedule): checks closer together (``recheck --all`` twice) say nothing
        new about whether a site is down for good."""
        return min(self.recheck_schedule)

    def require_identity(self) -> HotlineIdentity:
        if self.identity is None:
            raise SettingsError(
                f"{self.source}: no [hotline] table: notices need the hotline's "
                f"{', '.join(_IDENTITY_REQUIRED)}"
            )
        return self.identity

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str]) -> TakedownSettings:
        """Read ``path`` (which must exist) and apply the environment's overrides."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise SettingsError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
        except ValueError:  # tomllib: a decimal integer past Python's int-to-text digit limit
            raise SettingsError(f"{path}: a number has too many digits") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise SettingsError(f"{path}: nested too deeply to be a configuration") from None
        return cls.from_mapping(data, source=str(path), base=path.parent, env=env)

    @classmethod
    def defaults(cls, env: Mapping[str, str]) -> TakedownSettings:
        return cls.from_mapping({}, source="(no configuration file)", base=Path.cwd(), env=env)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str, base: Path, env: Mapping[str, str]
    ) -> TakedownSettings:
        reader = _Reader(source, base)
        for table, value in data.items():
            if table not in _TABLES:
                raise SettingsError(
                    f"{source}: unknown table [{_key(table)}] (known: {', '.join(sorted(_TABLES))})"
                )
            if not isinstance(value, Mapping):
                raise SettingsError(f"{source}: [{table}] must be a table")
            unknown = sorted(set(value) - _TABLES[table]) if table != "classification" else []
            if unknown:
                raise SettingsError(
                    f"{source}: [{table}] {_key(unknown[0])}: unknown field "
                    f"(known: {', '.join(sorted(_TABLES[table]))})"
                )
        hotline = data.get("hotline", {})
        notices = data.get("notices", {})
        rdap = data.get("rdap", {})
        identity = None
        if hotline:
            for name in _IDENTITY_REQUIRED:
                reader.string("hotline", hotline, name, required=True)
            country = reader.string("hotline", hotline, "country", required=True)
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise SettingsError(
                    f"{source}: [hotline] country: expected an ISO 3166 code like 'NL', "
                    f"got {country!r}"
                )
            email = reader.string("hotline", hotline, "email", required=True)
            if "@" not in email:
                raise SettingsError(f"{source}: [hotline] email: {email!r} is not an email address")
            identity = HotlineIdentity(
                name=reader.string("hotline", hotline, "name", required=True),
                email=email,
                website=reader.string("hotline", hotline, "website", required=True),
                country=country,
                legal_basis=reader.string("hotline", hotline, "legal_basis", required=True),
                address=reader.string("hotline", hotline, "address"),
                phone=reader.string("hotline", hotline, "phone"),
                mail_domain=reader.string("hotline", hotline, "mail_domain"),
            )
        schedule_raw = notices.get("recheck_schedule")
        schedule = DEFAULT_RECHECK_SCHEDULE
        if schedule_raw is not None:
            if not isinstance(schedule_raw, list) or not schedule_raw:
                raise SettingsError(
                    f"{source}: [notices] recheck_schedule: expected a non-empty list of durations"
                )
            schedule = tuple(
                reader.duration_value("notices", "recheck_schedule", item) for item in schedule_raw
            )
        rdap_url: str | None = reader.string("rdap", rdap, "url") or DEFAULT_RDAP_URL
        if "url" in rdap and not rdap["url"]:
            rdap_url = None
        if ENV_RDAP_URL in env:
            rdap_url = env[ENV_RDAP_URL].strip() or None
        if (
            rdap_url is not None
            and rdap_url != RDAP_BOOTSTRAP
            and not re.match(r"^https?://", rdap_url)
        ):
            raise SettingsError(
                f"{ENV_RDAP_URL if ENV_RDAP_URL in env else source + ': [rdap] url'}: "
                f"expected {RDAP_BOOTSTRAP!r} or an http(s) URL, got {rdap_url!r}"
            )
        negative_ttl = reader.duration("rdap", rdap, "negative_ttl", DEFAULT_RDAP_NEGATIVE_TTL)
        if negative_ttl > MAX_RDAP_NEGATIVE_TTL:
            raise reader.fail(
                "rdap",
                "negative_ttl",
                f"at most 1h (a failure must be retried soon), got {negative_ttl:g}s",
            )
        return cls(
            source=source,
            identity=identity,
            language=reader.string("notices", notices, "language") or "en",
            templates_dir=reader.path("notices", notices, "templates"),
            directory_path=reader.path("notices", notices, "directory"),
            reminder_interval=reader.duration(
                "notices", notices, "reminder_interval", DEFAULT_REMINDER_INTERVAL
            ),
            escalate_after=reader.duration(
                "notices", notices, "escalate_after", DEFAULT_ESCALATE_AFTER
            ),
            recheck_schedule=schedule,
            unreachable_confirmations=reader.integer(
                "notices", notices, "unreachable_confirmations", DEFAULT_UNREACHABLE_CONFIRMATIONS
            ),
            max_attempts=reader.integer("notices", notices, "max_attempts", DEFAULT_MAX_ATTEMPTS),
            retry_after=reader.duration("notices", notices, "retry_after", DEFAULT_RETRY_AFTER),
            recheck_lease=reader.duration(
                "notices", notices, "recheck_lease", DEFAULT_RECHECK_LEASE
            ),
            unreachable_min_span=reader.duration(
                "notices", notices, "unreachable_min_span", DEFAULT_UNREACHABLE_MIN_SPAN
            ),
            removal_confirm_after=reader.duration(
                "notices", notices, "removal_confirm_after", DEFAULT_REMOVAL_CONFIRM_AFTER
            ),
            watch_interval=reader.duration(
                "notices", notices, "watch_interval", DEFAULT_WATCH_INTERVAL
            ),
            watch_for=reader.duration("notices", notices, "watch_for", DEFAULT_WATCH_FOR),
            user_agent=reader.string("notices", notices, "user_agent"),
            rdap_url=rdap_url,
            rdap_cache_ttl=reader.duration("rdap", rdap, "cache_ttl", DEFAULT_RDAP_CACHE_TTL),
            rdap_timeout=reader.duration("rdap", rdap, "timeout", DEFAULT_RDAP_TIMEOUT),
            rdap_negative_ttl=negative_ttl,
            rdap_cache_entries=reader.integer(
                "rdap", rdap, "cache_entries", RDAP_CACHE_MAX_ENTRIES
            ),
            ip_to_asn=_paths(reader, "routing", data.get("routing", {}), "ip_to_asn"),
            smtp=_smtp(reader, data.get("smtp"), env),
            webhook=_webhook(reader, data.get("webhook"), env),
            outbox_dir=reader.path("outbox", data.get("outbox", {}), "directory"),
            allowed_networks=_networks(reader, data.get("network", {})),
            retention=_retention(reader, data.get("retention")),
            classification=_classification(reader, data.get("classification", {})),
            cloudflare=_cloudflare(reader, data.get("cloudflare"), env),
        )


def _key(name: str) -> str:
    """A table or field name from the file as messages show it: as written, or quoted and
    escaped when empty or not printable (a quoted TOML key may hold a newline)."""
    return name if name and name.isprintable() else repr(name)


def _shown(value: object) -> str:
    """``repr(value)`` for a message; Python refuses to print an integer of more than
    ``sys.get_int_max_str_digits()`` digits, and TOML's hexadecimal integers have no limit."""
    try:
        return repr(value)
    except ValueError:
        return "a number with too many digits to show"


class _Reader:
    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def fail(self, table: str, name: str, message: str) -> SettingsError:
        return SettingsError(f"{self.source}: [{table}] {_key(name)}: {message}")

    def string(
        self, table: str, data: Mapping[str, Any], name: str, *, required: bool = False
    ) -> str:
        value = data.get(name)
        if value is None:
            if required:
                raise self.fail(table, name, "missing (required)")
            return ""
        if not isinstance(value, str):
            raise self.fail(table, name, f"expected a string, got {_shown(value)}")
        if required and not value.strip():
            raise self.fail(table, name, "must not be empty")
        return value.strip()

    def integer(self, table: str, data: Mapping[str, Any], name: str, default: int) -> int:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(table, name, f"expected a positive integer, got {_shown(value)}")
        return value

    def duration(self, table: str, data: Mapping[str, Any], name: str, default: float) -> float:
        if name not in data:
            return default
        return self.duration_value(table, name, data[name])

    def duration_value(self, table: str, name: str, value: object) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(table, name, str(exc)) from None

    def path(self, table: str, data: Mapping[str, Any], name: str) -> Path | None:
        value = self.string(table, data, name)
        if not value:
            return None
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # "~user/..." of no such user
            raise self.fail(table, name, f"no home directory to expand in {value!r}") from None
        return path if path.is_absolute() else self.base / path


def _networks(reader: _Reader, data: Mapping[str, Any]) -> tuple[str, ...]:
    """``[network] allowed_networks``: CIDRs (or addresses) as written, each checked."""
    value = data.get("allowed_networks", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise reader.fail("network", "allowed_networks", "expected a list of CIDRs")
    try:
        parse_networks(value)
    except ValueError as exc:
        reason = str(exc).removeprefix("SAFETY_ALLOWED_NETWORKS: ")
        raise reader.fail("network", "allowed_networks", reason) from None
    return tuple(item.strip() for item in value)


def _paths(reader: _Reader, table: str, data: Mapping[str, Any], name: str) -> tuple[Path, ...]:
    """One path or a list of paths, each relative to the configuration file."""
    value = data.get(name)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            reason = f"expected a path or a list of paths, got {_shown(value)}"
            raise reader.fail(table, name, reason)
        path = reader.path(table, {name: item}, name)
        if path is not None:
            out.append(path)
    return tuple(out)


def _smtp(
    reader: _Reader, data: Mapping[str, Any] | None, env: Mapping[str, str]
) -> dict[str, Any] | None:
    if not data:
        return None
    host = reader.string("smtp", data, "host", required=True)
    port = data.get("port", DEFAULT_SMTP_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise reader.fail("smtp", "port", f"expected a port number, got {_shown(port)}")
    security = reader.string("smtp", data, "security") or DEFAULT_SMTP_SECURITY
    if security not in SMTP_SECURITY:
        raise reader.fail(
            "smtp", "security", f"expected 'starttls', 'tls' or 'none', got {security!r}"
        )
    ca_file = reader.path("smtp", data, "ca_file")
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": reader.string("smtp", data, "username") or None,
        "password": env.get(ENV_SMTP_PASSWORD) or None,
        "timeout": reader.duration("smtp", data, "timeout", DEFAULT_SMTP_TIMEOUT),
        "ca_file": None if ca_file is None else str(ca_file),
    }


def _webhook(
    reader: _Reader, data: Mapping[str, Any] | None, env: Mapping[str, str]
) -> dict[str, Any] | None:
    secret = env.get(ENV_WEBHOOK_SECRET, "")
    if not data and not secret:
        return None
    data = data or {}
    if not secret:
        raise SettingsError(
            f"{reader.source}: [webhook] is configured but {ENV_WEBHOOK_SECRET} is not set "
            "(webhook notices are always signed)"
        )
    url = reader.string("webhook", data, "url") or None
    if url is not None and not re.match(r"^https?://", url):
        raise reader.fail("webhook", "url", f"expected an http(s) URL, got {url!r}")
    return {
        "url": url,
        "secret": secret,
        "attempts": reader.integer("webhook", data, "attempts", DEFAULT_WEBHOOK_ATTEMPTS),
        "timeout": reader.duration("webhook", data, "timeout", DEFAULT_WEBHOOK_TIMEOUT),
        "backoff": reader.duration("webhook", data, "backoff", DEFAULT_WEBHOOK_BACKOFF),
    }


def _retention(reader: _Reader, data: Mapping[str, Any] | None) -> RetentionSettings:
    """The ``[retention]`` periods: a duration of at least a day, or ``"off"``/``0`` (keep
    forever); a field not given keeps its default."""
    if not data:
        return DEFAULT_RETENTION
    periods: dict[str, float | None] = {}
    for name in RetentionSettings.FIELDS:
        if name not in data:
            continue
        value = data[name]
        if (isinstance(value, str) and value.strip().lower() == "off") or (
            not isinstance(value, bool) and value in (0, "0")
        ):
            periods[name] = None
            continue
        seconds = reader.duration_value("retention", name, value)
        if seconds < MIN_PERIOD:
            raise reader.fail(
                "retention",
                name,
                f"expected at least 1d, or 'off' to keep forever (a bare number is seconds), "
                f"got {value!r}",
            )
        periods[name] = seconds
    return replace(DEFAULT_RETENTION, **periods)


def _classification(reader: _Reader, data: Mapping[str, Any]) -> dict[str, ClassificationMap]:
    """``[classification]``: list name -> a value (every category) or a table of
    category -> value (``"*"``: every other category)."""
    out: dict[str, ClassificationMap] = {}
    for list_name, value in data.items():
        try:
            validate_list_name(list_name)
        except HashListError:
            raise reader.fail(
                "classification", list_name, "not a list name (A-Z a-z 0-9 . _ -)"
            ) from None
        mapping = value if isinstance(value, Mapping) else {EVERY_CATEGORY: value}
        for category, item in mapping.items():
            where = list_name if mapping is not value else f"{list_name}.{category}"
            if not isinstance(item, str):
                reason = f"expected a string, got {_shown(item)}"
                raise reader.fail("classification", where, reason)
            try:
                normalise_classification(item)
            except ValueError as exc:
                raise reader.fail("classification", where, str(exc)) from None
        out[list_name] = ClassificationMap.parse(mapping)
    return out


def _cloudflare(
    reader: _Reader, data: Mapping[str, Any] | None, env: Mapping[str, str]
) -> dict[str, Any] | None:
    """The ``[cloudflare]`` options, or None when the credentials are not both set."""
    data = data or {}
    account = env.get(ENV_CLOUDFLARE_ACCOUNT_ID, "").strip()
    token = env.get(ENV_CLOUDFLARE_API_TOKEN, "").strip()
    if bool(account) != bool(token):
        missing = ENV_CLOUDFLARE_API_TOKEN if account else ENV_CLOUDFLARE_ACCOUNT_ID
        present = ENV_CLOUDFLARE_ACCOUNT_ID if account else ENV_CLOUDFLARE_API_TOKEN
        raise SettingsError(
            f"{present} is set but {missing} is not (the Cloudflare API needs both)"
        )
    api_url = reader.string("cloudflare", data, "api_url") or DEFAULT_CLOUDFLARE_API_URL
    if not re.match(r"^https?://", api_url):
        raise reader.fail("cloudflare", "api_url", f"expected an http(s) URL, got {api_url!r}")
    notifications = {
        name: reader.string("cloudflare", data, name) or default
        for name, default in (
            ("host_notification", DEFAULT_HOST_NOTIFICATION),
            ("ncmec_notification", DEFAULT_NCMEC_NOTIFICATION),
            ("owner_notification", DEFAULT_OWNER_NOTIFICATION),
        )
    }
    for name, value in notifications.items():
        allowed = NOTIFICATIONS if name == "owner_notification" else ("send", "send-anon")
        if value not in allowed:
            raise reader.fail(
                "cloudflare", name, f"expected one of {', '.join(allowed)}, got {value!r}"
            )
    options = {
        "api_url": api_url,
        **notifications,
        "attempts": reader.integer("cloudflare", data, "attempts", DEFAULT_CLOUDFLARE_ATTEMPTS),
        "timeout": reader.duration("cloudflare", data, "timeout", DEFAULT_CLOUDFLARE_TIMEOUT),
        "backoff": reader.duration("cloudflare", data, "backoff", DEFAULT_CLOUDFLARE_BACKOFF),
    }
    if not account:
        return None
    return {"account_id": account, "api_token": token, **options}
