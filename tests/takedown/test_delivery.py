"""Delivery channels against real servers on loopback: aiosmtpd, an HTTP receiver, a directory.

Notices are built here with the stdlib email package (the renderer is tested elsewhere).
Nothing sleeps to synchronise: the webhook channel gets a sleep that records its pauses,
and the SMTP hold hook is waited on with events.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, cast

import pytest

from takedown.channels.base import notice_payload
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.channels.signature import SIGNATURE_HEADER, signature_header, verify_signature
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.channels.webhook import (
    IDEMPOTENCY_HEADER,
    MAX_BACKOFF,
    RETRY_AFTER_CAP,
    WebhookChannel,
    WebhookSettings,
    parse_retry_after,
)
from takedown.errors import DeliveryError
from takedown.model import Channel, NoticeKind, OutgoingNotice, Recipient
from tests.helpers import HOST_A, HOST_B
from tests.servers.smtp import SmtpServer, TlsFiles, make_tls_files
from tests.servers.webhook import Hang, Reply, WebhookServer

SMTP_HOST = HOST_A
WEBHOOK_HOST = HOST_B
USER = "hotline-relay"
PASSWORD = "correct-horse-7c1f"
SECRET = "whsec-test-5f0e9d"
SENDER = "notices@hotline.test"
ADDRESS = "abuse@provider.test"
FIXED_DATE = 1_700_000_000


def make_notice(
    *,
    channel: Channel = "smtp",
    address: str | None = ADDRESS,
    webhook_url: str | None = None,
    notice_id: str = "n7f3a9c2e",
    kind: NoticeKind = "notice",
    sequence: int = 0,
    line_ending: str = "\r\n",
) -> OutgoingNotice:
    """A minimal but complete notice; its email has a line starting with a dot on purpose."""
    message_id = f"<{notice_id}.{kind}.{sequence}@hotline.test>"
    subject = f"Test notice {notice_id}"
    text = (
        "This is a test notice for hotline-crawler.\n"
        f"Image: http://{HOST_A}/images/pattern-01.png\n"
        ".a line that begins with a dot\n"
        "Matched entry 1 of test list demo-list.\n"
    )
    xarf = {
        "Version": "4",
        "Report": {"ReportClass": "Content", "URL": f"http://{HOST_A}/images/pattern-01.png"},
    }
    msg = EmailMessage(policy=email.policy.SMTP.clone(linesep=line_ending))
    msg["From"] = f"Test Hotline <{SENDER}>"
    msg["To"] = address or "undisclosed-recipients:;"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.fromtimestamp(FIXED_DATE, UTC))
    msg["Message-ID"] = message_id
    msg.set_content(text)
    msg.add_attachment(
        json.dumps(xarf).encode(), maintype="application", subtype="json", filename="xarf.json"
    )
    return OutgoingNotice(
        notice_id=notice_id,
        kind=kind,
        sequence=sequence,
        recipient=Recipient(
            provider="Provider Test", address=address, channel=channel, webhook_url=webhook_url
        ),
        sender=SENDER,
        subject=subject,
        text=text,
        xarf=xarf,
        message_id=message_id,
        email=msg.as_bytes(),
    )


def closed_port(host: str) -> int:
    """A port on ``host`` that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def error_text(exc: BaseException) -> str:
    """Everything an error shows: its message, its repr, and those of its causes."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


# -- SMTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA and a certificate for the SMTP test address, made with openssl."""
    return make_tls_files(tmp_path_factory.mktemp("smtp-pki"), SMTP_HOST)


@pytest.fixture
def starttls_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """A relay that requires STARTTLS and AUTH, as a hotline's submission server would."""
    with SmtpServer(
        SMTP_HOST,
        tls="starttls",
        tls_files=tls_files,
        require_starttls=True,
        auth=(USER, PASSWORD),
        auth_required=True,
    ) as server:
        yield server


