"""Property test of the TOML settings: a file of the real tables and fields holding values of
any TOML type gives typed settings or one :class:`SettingsError` on one line naming the file
(or the environment variable at fault), never another exception, within a time bound."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from store.environment import (
    ENV_CLOUDFLARE_ACCOUNT_ID,
    ENV_CLOUDFLARE_API_TOKEN,
    ENV_RDAP_URL,
    ENV_SMTP_PASSWORD,
    ENV_WEBHOOK_SECRET,
)
from takedown.settings import _TABLES, SettingsError, TakedownSettings
from tests.helpers import PARSER_BOUND

BOUND = PARSER_BOUND
ENV_NAMES = (
    ENV_SMTP_PASSWORD,
    ENV_WEBHOOK_SECRET,
    ENV_RDAP_URL,
    ENV_CLOUDFLARE_ACCOUNT_ID,
    ENV_CLOUDFLARE_API_TOKEN,
)


@dataclass(frozen=True)
class Raw:
    """A TOML value written as it stands: numbers Python would not print the same way."""

    text: str


# -- writing TOML (no TOML writer is a dependency) -------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

TomlValue = object


def toml_string(text: str) -> str:
    escaped = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
        for c in text
    )
    return f'"{escaped}"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: TomlValue) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)  # repr writes inf as TOML does
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(type(value))  # pragma: no cover - the strategies make no other value


# -- values: any TOML value, and the ones each field is likely to meet ------------------------

#: Numbers at the edges: past float range, past Python's int-to-text limit, non-finite.
RAW_NUMBERS = st.sampled_from(
    [
        "9" * 400,
        "-" + "9" * 400,
        "0x" + "f" * 5000,
        "9" * 5000,
        "1e400",
        "-1e400",
        "nan",
        "+inf",
        "-inf",
        "0o777",
        "0b101",
        "1_000",
    ]
).map(Raw)
OFFSETS = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
SCALARS = (
    st.text(max_size=20)
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.datetimes(timezones=st.none() | OFFSETS)
    | st.dates()
    | st.times()
    | RAW_NUMBERS
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
DURATIONS = (
    st.sampled_from(["24h", "90s", "500ms", "0", "7d", "2w", "1.5h", "-1h", "off", " 24h ", "1d"])
    | st.integers(-10, 10**7)
    | st.floats()
    | RAW_NUMBERS
)
INTEGERS = st.integers(-2, 70_000) | st.sampled_from([2**63 - 1, -(2**63)]) | RAW_NUMBERS
PATHS = st.sampled_from(
    ["templates/", "/var/spool/hotline", "~", "~/x", "~no-such-user-here/x", "", " ", "a\x00b"]
)
URLS = st.sampled_from(
    ["https://x.example", "http://127.0.0.1:9/hook", "bootstrap", "", "ftp://x", "https://", "\n"]
)
WORDS = st.sampled_from(
    ["Example Hotline", "notices@hotline.example", "NL", "nl", "en", "starttls", "tls", "none"]
) | st.sampled_from(["send", "send-anon", "smtp.hotline.example", "", "  ", "no-at-sign"])
CLASSIFICATIONS = st.sampled_from(["baseline", "A1", "a1", "B2", "C3", "", " A2 "])
LIST_NAMES = st.sampled_from(["local", "iwf", "bad name", "", "a\nb", "x" * 70, "*"])

DURATION_FIELDS = frozenset(
    {
        "reminder_interval",
        "escalate_after",
        "unreachable_min_span",
        "removal_confirm_after",
        "watch_interval",
        "watch_for",
        "retry_after",
        "recheck_lease",
        "cache_ttl",
        "negative_ttl",
        "timeout",
        "backoff",
        *_TABLES["retention"],
    }
)
INTEGER_FIELDS = frozenset(
    {"unreachable_confirmations", "max_attempts", "cache_entries", "port", "attempts"}
)
PATH_FIELDS = frozenset({"templates", "directory", "ip_to_asn", "ca_file"})
URL_FIELDS = frozenset({"url", "api_url", "website"})


def likely(name: str) -> st.SearchStrategy[TomlValue]:
    if name in DURATION_FIELDS:
        return DURATIONS
    if name == "recheck_schedule":
        return st.lists(DURATIONS, max_size=4)
    if name in INTEGER_FIELDS:
        return INTEGERS
    if name in PATH_FIELDS:
        return PATHS | st.lists(PATHS, max_size=2)
    if name in URL_FIELDS:
        return URLS
    return WORDS


IDENTITY = {
    "name": "Example Hotline",
    "email": "notices@hotline.example",
    "website": "https://hotline.example",
    "country": "NL",
    "legal_basis": "Criminal Code",
}


@st.composite
def tables(draw: st.DrawFn, table: str) -> dict[str, TomlValue]:
    """One table's fields: real names (now and then an unknown one), likely or any values."""
    if table == "classification":
        value = CLASSIFICATIONS | st.dictionaries(st.text(max_size=4) | CLASSIFICATIONS, ANY_VALUE)
        return draw(st.dictionaries(LIST_NAMES, value | ANY_VALUE, max_size=3))
    fields: dict[str, TomlValue] = (
        dict(IDENTITY) if table == "hotline" and draw(st.booleans()) else {}
    )
    names = st.sampled_from(sorted(_TABLES.get(table) or ["x"]))
    for name in draw(st.lists(names, max_size=5)):
        fields[name] = draw(likely(name) if draw(st.integers(0, 3)) else ANY_VALUE)
    if draw(st.integers(0, 19)) == 0:
        fields[draw(st.sampled_from(["", "a\nb", "Name"]))] = draw(ANY_VALUE)
    return fields


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.integers(0, 9)) == 0:  # a stray top-level key, or a table given as a value
        lines.append(
            f"{toml_key(draw(st.sampled_from(['notices', 'x'])))} = {toml_value(draw(ANY_VALUE))}"
        )
    names = draw(st.lists(st.sampled_from(sorted(_TABLES)), unique=True, max_size=5))
    if draw(st.integers(0, 19)) == 0:
        names.append(draw(st.sampled_from(["unknown", "a\nb", ""])))
    for table in names:
        brackets = "[[{}]]" if draw(st.integers(0, 19)) == 0 else "[{}]"
        lines.append(brackets.format(toml_key(table)))
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in draw(tables(table)).items()]
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 19)) == 0:  # a slip of the keyboard
        at = draw(st.integers(0, len(text)))
        text = (
            text[:at] + draw(st.sampled_from(["=", "[", '"', "\x00", "\n", "]", "'"])) + text[at:]
        )
    return text


