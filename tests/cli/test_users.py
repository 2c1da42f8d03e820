"""``hotline users`` and ``hotline tokens``: accounts and API tokens of the console from the
command line, checked against what the store (store.accounts) then accepts."""

from __future__ import annotations

import getpass
import json
import os
from typing import cast

import redis
from typer.testing import CliRunner

from hotline.cli import app
from store.accounts import Accounts
from store.keys import Keys
from tests.helpers import ok_json, one_line_error, run_cli

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another long secret"
IDLE, ABSOLUTE = 1800.0, 3600.0


def _actor() -> str:
    return f"admin@{getpass.getuser()}"


def _audit(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(keys.audit))
    return [{k.decode(): v.decode() for k, v in data.items()} for _, data in rows]


def test_users_add_list_reset_password_and_disable(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    accounts = Accounts(redis_client, keys)
    added = run_cli(
        ["users", "add", "alice", "--role", "analyst", "--password-stdin", "--json"],
        env,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "alice"
    assert accounts.verify_password("alice", PASSWORD) is not None

    again = run_cli(
        ["users", "add", "alice", "--role", "viewer", "--password-stdin"], env, stdin=PASSWORD
    )
    assert "user 'alice' exists already" in one_line_error(again, 2)
    bad_role = run_cli(
        ["users", "add", "bob", "--role", "root", "--password-stdin"], env, stdin=PASSWORD
    )
    assert "invalid role 'root'" in one_line_error(bad_role, 2)

    session, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    reset = run_cli(
        ["users", "reset-password", "alice", "--password-stdin"], env, stdin=OTHER_PASSWORD
    )
    assert reset.returncode == 0, reset.stderr
    assert "sessions ended" in reset.stdout
    assert accounts.get_session(session, idle=IDLE, absolute=ABSOLUTE) is None
    assert accounts.verify_password("alice", PASSWORD) is None
    assert accounts.verify_password("alice", OTHER_PASSWORD) is not None

    disabled = run_cli(["users", "disable", "alice"], env)
    assert disabled.returncode == 0, disabled.stderr
    assert accounts.verify_password("alice", OTHER_PASSWORD) is None

    listed = ok_json(["users", "list"], env)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [("alice", "analyst", True)]

    events = _audit(redis_client, keys)
    assert [(e["event"], e["actor"]) for e in events] == [
        ("user_added", _actor()),
        ("user_password_reset", _actor()),
        ("user_disabled", _actor()),
    ]
    for result in (added, again, bad_role, reset, disabled):
        for password in (PASSWORD, OTHER_PASSWORD):
            assert password not in result.stdout + result.stderr
    assert "bob" not in str(listed)


def test_a_token_secret_is_printed_once_and_never_listed(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    accounts = Accounts(redis_client, Keys(redis_prefix))
    created = run_cli(["tokens", "create", "ci", "--role", "analyst", "--json"], env)
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    secret = data["secret"]
    assert (data["name"], data["role"], data["revoked"]) == ("ci", "analyst", None)
    assert created.stdout.count(secret) == 1
    assert "will not be shown again" in created.stderr
    token = accounts.authenticate_token(secret)
    assert token is not None and token.role == "analyst"

    shown = run_cli(["tokens", "create", "web", "--role", "viewer"], env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    (web_secret,) = [line for line in lines if line.startswith("hlt_")]
    assert any("will not be shown again" in line for line in lines)
    assert accounts.authenticate_token(web_secret) is not None

    revoked = run_cli(["tokens", "revoke", "ci"], env)
    assert revoked.returncode == 0, revoked.stderr
    assert accounts.authenticate_token(secret) is None

    listed = run_cli(["tokens", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout and web_secret not in listed.stdout
    assert secret[4:] not in listed.stdout
    states = [(t["name"], t["revoked"] is None) for t in json.loads(listed.stdout)]
    assert states == [("ci", False), ("web", True)]


def test_users_add_asks_for_the_password_twice_without_echo(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    """In process (click's test runner answers the hidden prompts): the prompt, then the
    other commands that need no subprocess of their own."""
    runner = CliRunner()
    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HOTLINE_")}
    environment.update({k: v for k, v in env.items() if k.startswith("HOTLINE_")})
    accounts = Accounts(redis_client, Keys(redis_prefix))

    added = runner.invoke(
        app,
        ["users", "add", "carol", "--role", "viewer"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=environment,
    )
    assert added.exit_code == 0, added.output
    assert "Password: \nRepeat for confirmation: \n" in added.output
    assert PASSWORD not in added.output
    assert accounts.verify_password("carol", PASSWORD) is not None

    role = runner.invoke(app, ["users", "set-role", "carol", "--role", "admin"], env=environment)
    assert role.exit_code == 0, role.output
    assert accounts.get_user("carol").role == "admin"

    assert runner.invoke(app, ["users", "disable", "carol"], env=environment).exit_code == 0
    enabled = runner.invoke(app, ["users", "enable", "carol"], env=environment)
    assert enabled.exit_code == 0, enabled.output
    assert accounts.verify_password("carol", PASSWORD) is not None

    table = runner.invoke(app, ["users", "list"], env=environment)
    assert table.exit_code == 0, table.output
    assert "carol" in table.output and "admin" in table.output and "active" in table.output
