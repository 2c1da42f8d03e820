"""The TOML configuration of notices: values, defaults, environment, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.clock import parse_duration
from takedown.settings import (
    DEFAULT_RDAP_URL,
    ENV_RDAP_URL,
    ENV_SMTP_PASSWORD,
    ENV_WEBHOOK_SECRET,
    SettingsError,
    TakedownSettings,
)
from tests.builders import IDENTITY_TOML


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        IDENTITY_TOML
        + """
[notices]
directory = "providers.yaml"
reminder_interval = "12h"
escalate_after = "3d"
recheck_schedule = ["30m", "2h"]
max_attempts = 3
[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
username = "u"
[webhook]
url = "http://127.0.0.1:9/hook"
[outbox]
directory = "/var/spool/hotline"
""",
    )
    env = {ENV_SMTP_PASSWORD: "pw", ENV_WEBHOOK_SECRET: "s3", ENV_RDAP_URL: "http://127.0.0.1:1"}
    settings = TakedownSettings.load(path, env)
    assert settings.identity is not None
    assert settings.identity.country == "NL"
    assert settings.identity.message_id_domain == "hotline.example"
    assert settings.directory_path == tmp_path / "providers.yaml"
    assert settings.reminder_interval == 12 * 3600
    assert settings.escalate_after == 3 * 86400
    assert settings.recheck_schedule == (1800.0, 7200.0)
    assert [settings.recheck_delay(n) for n in range(4)] == [1800.0, 7200.0, 7200.0, 7200.0]
    assert settings.max_attempts == 3
    assert settings.smtp is not None
    assert settings.smtp["password"] == "pw"
    assert settings.smtp["port"] == 2525
    assert settings.webhook is not None
    assert settings.webhook["secret"] == "s3"
    assert settings.outbox_dir == Path("/var/spool/hotline")
    assert settings.rdap_url == "http://127.0.0.1:1"


def test_defaults_without_a_file() -> None:
    settings = TakedownSettings.defaults({})
    assert settings.identity is None
    assert settings.rdap_url == DEFAULT_RDAP_URL
    assert settings.smtp is None
    assert settings.webhook is None
    with pytest.raises(SettingsError, match=r"no \[hotline\] table"):
        settings.require_identity()


def test_empty_rdap_url_turns_rdap_off(tmp_path: Path) -> None:
    assert TakedownSettings.defaults({ENV_RDAP_URL: ""}).rdap_url is None
    path = write(tmp_path, '[rdap]\nurl = ""\n')
    assert TakedownSettings.load(path, {}).rdap_url is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hotlin]\nname='x'\n", r"unknown table \[hotlin\]"),
        ("[notices]\nreminder = '1h'\n", r"\[notices\] reminder: unknown field"),
        ("[notices]\nreminder_interval = 'soon'\n", r"\[notices\] reminder_interval: expected"),
        ("[notices]\nmax_attempts = 0\n", r"\[notices\] max_attempts: expected a positive"),
        ("[notices]\nrecheck_schedule = []\n", r"recheck_schedule: expected a non-empty"),
        ("[smtp]\nport = 25\n", r"\[smtp\] host: missing"),
        ("[smtp]\nhost = 'h'\nport = 'x'\n", r"\[smtp\] port: expected a port"),
        ("[smtp]\nhost = 'h'\nsecurity = 'ssl'\n", r"\[smtp\] security: expected"),
        ("[webhook]\nurl = 'http://h/'\n", r"HOTLINE_WEBHOOK_SECRET is not set"),
        ("[rdap]\nurl = 'ftp://x'\n", r"\[rdap\] url: expected 'bootstrap' or an http"),
        ("[hotline]\nname = 'x'\n", r"\[hotline\] email: missing"),
        (IDENTITY_TOML.replace('"NL"', '"nl"'), r"\[hotline\] country: expected an ISO"),
        (IDENTITY_TOML.replace("notices@", "notices-at-"), r"\[hotline\] email: .* not an email"),
        ("[notices\n", r"hotline.toml: "),
        # A RecursionError escaped before (tomllib parses nesting recursively).
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", r"hotline.toml: nested too deeply"),
        ("x = " + "{a = " * 100_000 + "1" + "}" * 100_000 + "\n", r"nested too deeply"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError, match=message) as caught:
        TakedownSettings.load(path, {})
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secrets_never_come_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[smtp]\nhost = 'h'\npassword = 'p'\n")
    with pytest.raises(SettingsError, match=r"\[smtp\] password: unknown field"):
        TakedownSettings.load(path, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        (30, 30.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1y", "-1h", "h", True, "1 h 2"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