def smtp_settings(server: SmtpServer, tls_files: TlsFiles | None, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "timeout": 5.0,
        "ca_file": None if tls_files is None else str(tls_files.ca_file),
        "local_hostname": "client.test",
    }
    values.update(overrides)
    return SmtpSettings(**values)


def test_smtp_starttls_and_auth_deliver_the_message_unchanged(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    notice = make_notice()
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))

    receipt = channel.deliver(notice)

    assert receipt.channel == "smtp"
    assert receipt.destination == ADDRESS
    assert receipt.detail.startswith("250 ")
    [received] = starttls_server.messages
    assert received.data == notice.email
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (ADDRESS,)
    assert received.tls is True
    assert received.authenticated_as == USER
    sent = email.message_from_bytes(notice.email, policy=email.policy.default)
    assert received.message.items() == sent.items()
    assert received.message["Message-ID"] == notice.message_id
    got_parts = [part.get_payload(decode=True) for part in received.message.walk()]
    assert got_parts == [part.get_payload(decode=True) for part in sent.walk()]
    body = received.message.get_body(("plain",))
    assert body is not None
    assert ".a line that begins with a dot" in body.get_content()
    assert [a.tls for a in starttls_server.auth_attempts] == [True]


def test_smtp_normalises_bare_line_feeds_to_crlf(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    notice = make_notice(line_ending="\n")
    assert b"\r\n" not in notice.email
    SmtpChannel(smtp_settings(starttls_server, tls_files)).deliver(notice)
    [received] = starttls_server.messages
    assert received.data == notice.email.replace(b"\n", b"\r\n")
    assert received.message["Message-ID"] == notice.message_id


def test_smtp_session_keeps_one_connection_for_a_batch(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))
    notices = [make_notice(sequence=n) for n in range(3)]
    with channel.session() as session:
        receipts = [session.deliver(notice) for notice in notices]
    assert [r.channel for r in receipts] == ["smtp"] * 3
    received = starttls_server.messages
    assert [m.message["Message-ID"] for m in received] == [n.message_id for n in notices]
    assert len({m.peer for m in received}) == 1
    assert len(starttls_server.auth_attempts) == 1


def test_smtp_session_reconnects_when_the_relay_dropped_the_connection(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))
    with channel.session() as session:
        session.deliver(make_notice(sequence=0))
        starttls_server.drop_connections()
        session.deliver(make_notice(sequence=1))
    first, second = starttls_server.messages
    assert first.peer != second.peer
    assert len(starttls_server.auth_attempts) == 2


def test_smtp_wrong_password_is_permanent_and_never_shown(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    wrong = "not-the-password-9d4b"
    settings = smtp_settings(starttls_server, tls_files, password=wrong)
    with pytest.raises(DeliveryError) as caught:
        SmtpChannel(settings).deliver(make_notice())
    assert caught.value.permanent is True
    assert "535" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert wrong not in error_text(caught.value)
    assert wrong not in repr(settings)
    assert starttls_server.messages == []
    attempts = starttls_server.auth_attempts  # smtplib tries each offered mechanism
    assert attempts
    assert not any(a.success for a in attempts)


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_smtp_5xx_reply_is_permanent(
    starttls_server: SmtpServer, tls_files: TlsFiles, stage: Any
) -> None:
    starttls_server.refuse(550, "5.7.1 refused by test policy", at=stage)
    with pytest.raises(DeliveryError, match=r"550 5\.7\.1 refused by test policy") as caught:
        SmtpChannel(smtp_settings(starttls_server, tls_files)).deliver(make_notice())
    assert caught.value.permanent is True
    assert starttls_server.messages == []


def test_smtp_4xx_reply_is_transient_and_the_retry_goes_through(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))
    starttls_server.refuse(451, "4.3.0 try again later", at="data")
    with pytest.raises(DeliveryError, match="451") as caught:
        channel.deliver(make_notice())
    assert caught.value.permanent is False
    assert starttls_server.messages == []

    channel.deliver(make_notice())
    assert len(starttls_server.messages) == 1


