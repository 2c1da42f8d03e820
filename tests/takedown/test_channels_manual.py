"""The form and Cloudflare channels, against a real HTTP server on loopback and a directory.

Notices are rendered by the real renderer from made-up hits. The Cloudflare API is the
recording server of ``tests/servers/webhook.py``, answering with the API's JSON envelope; what
is checked is what it received (path, headers, the exact JSON body) and what the channel made
of the answers. Nothing sleeps: the channel's pauses go to a recorder, and a lost answer is a
server that never replies to a client with a short timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from store.keys import Keys
from takedown.cdn import load_builtin_cdns
from takedown.channels.availability import ChannelAwareRouter
from takedown.channels.cloudflare import (
    CloudflareChannel,
    CloudflareSettings,
    RedisReportLedger,
)
from takedown.channels.dispatch import Deliverer
from takedown.channels.form import FormChannel
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.directory import ProviderDirectory
from takedown.errors import DeliveryError, DirectoryError
from takedown.model import CHANNELS, OutgoingNotice, Recipient, Route
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.routing import Router
from takedown.settings import SettingsError, TakedownSettings
from tests.builders import TEST_CLASSIFICATION_VALUE, TEST_IDENTITY, make_hit
from tests.helpers import HOST_B
from tests.servers.webhook import Hang, Reply, WebhookServer

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-token-test-8d1e"
FORM = "https://abuse.provider.example/report"
CLOUDFLARE_IP = "104.16.0.10"
OK = Reply(
    200,
    headers={"Content-Type": "application/json"},
    body=b'{"success": true, "errors": [], "messages": [], "result": "success"}',
)


def render(recipient: Recipient, number: int = 1, **changes: Any) -> OutgoingNotice:
    """A real rendered notice for made-up hit ``number``, to ``recipient``."""
    hit = make_hit(number, **changes)
    route = Route(
        host=hit.url.split("/")[2],
        ip=hit.ip,
        method="cdn",
        recipient=recipient,
        provider=recipient.provider,
    )
    facts = NoticeFacts(
        notice_id=hit.incident,
        hit=hit,
        route=route,
        first_seen=hit.first_seen,
        last_verified=hit.first_seen,
        kind="notice",
        sequence=0,
        sent_first=hit.first_seen,
        created=hit.first_seen,
        classification=TEST_CLASSIFICATION_VALUE,
    )
    return NoticeRenderer(TEST_IDENTITY).render(facts)


CLOUDFLARE = Recipient("Cloudflare", None, "cloudflare", form_url="https://abuse.cloudflare.com/")


class SleepRecorder:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def api() -> Iterator[WebhookServer]:
    with WebhookServer(HOST_B) as server:
        yield server


def settings_for(api: WebhookServer, **overrides: Any) -> CloudflareSettings:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "api_token": TOKEN,
        "reporter_name": TEST_IDENTITY.name,
        "reporter_email": TEST_IDENTITY.email,
        "api_url": api.url("/client/v4"),
        "backoff": 0.0,
    }
    values.update(overrides)
    return CloudflareSettings(**values)


@pytest.fixture
def ledger(redis_client: redis.Redis, redis_prefix: str) -> RedisReportLedger:
    return RedisReportLedger(redis_client, Keys(redis_prefix))


# -- Cloudflare: the request ---------------------------------------------------------------


def test_cloudflare_posts_the_documented_csam_report(api: WebhookServer) -> None:
    notice = render(CLOUDFLARE)
    api.script(OK)
    with CloudflareChannel(settings_for(api), sleep=SleepRecorder()) as channel:
        receipt = channel.deliver(notice)
    [request] = api.requests
    assert request.method == "POST"
    assert request.path == f"/client/v4/accounts/{ACCOUNT}/abuse-reports/abuse_children"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    hit = make_hit(1)
    assert json.loads(request.body) == {
        "act": "abuse_children",
        "email": "notices@hotline.example",
        "email2": "notices@hotline.example",
        "name": "Example Hotline",
        "urls": hit.url,
        "justification": notice.text,
        "host_notification": "send",
        "ncmec_notification": "send",
        "owner_notification": "send-anon",
        "title": notice.subject,
        "comments": f"Message-ID {notice.message_id}; X-ARF report_id {notice.xarf['report_id']}",
    }
    assert len(notice.text) < 5000  # sent whole; the cut is tested below
    assert receipt.channel == "cloudflare"
    assert receipt.destination == api.url(
        f"/client/v4/accounts/{ACCOUNT}/abuse-reports/abuse_children"
    )
    assert "result: success" in receipt.detail


def test_cloudflare_cuts_long_text_to_the_documented_limits(api: WebhookServer) -> None:
    notice = render(CLOUDFLARE)
    long = replace(notice, text="x" * 6000, subject="s" * 300)
    api.script(OK)
    with CloudflareChannel(settings_for(api, owner_notification="none")) as channel:
        channel.deliver(long)
    body = json.loads(api.requests[0].body)
    assert len(body["justification"]) == 5000
    assert body["justification"].endswith(" [...]")
    assert len(body["title"]) == 255
    assert body["owner_notification"] == "none"


# -- Cloudflare: idempotency -----------------------------------------------------------------


def test_cloudflare_reports_each_message_once_across_restarts(
    api: WebhookServer, ledger: RedisReportLedger
) -> None:
    notice = render(CLOUDFLARE)
    api.script(OK)
    with CloudflareChannel(settings_for(api), ledger=ledger) as channel:
        channel.deliver(notice)
        again = channel.deliver(notice)
    # A new process (a new channel) with the same Redis: still not posted again.
    with CloudflareChannel(settings_for(api), ledger=ledger) as restarted:
        third = restarted.deliver(notice)
    assert len(api.requests) == 1
    assert "not posted again" in again.detail
    assert "not posted again" in third.detail
    # A reminder is another message: it is reported.
    reminder = replace(notice, kind="reminder", sequence=1)
    with CloudflareChannel(settings_for(api), ledger=ledger) as channel:
        channel.deliver(reminder)
    assert len(api.requests) == 2


def test_cloudflare_lost_answer_is_not_posted_again_without_an_analyst(
    api: WebhookServer, ledger: RedisReportLedger
) -> None:
    notice = render(CLOUDFLARE)
    api.script(Hang(), OK)
    with CloudflareChannel(settings_for(api, timeout=0.5), ledger=ledger) as channel:
        with pytest.raises(DeliveryError) as lost:
            channel.deliver(notice)
        assert not lost.value.permanent
        assert "may have been received" in str(lost.value)
        # The automatic retry does not post: the report may be with Cloudflare already.
        with pytest.raises(DeliveryError) as retried:
            channel.deliver(notice)
        assert retried.value.permanent
        assert "notices resend" in str(retried.value)
        assert len(api.requests) == 1
        # The analyst's resend (after checking the dashboard) posts it.
        api.release_hangs()
        channel.deliver(notice)
    assert len(api.requests) == 2


# -- Cloudflare: errors ------------------------------------------------------------------------


def test_cloudflare_4xx_is_permanent_one_line_and_hides_the_token(api: WebhookServer) -> None:
    api.script(
        Reply(
            403,
            body=b'{"success": false, "errors": [{"code": 10000, "message": "Authentication\\n'
            b'error"}], "messages": [], "result": null}',
        )
    )
    pauses = SleepRecorder()
    with (
        CloudflareChannel(settings_for(api), sleep=pauses) as channel,
        pytest.raises(DeliveryError) as caught,
    ):
        channel.deliver(render(CLOUDFLARE))
    message = str(caught.value)
    assert caught.value.permanent
    assert "HTTP 403" in message
    assert "10000 Authentication error" in message
    assert "\n" not in message
    assert TOKEN not in message and TOKEN not in repr(caught.value)
    assert len(api.requests) == 1
    assert pauses.pauses == []


def test_cloudflare_success_false_is_permanent(api: WebhookServer) -> None:
    api.script(Reply(200, body=b'{"success": false, "errors": [{"code": 7003, "message": "x"}]}'))
    with (
        CloudflareChannel(settings_for(api)) as channel,
        pytest.raises(DeliveryError, match="7003 x") as caught,
    ):
        channel.deliver(render(CLOUDFLARE))
    assert caught.value.permanent


def test_cloudflare_5xx_and_429_are_retried(api: WebhookServer) -> None:
    api.script(503, Reply(429, headers={"Retry-After": "7"}), OK)
    pauses = SleepRecorder()
    with CloudflareChannel(settings_for(api), sleep=pauses) as channel:
        receipt = channel.deliver(render(CLOUDFLARE))
    assert len(api.requests) == 3
    assert len(pauses.pauses) == 2
    assert pauses.pauses[1] >= 7
    assert "after 3 attempts" in receipt.detail


def test_cloudflare_exhausted_retries_are_transient(api: WebhookServer) -> None:
    api.script(502, 502)
    with (
        CloudflareChannel(settings_for(api, attempts=2), sleep=SleepRecorder()) as channel,
        pytest.raises(DeliveryError, match="gave up after 2 attempts; last: HTTP 502") as e,
    ):
        channel.deliver(render(CLOUDFLARE))
    assert not e.value.permanent
    assert len(api.requests) == 2


def test_cloudflare_settings_are_checked() -> None:
    base: dict[str, Any] = {
        "account_id": ACCOUNT,
        "api_token": TOKEN,
        "reporter_name": "H",
        "reporter_email": "h@example.org",
    }
    assert CloudflareSettings(**base).endpoint == (
        f"https://api.cloudflare.com/client/v4/accounts/{ACCOUNT}/abuse-reports/abuse_children"
    )
    assert TOKEN not in repr(CloudflareSettings(**base))
    with pytest.raises(ValueError, match="plain http"):
        CloudflareSettings(**base, api_url="http://api.example.org/client/v4")
    with pytest.raises(ValueError, match="account id"):
        CloudflareSettings(**{**base, "account_id": "../../zones"})
    with pytest.raises(ValueError, match="ncmec_notification"):
        CloudflareSettings(**base, ncmec_notification="none")


# -- the form channel and the dispatcher --------------------------------------------------------


def test_form_channel_prepares_files_and_names_the_form(tmp_path: Path) -> None:
    notice = render(Recipient("Provider", None, "form", form_url=FORM))
    channel = FormChannel(OutboxChannel(OutboxSettings(tmp_path)))
    receipt = channel.deliver(notice)
    stem = f"{notice.notice_id}.notice.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.eml", f"{stem}.json"]
    assert (tmp_path / f"{stem}.eml").read_bytes() == notice.email
    meta = json.loads((tmp_path / f"{stem}.json").read_text(encoding="utf-8"))
    assert meta["recipient"]["form_url"] == FORM
    assert (receipt.channel, receipt.destination) == ("form", FORM)
    assert stem in receipt.detail


def test_form_channel_without_form_url_is_permanent(tmp_path: Path) -> None:
    channel = FormChannel(OutboxChannel(OutboxSettings(tmp_path)))
    with pytest.raises(DeliveryError, match="no form_url") as caught:
        channel.deliver(render(Recipient("Provider", None, "form")))
    assert caught.value.permanent
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_deliverer_sends_cloudflare_to_its_form_without_credentials(tmp_path: Path) -> None:
    deliverer = Deliverer(outbox=OutboxChannel(OutboxSettings(tmp_path)))
    receipt = deliverer.deliver(render(CLOUDFLARE))
    assert (receipt.channel, receipt.destination) == ("form", "https://abuse.cloudflare.com/")
    assert "no cloudflare channel configured" in receipt.detail


def test_deliverer_uses_the_cloudflare_channel_when_configured(
    api: WebhookServer, tmp_path: Path
) -> None:
    api.script(OK)
    cloudflare = CloudflareChannel(settings_for(api))
    outbox = tmp_path / "outbox"
    with Deliverer(outbox=OutboxChannel(OutboxSettings(outbox)), cloudflare=cloudflare) as d:
        receipt = d.deliver(render(CLOUDFLARE))
    assert receipt.channel == "cloudflare"
    assert len(api.requests) == 1
    assert not outbox.exists()


# -- routing: the shipped Cloudflare entry and the fallback ---------------------------------------


def test_cloudflare_route_falls_back_to_the_form_with_a_note() -> None:
    router = Router(ProviderDirectory.empty(), load_builtin_cdns(), None)
    without = ChannelAwareRouter(router, [c for c in CHANNELS if c != "cloudflare"])
    route = without.route("https://img.example.org/a.jpg", CLOUDFLARE_IP)
    assert route.recipient is not None
    assert route.recipient.channel == "form"
    assert route.recipient.form_url == "https://abuse.cloudflare.com/"
    assert route.recipient.address is None  # never e-mail
    assert "HOTLINE_CLOUDFLARE_ACCOUNT_ID" in route.trail[-1]
    assert "https://abuse.cloudflare.com/" in route.trail[-1]
    with_api = ChannelAwareRouter(router, CHANNELS)
    routed = with_api.route("https://img.example.org/a.jpg", CLOUDFLARE_IP)
    assert routed.recipient is not None and routed.recipient.channel == "cloudflare"
    assert routed.trail == route.trail[:-1]


def test_cloudflare_without_form_url_falls_back_to_the_outbox() -> None:
    directory = ProviderDirectory.from_yaml(
        f"- name: Own CDN\n  cidrs: [{HOST_B}/32]\n  channel: cloudflare\n"
    )
    router = ChannelAwareRouter(Router(directory, ProviderDirectory.empty(), None), ["smtp"])
    route = router.route(f"http://{HOST_B}/a.jpg", HOST_B)
    assert route.recipient is not None and route.recipient.channel == "outbox"
    assert "no form_url" in route.trail[-1]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("channel: form", r"x\.yaml:2: field 'form_url': channel form needs a form_url"),
        (
            "abuse: a@b.example\n  form_url: https://f.example/",
            r"x\.yaml:3: field 'form_url': only used with channel form or cloudflare, not smtp",
        ),
        (
            "channel: form\n  form_url: http://f.example/",
            r"x\.yaml:3: field 'form_url': .*plain http",
        ),
        ("channel: email", r"x\.yaml:2: field 'channel': 'email' is not one of .*form, cloudflare"),
    ],
)
def test_directory_checks_form_fields(entry: str, message: str) -> None:
    with pytest.raises(DirectoryError, match=message):
        ProviderDirectory.from_yaml(f"- name: P\n  {entry}\n", source="x.yaml")


def test_directory_accepts_form_and_cloudflare_without_an_abuse_address() -> None:
    directory = ProviderDirectory.from_yaml(
        "- name: F\n  channel: form\n  form_url: https://f.example/report\n"
        "- name: C\n  channel: cloudflare\n  form_url: https://c.example/\n"
    )
    form, api = directory.providers
    assert form.recipient() == Recipient("F", None, "form", form_url="https://f.example/report")
    assert api.recipient().channel == "cloudflare"


# -- settings ----------------------------------------------------------------------------------


def load(table: str, env: dict[str, str]) -> TakedownSettings:
    import tomllib

    return TakedownSettings.from_mapping(
        tomllib.loads(table), source="hotline.toml", base=Path("/"), env=env
    )


CREDENTIALS = {"HOTLINE_CLOUDFLARE_ACCOUNT_ID": ACCOUNT, "HOTLINE_CLOUDFLARE_API_TOKEN": TOKEN}


def test_cloudflare_settings_come_from_the_environment_and_the_table() -> None:
    assert load("", {}).cloudflare is None
    table = '[cloudflare]\napi_url = "http://127.0.0.1:9/client/v4"\nowner_notification = "none"\n'
    assert load(table, {}).cloudflare is None  # no credentials: the form fallback
    options = load(table, CREDENTIALS).cloudflare
    assert options is not None
    assert options["account_id"] == ACCOUNT and options["api_token"] == TOKEN
    assert options["api_url"] == "http://127.0.0.1:9/client/v4"
    assert options["owner_notification"] == "none"
    assert load("", CREDENTIALS).cloudflare is not None


def test_cloudflare_settings_errors_name_the_variable_or_field() -> None:
    with pytest.raises(SettingsError, match=r"^HOTLINE_CLOUDFLARE_ACCOUNT_ID is set but "):
        load("", {"HOTLINE_CLOUDFLARE_ACCOUNT_ID": ACCOUNT})
    with pytest.raises(SettingsError, match=r"^hotline.toml: \[cloudflare\] host_notification"):
        load('[cloudflare]\nhost_notification = "none"\n', CREDENTIALS)
    with pytest.raises(SettingsError, match=r"^hotline.toml: \[cloudflare\] colour: unknown"):
        load('[cloudflare]\ncolour = "orange"\n', CREDENTIALS)