ENVIRONMENTS = st.fixed_dictionaries(
    {},
    optional={
        ENV_SMTP_PASSWORD: st.text(max_size=5),
        ENV_WEBHOOK_SECRET: st.text(max_size=5),
        ENV_RDAP_URL: URLS,
        ENV_CLOUDFLARE_ACCOUNT_ID: st.sampled_from(["", "acct"]),
        ENV_CLOUDFLARE_API_TOKEN: st.sampled_from(["", "token"]),
    },
)


# -- the property -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("settings") / "hotline.toml"


@BOUND
@given(text=documents(), env=ENVIRONMENTS)
@example(text="[notices]\nreminder_interval = " + "9" * 400 + "\n", env={})
@example(text="a = " + "9" * 5000 + "\n", env={})
@example(text="[smtp]\nhost = 'h'\nport = 0x" + "f" * 5000 + "\n", env={})
@example(text="[notices]\ntemplates = '~no-such-user-here/t'\n", env={})
@example(text='["a\\nb"]\nx = 1\n', env={})
@example(text='[notices]\n"a\\nb" = 1\n', env={})
@example(text='[classification.iwf]\n"a\\rb" = 5\n', env={})
def test_a_settings_file_is_settings_or_one_error_line(
    config: Path, text: str, env: dict[str, str]
) -> None:
    config.write_text(text, encoding="utf-8")
    try:
        loaded = TakedownSettings.load(config, env)
    except SettingsError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith((str(config), *ENV_NAMES)), message
    else:
        durations = [
            loaded.reminder_interval,
            loaded.escalate_after,
            *loaded.recheck_schedule,
            loaded.unreachable_min_span,
            loaded.removal_confirm_after,
            loaded.watch_interval,
            loaded.watch_for,
            loaded.retry_after,
            loaded.recheck_lease,
            loaded.rdap_cache_ttl,
            loaded.rdap_timeout,
            loaded.rdap_negative_ttl,
        ]
        assert all(0 <= seconds < math.inf for seconds in durations)
        assert loaded.recheck_schedule
        assert min(loaded.max_attempts, loaded.unreachable_confirmations) >= 1
        assert loaded.smtp is None or 0 < loaded.smtp["port"] < 65536


@BOUND
@given(data=st.binary(max_size=40))
@example(data=b"[hotline]\nname = '\xff'\n")
def test_bytes_that_are_not_utf8_are_one_error_line(config: Path, data: bytes) -> None:
    config.write_bytes(data)
    try:
        TakedownSettings.load(config, {})
    except SettingsError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(config))