def test_smtp_server_down_is_transient() -> None:
    port = closed_port(SMTP_HOST)
    settings = SmtpSettings(SMTP_HOST, port, security="starttls", local_hostname="client.test")
    with pytest.raises(DeliveryError, match=r"SMTP 127\.0\.0\.2:\d+: connect failed") as caught:
        SmtpChannel(settings).deliver(make_notice())
    assert caught.value.permanent is False


def test_smtp_untrusted_certificate_is_transient_and_sends_no_credentials(
    starttls_server: SmtpServer,
) -> None:
    settings = smtp_settings(starttls_server, None)  # the test CA is not trusted
    with pytest.raises(DeliveryError, match=r"(?i)certificate") as caught:
        SmtpChannel(settings).deliver(make_notice())
    assert caught.value.permanent is False
    assert starttls_server.auth_attempts == []


def test_smtp_never_sends_credentials_without_tls(tls_files: TlsFiles) -> None:
    # A server that would accept AUTH in plaintext and does not offer STARTTLS.
    with SmtpServer(SMTP_HOST, auth=(USER, PASSWORD), auth_require_tls=False) as server:
        with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
            SmtpChannel(smtp_settings(server, tls_files)).deliver(make_notice())
        assert caught.value.permanent is False
        assert server.auth_attempts == []
        assert server.messages == []


def test_smtp_settings_refuse_plaintext_credentials_off_loopback() -> None:
    with pytest.raises(ValueError, match="refusing to send SMTP credentials unencrypted") as caught:
        SmtpSettings("mail.example.org", 25, security="none", username=USER, password=PASSWORD)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ValueError, match="together"):
        SmtpSettings(SMTP_HOST, username=USER)
    with pytest.raises(ValueError, match="security"):
        SmtpSettings(SMTP_HOST, security=cast(Any, "ssl"))


def test_smtp_plaintext_auth_is_allowed_only_when_chosen_on_loopback() -> None:
    with SmtpServer(SMTP_HOST, auth=(USER, PASSWORD), auth_require_tls=False) as server:
        settings = SmtpSettings(
            SMTP_HOST,
            server.port,
            security="none",
            username=USER,
            password=PASSWORD,
            local_hostname="client.test",
        )
        SmtpChannel(settings).deliver(make_notice())
        [received] = server.messages
        assert received.tls is False
        assert received.authenticated_as == USER


def test_smtp_implicit_tls(tls_files: TlsFiles) -> None:
    with SmtpServer(
        SMTP_HOST, tls="implicit", tls_files=tls_files, auth=(USER, PASSWORD)
    ) as server:
        SmtpChannel(smtp_settings(server, tls_files, security="tls")).deliver(make_notice())
        [received] = server.messages
        assert received.tls is True
        assert received.authenticated_as == USER


def test_smtp_recipient_without_address_is_permanent() -> None:
    settings = SmtpSettings(SMTP_HOST, closed_port(SMTP_HOST), local_hostname="client.test")
    with pytest.raises(DeliveryError, match="no email address") as caught:
        SmtpChannel(settings).deliver(make_notice(address=None))
    assert caught.value.permanent is True


def test_smtp_address_cannot_smuggle_commands(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))
    for address in ["abuse@provider.test\r\nRCPT TO:<other@provider.test>", "not-a-mailbox"]:
        notice = make_notice()
        notice = replace(notice, recipient=replace(notice.recipient, address=address))
        with pytest.raises(DeliveryError, match="is not a mailbox") as caught:
            channel.deliver(notice)
        assert caught.value.permanent is True
        assert "\n" not in str(caught.value)
    assert starttls_server.messages == []
    assert starttls_server.auth_attempts == []


