"""``hotline check`` against real set-ups: the session's redis-server, redis-servers of the
test's own with a bad persistence or eviction setting, a real SMTP relay with STARTTLS, and
broken configuration files; ``--version`` and shell completion."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from hotline.cli.check import CHECKS, STATUSES
from tests.builders import CLASSIFICATION_TOML, IDENTITY_TOML, TEST_LIST
from tests.helpers import (
    CLI_TIMEOUT,
    HOST_A,
    HOST_B,
    deaf_server,
    free_port,
    one_line_error,
    redis_answers,
    redis_server_binary,
    run_cli,
    wait_for,
)
from tests.servers.smtp import SmtpServer, TlsFiles

PROVIDER = "Example Check Host"
PROVIDER_ABUSE = "abuse@check-host.example"
WEBHOOK_SECRET = "check-test-secret"
#: Seconds a check against a Redis that does not answer may take (its probe allows 5 s; the
#: rest is the start-up of the command on a busy machine).
REDIS_DEADLINE = 30.0


@pytest.fixture
def relay(smtp_tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """A mail relay on loopback that offers STARTTLS and requires it before any mail."""
    with SmtpServer(
        "127.0.0.1", tls="starttls", tls_files=smtp_tls_files, require_starttls=True
    ) as server:
        yield server


def write_config(
    tmp_path: Path,
    *,
    smtp: str,
    webhook: str = '[webhook]\nurl = "http://127.0.0.1:9/notices"\n',
    extra: str = "",
) -> Path:
    """A configuration with an identity, a classified list, a directory that lists
    ``HOST_A``, no RDAP (nothing may leave loopback), ``smtp`` and ``webhook`` tables."""
    config = tmp_path / "hotline.toml"
    config.write_text(
        IDENTITY_TOML
        + CLASSIFICATION_TOML
        + '[notices]\ndirectory = "providers.yaml"\n[rdap]\nurl = ""\n'
        + smtp
        + webhook
        + extra,
        encoding="utf-8",
    )
    (tmp_path / "providers.yaml").write_text(
        f"- name: {PROVIDER}\n  cidrs: [{HOST_A}/32]\n  abuse: {PROVIDER_ABUSE}\n",
        encoding="utf-8",
    )
    return config


def smtp_table(relay: SmtpServer, tls_files: TlsFiles, *, security: str = "starttls") -> str:
    return (
        f'[smtp]\nhost = "{relay.host}"\nport = {relay.port}\nsecurity = "{security}"\n'
        f'ca_file = "{tls_files.ca_file}"\ntimeout = "10s"\n'
    )


def import_list(env: dict[str, str], tmp_path: Path, name: str = TEST_LIST) -> None:
    hashes = tmp_path / f"{name}.csv"
    hashes.write_text(f"algorithm,hash,id,category\nmd5,{'a' * 32},e1,test\n", encoding="utf-8")
    result = run_cli(["hashes", "import", str(hashes), "--list", name], env)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def good_env(
    env: dict[str, str], tmp_path: Path, relay: SmtpServer, smtp_tls_files: TlsFiles
) -> dict[str, str]:
    """Everything in order: the session's Redis (AOF on, noeviction), a stored and classified
    list, the STARTTLS relay, a webhook secret and a default URL."""
    config = write_config(tmp_path, smtp=smtp_table(relay, smtp_tls_files))
    env = {**env, "HOTLINE_CONFIG": str(config), "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    import_list(env, tmp_path)
    return env


def check_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """``hotline check --json ARGS``: exit code, parsed output, standard error."""
    result = run_cli(["check", "--json", *args], env)
    return result.returncode, json.loads(result.stdout), result.stderr


def rows(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in report["checks"]}


def test_a_good_setup_passes_every_check_and_sends_nothing(
    good_env: dict[str, str], relay: SmtpServer, tmp_path: Path
) -> None:
    code, report, stderr = check_json(good_env)
    assert code == 0, stderr
    assert stderr == ""
    by_name = rows(report)
    assert list(by_name) == [name for name in CHECKS if name != "route"]
    assert {name: row["status"] for name, row in by_name.items()} == dict.fromkeys(by_name, "ok")
    assert report["ok"] is True
    assert (
        f"{tmp_path / 'hotline.toml'}: notices from Example Hotline"
        in (by_name["configuration"]["detail"])
    )
    assert "providers.yaml: 1 providers" in by_name["providers"]["detail"]
    assert "appendonly yes, maxmemory-policy noeviction" in by_name["redis"]["detail"]
    assert f"{TEST_LIST} v1 (1 hashes)" in by_name["lists"]["detail"]
    assert by_name["smtp"]["detail"] == (
        f"relay 127.0.0.1:{relay.port} (starttls): connect, EHLO, STARTTLS ok (no mail sent)"
    )
    assert "HOTLINE_WEBHOOK_SECRET is set" in by_name["webhook"]["detail"]
    assert "127.0.0.1:9/notices" in by_name["webhook"]["detail"]
    assert "writable" in by_name["outbox"]["detail"]
    assert relay.messages == []
    outbox = tmp_path / "data" / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())

    table = run_cli(["check"], good_env)
    assert table.returncode == 0, table.stderr
    for name in by_name:
        assert name in table.stdout
    assert " fail " not in table.stdout and " warn " not in table.stdout


def test_the_json_has_a_stable_shape(good_env: dict[str, str]) -> None:
    code, report, _ = check_json(good_env, "--url", f"http://{HOST_A}/image.jpg")
    assert code == 0
    assert set(report) == {"checks", "ok"}
    assert isinstance(report["ok"], bool)
    for row in report["checks"]:
        assert set(row) == {"name", "status", "detail"}
        assert row["status"] in STATUSES
        assert row["detail"] and "\n" not in row["detail"]
    assert [row["name"] for row in report["checks"]] == list(CHECKS)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[hotline\nname = 1\n", "hotline.toml: "),
        ('[smtp]\nhost = "127.0.0.1"\nport = "x"\n', "[smtp] port: expected a port number"),
        ("[notices]\nsurprise = 1\n", "[notices] surprise: unknown field"),
    ],
)
def test_a_bad_configuration_is_exit_2_with_one_line_naming_file_and_field(
    env: dict[str, str], tmp_path: Path, text: str, where: str
) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(text, encoding="utf-8")
    env = {**env, "HOTLINE_CONFIG": str(config)}
    result = run_cli(["check"], env)
    line = one_line_error(result, 2)
    assert str(config) in line and where in line
    code, report, _ = check_json(env)
    assert code == 2
    configuration = rows(report)["configuration"]
    assert configuration["status"] == "fail"
    assert str(config) in configuration["detail"] and where in configuration["detail"]
    # What needs the configuration is not checked; Redis still is.
    assert list(rows(report)) == ["configuration", "redis"]
    assert report["ok"] is False


def test_webhook_configured_without_its_secret_is_a_configuration_failure(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, smtp="")
    code, report, stderr = check_json({**env, "HOTLINE_CONFIG": str(config)})
    assert code == 2
    configuration = rows(report)["configuration"]
    assert configuration["status"] == "fail"
    assert "[webhook]" in configuration["detail"]
    assert "HOTLINE_WEBHOOK_SECRET is not set" in configuration["detail"]
    assert "HOTLINE_WEBHOOK_SECRET" in stderr


def test_a_webhook_url_notices_cannot_go_to_is_a_webhook_failure(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, smtp="", webhook='[webhook]\nurl = "http://hooks.example/notices"\n'
    )
    env = {**env, "HOTLINE_CONFIG": str(config), "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    import_list(env, tmp_path)
    code, report, _ = check_json(env)
    assert code == 2
    by_name = rows(report)
    assert by_name["webhook"]["status"] == "fail"
    assert "plain http" in by_name["webhook"]["detail"]
    assert "hooks.example" in by_name["webhook"]["detail"]
    assert WEBHOOK_SECRET not in json.dumps(report)
    assert by_name["smtp"]["status"] == "ok"  # not configured: the outbox takes e-mail


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_redis_that_cannot_be_used_is_exit_3_within_seconds(
    good_env: dict[str, str], kind: str
) -> None:
    with deaf_server() as deaf:
        url = deaf if kind == "silent" else f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
        started = time.monotonic()
        result = run_cli(["check", "--json"], {**good_env, "HOTLINE_REDIS_URL": url})
        elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "cannot use Redis at" in one_line_error(result)
    by_name = rows(json.loads(result.stdout))
    assert by_name["redis"]["status"] == "fail"
    assert url in by_name["redis"]["detail"]
    assert "lists" not in by_name  # they live in Redis
    assert by_name["smtp"]["status"] == "ok"  # the other checks still ran
    assert elapsed < REDIS_DEADLINE, elapsed


class OwnRedis:
    """A redis-server of the test's own on a loopback port: AOF on, ``options`` (name ->
    value) and ``arguments`` (more command-line words) on top."""

    def __init__(
        self,
        directory: Path,
        *,
        options: dict[str, str] | None = None,
        arguments: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port("127.0.0.1")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        directory.mkdir()
        settings = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(directory),
            "save": "",
            "appendonly": "yes",
            "logfile": "redis.log",
            "daemonize": "no",
            **(options or {}),
        }
        words = [part for key, value in settings.items() for part in (f"--{key}", value)]
        self.arguments = [*words, *arguments]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            [redis_server_binary(), *self.arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(self._answers, "the test's redis-server to answer")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = self.directory / "redis.log"
            shown = log.read_text() if log.exists() else ""
            pytest.fail(f"the test's redis-server exited: {shown[-2000:]}")
        return redis_answers(self.url)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=CLI_TIMEOUT)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"maxmemory-policy": "allkeys-lru"},
            "maxmemory-policy is allkeys-lru: Redis evicts keys",
        ),
        ({"appendonly": "no"}, "appendonly is no:"),
    ],
)
def test_a_redis_that_may_lose_hits_is_exit_3(
    good_env: dict[str, str], tmp_path: Path, options: dict[str, str], expected: str
) -> None:
    with OwnRedis(tmp_path / "own-redis", options=options) as server:
        env = {**good_env, "HOTLINE_REDIS_URL": server.url}
        import_list(env, tmp_path)
        code, report, stderr = check_json(env)
    assert code == 3, stderr
    redis_row = rows(report)["redis"]
    assert redis_row["status"] == "fail"
    assert expected in redis_row["detail"]
    assert server.url in redis_row["detail"]
    assert expected in stderr
    assert rows(report)["lists"]["status"] == "ok"  # reachable: the lists were still checked


def test_a_redis_that_refuses_config_is_a_warning(good_env: dict[str, str], tmp_path: Path) -> None:
    # As managed services do: CONFIG renamed to nothing, so it is an unknown command.
    with OwnRedis(tmp_path / "own-redis", arguments=("--rename-command", "CONFIG", "")) as server:
        env = {**good_env, "HOTLINE_REDIS_URL": server.url}
        import_list(env, tmp_path)
        code, report, stderr = check_json(env)
    assert code == 0, stderr
    redis_row = rows(report)["redis"]
    assert redis_row["status"] == "warn"
    assert "refused CONFIG GET" in redis_row["detail"]


def test_a_list_without_classification_fails_when_the_configuration_classifies(
    good_env: dict[str, str], tmp_path: Path
) -> None:
    import_list(good_env, tmp_path, "unmapped")
    code, report, _ = check_json(good_env)
    assert code == 2
    lists = rows(report)["lists"]
    assert lists["status"] == "fail"
    assert "no classification for unmapped" in lists["detail"]
    assert f"{TEST_LIST} v1" in lists["detail"] and "unmapped v1" in lists["detail"]


def test_a_relay_that_is_down_fails_and_is_named(
    env: dict[str, str], tmp_path: Path, relay: SmtpServer, smtp_tls_files: TlsFiles
) -> None:
    port = free_port("127.0.0.1")
    table = smtp_table(relay, smtp_tls_files).replace(f"port = {relay.port}", f"port = {port}")
    config = write_config(tmp_path, smtp=table)
    env = {**env, "HOTLINE_CONFIG": str(config), "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    import_list(env, tmp_path)
    code, report, stderr = check_json(env)
    assert code == 3
    smtp = rows(report)["smtp"]
    assert smtp["status"] == "fail"
    assert smtp["detail"].startswith(f"SMTP 127.0.0.1:{port}: connect failed: ")  # as delivery says
    assert f"127.0.0.1:{port}" in stderr
    assert [r["name"] for r in report["checks"] if r["status"] == "fail"] == ["smtp"]


def test_a_relay_without_starttls_fails(
    env: dict[str, str], tmp_path: Path, smtp_server: SmtpServer, smtp_tls_files: TlsFiles
) -> None:
    config = write_config(tmp_path, smtp=smtp_table(smtp_server, smtp_tls_files))
    env = {**env, "HOTLINE_CONFIG": str(config), "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    import_list(env, tmp_path)
    code, report, _ = check_json(env)
    assert code == 3
    smtp = rows(report)["smtp"]
    assert smtp["status"] == "fail"
    assert "does not offer STARTTLS" in smtp["detail"]
    assert smtp_server.messages == []


def test_url_shows_the_route_without_sending(
    good_env: dict[str, str], relay: SmtpServer, tmp_path: Path
) -> None:
    url = f"http://{HOST_A}/reported/image.jpg"
    code, report, stderr = check_json(good_env, "--url", url)
    assert code == 0, stderr
    route = rows(report)["route"]
    assert route["status"] == "ok"
    assert route["detail"] == (
        f"{url}: to {PROVIDER} <{PROVIDER_ABUSE}>, decided by directory-cidr, channel smtp"
    )
    table = run_cli(["check", "--url", url], good_env)
    assert table.returncode == 0, table.stderr
    assert f"directory: {HOST_A} is in {HOST_A}/32" in table.stdout  # the route's trail
    assert relay.messages == []
    outbox = tmp_path / "data" / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())

    elsewhere = f"http://{HOST_B}/image.jpg"
    code, report, _ = check_json(good_env, "--url", elsewhere)
    assert code == 0
    unroutable = rows(report)["route"]
    assert unroutable["status"] == "warn"
    assert "would wait as unroutable" in unroutable["detail"]


@pytest.mark.parametrize("url", ["ftp://127.0.0.2/x.jpg", "http:///x.jpg", "image.jpg"])
def test_a_url_that_is_no_image_url_is_exit_2(good_env: dict[str, str], url: str) -> None:
    result = run_cli(["check", "--url", url], good_env)
    assert one_line_error(result, 2).startswith(f"error: --url {url!r}: ")
    assert result.stdout == ""


def test_version_names_the_installed_distribution(env: dict[str, str]) -> None:
    result = run_cli(["--version"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hotline-crawler {metadata.version('hotline-crawler')}\n"


def test_shell_completion_is_on(env: dict[str, str]) -> None:
    hotline = Path(sys.executable).with_name("hotline")
    if not hotline.exists():
        pytest.fail(f"the console script is not installed next to {sys.executable}")
    shown = subprocess.run(
        [str(hotline), "--show-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_HOTLINE_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _hotline_completion hotline" in shown.stdout
    completed = subprocess.run(
        [str(hotline)],
        env={
            **env,
            "_HOTLINE_COMPLETE": "complete_bash",
            "COMP_WORDS": "hotline che",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["check"]
    help_text = run_cli(["--help"], env).stdout
    assert "--install-completion" in help_text and "--version" in help_text


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("relay-password-1", "connect, EHLO, STARTTLS, AUTH as notices ok (no mail sent)"),
        ("not-the-password-7", "AUTH as notices refused: 535"),
    ],
)
def test_the_relay_login_is_tried_and_the_password_never_shown(
    env: dict[str, str], tmp_path: Path, smtp_tls_files: TlsFiles, password: str, expected: str
) -> None:
    with SmtpServer(
        "127.0.0.1",
        tls="starttls",
        tls_files=smtp_tls_files,
        require_starttls=True,
        auth=("notices", "relay-password-1"),
    ) as server:
        table = smtp_table(server, smtp_tls_files) + 'username = "notices"\n'
        config = write_config(tmp_path, smtp=table)
        env = {
            **env,
            "HOTLINE_CONFIG": str(config),
            "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "HOTLINE_SMTP_PASSWORD": password,
        }
        import_list(env, tmp_path)
        code, report, stderr = check_json(env)
        attempts = server.auth_attempts  # smtplib tries each mechanism the relay offers
        assert attempts and all(a.login == "notices" and a.tls for a in attempts)
        assert server.messages == []
    assert expected in rows(report)["smtp"]["detail"]
    assert code == (0 if password == "relay-password-1" else 3), stderr
    assert password not in json.dumps(report) + stderr
