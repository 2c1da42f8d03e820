"""Sending by hand through the real CLI: a provider that takes reports by web form, the
notifier's pointer to the form, ``notices show``, ``notices mark-sent`` and its refusals, and
the shipped Cloudflare entry without API credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from store.keys import Keys
from store.queue import HitQueue
from tests.builders import directory_config, make_hit
from tests.helpers import ok_json, one_line_error, run_cli

FORM = "https://abuse.alpha.example/report"


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    config = directory_config(tmp_path, f"channel: form\nform_url: {FORM}")
    return {**env, "HOTLINE_CONFIG": str(config)}


def test_form_notice_is_prepared_shown_and_marked_sent(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    hit = make_hit()
    HitQueue(redis_client, Keys(redis_prefix)).enqueue(hit)
    notified = run_cli(["notifier", "--once"], env)
    assert notified.returncode == 0, notified.stderr
    ref = f"HL-{hit.incident[:12]}"
    assert f"{ref}: prepared for sending by hand ({FORM})" in notified.stdout
    assert f"hotline notices mark-sent {ref}" in notified.stdout
    assert (tmp_path / "data" / "outbox" / f"{hit.incident}.notice.0.eml").is_file()

    shown = ok_json(["notices", "show", ref], env)
    assert (shown["status"], shown["form_url"]) == ("awaiting_manual", FORM)
    assert shown["sent_at"] is None
    text = run_cli(["notices", "show", ref], env)
    assert FORM in text.stdout and "mark-sent" in text.stdout

    marked = ok_json(["notices", "mark-sent", ref, "--note", "form ticket 12"], env)
    assert marked["status"] == "sent"
    assert marked["marked_sent_by"].startswith("analyst@")
    shown = ok_json(["notices", "show", ref], env)
    assert shown["status"] == "sent"
    assert shown["sent_at"] == marked["sent_at"]
    last = shown["timeline"][-1]
    assert (last["event"], last["actor"]) == ("marked_sent", marked["marked_sent_by"])
    assert "form ticket 12" in last["detail"]
    assert redis_client.zscore(Keys(redis_prefix).recheck, hit.incident) is not None

    again = run_cli(["notices", "mark-sent", ref], env)
    assert "is sent, not awaiting_manual" in one_line_error(again, 2)


def test_mark_sent_of_an_unknown_notice_is_bad_input(env: dict[str, str]) -> None:
    result = run_cli(["notices", "mark-sent", "0123456789ab"], env)
    assert "no notice 0123456789ab" in one_line_error(result, 2)


def test_mark_sent_explains_itself() -> None:
    result = run_cli(["notices", "mark-sent", "--help"], {})
    assert result.returncode == 0
    assert "awaiting_manual" in result.stdout and "--note" in result.stdout


def test_cloudflare_without_credentials_routes_to_its_form(env: dict[str, str]) -> None:
    route = ok_json(["providers", "lookup", "104.16.0.10"], env)
    assert route["recipient"]["channel"] == "form"
    assert route["recipient"]["form_url"] == "https://abuse.cloudflare.com/"
    assert route["recipient"]["address"] is None
    assert "HOTLINE_CLOUDFLARE_ACCOUNT_ID" in route["trail"][-1]
    with_api = ok_json(
        ["providers", "lookup", "104.16.0.10"],
        {
            **env,
            "HOTLINE_CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
            "HOTLINE_CLOUDFLARE_API_TOKEN": "cf-token-cli-test",
        },
    )
    assert with_api["recipient"]["channel"] == "cloudflare"
    half = run_cli(
        ["providers", "lookup", "104.16.0.10"], {**env, "HOTLINE_CLOUDFLARE_API_TOKEN": "t"}
    )
    assert "HOTLINE_CLOUDFLARE_API_TOKEN is set but HOTLINE_CLOUDFLARE_ACCOUNT_ID" in (
        one_line_error(half, 2)
    )