def test_smtp_hold_blocks_in_data_until_released(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    channel = SmtpChannel(smtp_settings(starttls_server, tls_files))
    outcome: list[object] = []
    starttls_server.hold()
    sender = threading.Thread(target=lambda: outcome.append(channel.deliver(make_notice())))
    sender.start()
    try:
        starttls_server.wait_held()
        assert starttls_server.held == 1
        assert starttls_server.messages == []
        assert outcome == []
    finally:
        starttls_server.release()
        sender.join(10)
    assert not sender.is_alive()
    assert len(outcome) == 1
    assert len(starttls_server.messages) == 1


def test_smtp_client_gone_while_held_leaves_the_message_queued(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    # The client gives up waiting for the reply to DATA (its timeout), as a crashed notifier
    # would; the server had the whole message and keeps it: the fate was unknown to the client.
    settings = smtp_settings(starttls_server, tls_files, timeout=1.0)
    starttls_server.hold(keep_if_client_leaves=True)
    with pytest.raises(DeliveryError, match="timed out") as caught:
        SmtpChannel(settings).deliver(make_notice())
    assert caught.value.permanent is False
    starttls_server.wait_client_left()
    [received] = starttls_server.messages
    assert received.message["Message-ID"] == make_notice().message_id


# -- webhook ------------------------------------------------------------------------------------


class SleepRecorder:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def receiver() -> Iterator[WebhookServer]:
    with WebhookServer(WEBHOOK_HOST) as server:
        yield server


@pytest.fixture
def pauses() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def webhook(receiver: WebhookServer, pauses: SleepRecorder) -> Iterator[WebhookChannel]:
    settings = WebhookSettings(url=receiver.url("/default"), secret=SECRET, timeout=5.0)
    with WebhookChannel(settings, sleep=pauses) as channel:
        yield channel


def test_webhook_posts_signed_json_the_receiver_can_verify(
    receiver: WebhookServer, webhook: WebhookChannel, pauses: SleepRecorder
) -> None:
    notice = make_notice(channel="webhook", webhook_url=receiver.url("/desk"))
    receipt = webhook.deliver(notice)

    assert receipt.channel == "webhook"
    assert receipt.destination == receiver.url("/desk")
    assert receipt.detail == "HTTP 200"
    assert pauses.pauses == []
    [request] = receiver.requests
    assert request.method == "POST"
    assert request.path == "/desk"  # the recipient's URL wins over the default
    assert request.headers["content-type"] == "application/json"
    assert request.headers[IDEMPOTENCY_HEADER.lower()] == "n7f3a9c2e.notice.0"
    assert json.loads(request.body) == json.loads(json.dumps(notice_payload(notice)))
    assert set(json.loads(request.body)) == {
        "notice_id", "kind", "sequence", "message_id", "subject", "text", "xarf", "recipient",
    }  # fmt: skip

    header = request.headers[SIGNATURE_HEADER.lower()]
    assert verify_signature(SECRET, header, request.body)
    assert not verify_signature("another-secret", header, request.body)
    assert not verify_signature(SECRET, header, request.body + b" ")

    # The documented scheme, computed independently of the module.
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        SECRET.encode(), fields["t"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert fields["v1"] == expected


def test_signature_timestamp_tolerance_and_malformed_headers() -> None:
    body = b'{"notice_id":"x"}'
    header = signature_header(SECRET, body, timestamp=FIXED_DATE)
    assert verify_signature(SECRET, header, body, now=FIXED_DATE + 300)
    assert not verify_signature(SECRET, header, body, now=FIXED_DATE + 301)
    assert not verify_signature(SECRET, header, body, now=FIXED_DATE - 301)
    assert verify_signature(SECRET, header, body, tolerance=10, now=FIXED_DATE + 10)
    # Two v1 values (secret rotation): either may match.
    rotated = header.replace(",v1=", ",v1=" + "0" * 64 + ",v1=")
    assert verify_signature(SECRET, rotated, body, now=FIXED_DATE)
    for bad in ["", "t=abc,v1=00", "v1=" + "0" * 64, header + ",t=1", "t=1;v1=2", "garbage"]:
        assert not verify_signature(SECRET, bad, body, now=FIXED_DATE)


def test_webhook_retries_503_then_delivers(
    receiver: WebhookServer, webhook: WebhookChannel, pauses: SleepRecorder
) -> None:
    receiver.script(503, 503, 200)
    receipt = webhook.deliver(make_notice(channel="webhook"))

    assert receipt.detail == "HTTP 200 after 3 attempts"
    requests = receiver.requests
    assert [r.path for r in requests] == ["/default"] * 3
    assert len({r.body for r in requests}) == 1
    assert {r.headers[IDEMPOTENCY_HEADER.lower()] for r in requests} == {"n7f3a9c2e.notice.0"}
    for request in requests:
        assert verify_signature(SECRET, request.headers[SIGNATURE_HEADER.lower()], request.body)
    assert len(pauses.pauses) == 2
    first, second = pauses.pauses
    assert 0.25 <= first <= 0.5  # backoff 0.5, halved jitter
    assert 0.5 <= second <= 1.0  # doubled


def test_webhook_backoff_is_capped(webhook: WebhookChannel) -> None:
    assert all(MAX_BACKOFF / 2 <= webhook.backoff(n) <= MAX_BACKOFF for n in range(6, 20))


def test_webhook_4xx_is_permanent_at_once(
    receiver: WebhookServer, webhook: WebhookChannel, pauses: SleepRecorder
) -> None:
    receiver.script(Reply(400, body=b'{"error": "unknown\\nreport format"}'))
    with pytest.raises(DeliveryError, match="HTTP 400") as caught:
        webhook.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is True
    assert "unknown" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(receiver.requests) == 1
    assert pauses.pauses == []


def test_webhook_retry_after_is_honoured_up_to_a_cap(
    receiver: WebhookServer, webhook: WebhookChannel, pauses: SleepRecorder
) -> None:
    receiver.script(
        Reply(429, headers={"Retry-After": "7"}),
        Reply(503, headers={"Retry-After": "86400"}),
        200,
    )
    webhook.deliver(make_notice(channel="webhook"))
    assert pauses.pauses == [7.0, RETRY_AFTER_CAP]
    assert len(receiver.requests) == 3


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = "Tue, 14 Nov 2023 22:13:50 GMT"  # FIXED_DATE + 30 s
    assert parse_retry_after(when, now=FIXED_DATE) == pytest.approx(30.0)
    assert parse_retry_after(when, now=FIXED_DATE + 60) == 0.0


def test_webhook_exhausted_retries_are_transient(
    receiver: WebhookServer, webhook: WebhookChannel, pauses: SleepRecorder
) -> None:
    receiver.script(503, 502, 500, 408)
    with pytest.raises(DeliveryError, match="gave up after 4 attempts; last: HTTP 408") as caught:
        webhook.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is False
    assert len(receiver.requests) == 4
    assert len(pauses.pauses) == 3


def test_webhook_connection_refused_is_retried_then_transient(pauses: SleepRecorder) -> None:
    url = f"http://{WEBHOOK_HOST}:{closed_port(WEBHOOK_HOST)}/hook"
    settings = WebhookSettings(url=url, secret=SECRET, attempts=3)
    with (
        WebhookChannel(settings, sleep=pauses) as channel,
        pytest.raises(DeliveryError, match="ConnectError") as caught,
    ):
        channel.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is False
    assert len(pauses.pauses) == 2


def test_webhook_timeout_is_transient(receiver: WebhookServer, pauses: SleepRecorder) -> None:
    receiver.script(Hang())
    settings = WebhookSettings(url=receiver.url(), secret=SECRET, timeout=0.5, attempts=1)
    with (
        WebhookChannel(settings, sleep=pauses) as channel,
        pytest.raises(DeliveryError, match="timed out") as caught,
    ):
        channel.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is False
    receiver.release_hangs()


def test_webhook_redirect_is_not_followed(receiver: WebhookServer, webhook: WebhookChannel) -> None:
    receiver.script(Reply(302, headers={"Location": receiver.url("/elsewhere?token=abc")}))
    with pytest.raises(DeliveryError, match="302") as caught:
        webhook.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is True
    assert "token=abc" not in str(caught.value)
    assert [r.path for r in receiver.requests] == ["/default"]


def test_webhook_url_secrets_stay_out_of_errors_and_receipts(
    receiver: WebhookServer, webhook: WebhookChannel
) -> None:
    url = receiver.url("/desk?token=url-secret-31")
    receipt = webhook.deliver(make_notice(channel="webhook", webhook_url=url))
    assert receipt.destination == receiver.url("/desk")
    receiver.script(404)
    with pytest.raises(DeliveryError) as caught:
        webhook.deliver(make_notice(channel="webhook", webhook_url=url))
    assert "url-secret-31" not in str(caught.value)
    assert receiver.requests[0].path == "/desk?token=url-secret-31"


def test_webhook_without_any_url_is_permanent(pauses: SleepRecorder) -> None:
    with (
        WebhookChannel(WebhookSettings(secret=SECRET), sleep=pauses) as channel,
        pytest.raises(DeliveryError, match="no webhook URL") as caught,
    ):
        channel.deliver(make_notice(channel="webhook"))
    assert caught.value.permanent is True


def test_webhook_refuses_plain_http_off_loopback(pauses: SleepRecorder) -> None:
    with pytest.raises(ValueError, match="plain http"):
        WebhookSettings(url="http://desk.example.org/hook", secret=SECRET)
    WebhookSettings(url="http://desk.example.org/hook", secret=SECRET, allow_plain_http=True)
    with WebhookChannel(WebhookSettings(secret=SECRET), sleep=pauses) as channel:
        for url in ["http://desk.example.org/hook?k=v", "ftp://desk.example.org/hook"]:
            notice = make_notice(channel="webhook", webhook_url=url)
            with pytest.raises(DeliveryError, match="Provider Test") as caught:
                channel.deliver(notice)  # refused before any connection is attempted
            assert caught.value.permanent is True
            assert "k=v" not in str(caught.value)
    assert pauses.pauses == []


def test_webhook_settings_validation() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookSettings(secret="")
    with pytest.raises(ValueError, match="attempts"):
        WebhookSettings(secret=SECRET, attempts=0)
    assert SECRET not in repr(WebhookSettings(secret=SECRET))


# -- outbox -------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outbox_writes_eml_and_json_privately(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    notice = make_notice(channel="outbox")
    receipt = OutboxChannel(OutboxSettings(directory)).deliver(notice)

    eml = directory / "n7f3a9c2e.notice.0.eml"
    meta = directory / "n7f3a9c2e.notice.0.json"
    assert receipt.channel == "outbox"
    assert receipt.destination == str(eml)
    assert sorted(os.listdir(directory)) == [eml.name, meta.name]  # no temporary files left
    assert eml.read_bytes() == notice.email
    assert json.loads(meta.read_text(encoding="utf-8")) == json.loads(
        json.dumps(notice_payload(notice))
    )
    assert mode(directory) == 0o700
    assert mode(eml) == mode(meta) == 0o600


def test_outbox_redelivery_replaces_files_identically(tmp_path: Path) -> None:
    channel = OutboxChannel(OutboxSettings(tmp_path))
    notice = make_notice(channel="outbox")
    channel.deliver(notice)
    eml, meta = channel.paths(notice)
    before = {p: (p.read_bytes(), p.stat().st_ino) for p in (eml, meta)}

    channel.deliver(notice)

    for path, (content, inode) in before.items():
        assert path.read_bytes() == content
        assert path.stat().st_ino != inode  # a new file renamed into place, not rewritten
    channel.deliver(make_notice(channel="outbox", kind="reminder", sequence=1))
    assert sorted(os.listdir(tmp_path)) == [
        "n7f3a9c2e.notice.0.eml",
        "n7f3a9c2e.notice.0.json",
        "n7f3a9c2e.reminder.1.eml",
        "n7f3a9c2e.reminder.1.json",
    ]


def test_outbox_failure_is_transient_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    channel = OutboxChannel(OutboxSettings(tmp_path))
    notice = make_notice(channel="outbox")
    eml, _ = channel.paths(notice)
    eml.mkdir()  # the final name is taken by a directory: the rename fails
    with pytest.raises(DeliveryError, match="cannot write notice") as caught:
        channel.deliver(notice)
    assert caught.value.permanent is False
    assert sorted(os.listdir(tmp_path)) == ["n7f3a9c2e.notice.0.eml", "n7f3a9c2e.notice.0.json"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_outbox_refuses_ids_that_are_not_file_names(tmp_path: Path) -> None:
    channel = OutboxChannel(OutboxSettings(tmp_path / "outbox"))
    for notice_id in ["../escape", ".hidden", "a/b", ""]:
        with pytest.raises(DeliveryError, match="file name") as caught:
            channel.deliver(make_notice(channel="outbox", notice_id=notice_id))
        assert caught.value.permanent is True
    assert not (tmp_path / "outbox").exists()


# -- dispatch -----------------------------------------------------------------------------------


def test_deliverer_dispatches_on_the_recipients_channel(
    starttls_server: SmtpServer,
    tls_files: TlsFiles,
    receiver: WebhookServer,
    pauses: SleepRecorder,
    tmp_path: Path,
) -> None:
    webhook = WebhookChannel(WebhookSettings(url=receiver.url(), secret=SECRET), sleep=pauses)
    with Deliverer(
        SmtpChannel(smtp_settings(starttls_server, tls_files)),
        webhook,
        OutboxChannel(OutboxSettings(tmp_path)),
    ) as deliverer:
        assert deliverer.deliver(make_notice(channel="smtp")).channel == "smtp"
        assert deliverer.deliver(make_notice(channel="webhook")).channel == "webhook"
        assert deliverer.deliver(make_notice(channel="outbox")).channel == "outbox"
    assert len(starttls_server.messages) == 1
    assert len(receiver.requests) == 1
    assert sorted(os.listdir(tmp_path)) == ["n7f3a9c2e.notice.0.eml", "n7f3a9c2e.notice.0.json"]


def test_deliverer_missing_channel_is_transient(tmp_path: Path) -> None:
    deliverer = Deliverer(None, None, OutboxChannel(OutboxSettings(tmp_path)))
    with pytest.raises(DeliveryError) as caught:
        deliverer.deliver(make_notice(channel="webhook"))
    assert str(caught.value) == (
        "recipient Provider Test wants channel 'webhook' but no webhook is configured"
    )
    assert caught.value.permanent is False
    assert os.listdir(tmp_path) == []


def test_deliverer_falls_back_to_the_outbox_when_asked(tmp_path: Path) -> None:
    deliverer = Deliverer(
        None, None, OutboxChannel(OutboxSettings(tmp_path)), fallback_to_outbox=True
    )
    receipt = deliverer.deliver(make_notice(channel="smtp"))
    assert receipt.channel == "outbox"
    assert "no smtp channel configured" in receipt.detail
    assert sorted(os.listdir(tmp_path)) == ["n7f3a9c2e.notice.0.eml", "n7f3a9c2e.notice.0.json"]


def test_deliverer_rejects_fallback_without_outbox_and_unknown_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outbox"):
        Deliverer(None, None, None, fallback_to_outbox=True)
    deliverer = Deliverer(
        None, None, OutboxChannel(OutboxSettings(tmp_path)), fallback_to_outbox=True
    )
    with pytest.raises(DeliveryError, match="unknown channel") as caught:
        deliverer.deliver(make_notice(channel=cast(Channel, "fax")))
    assert caught.value.permanent is True
