"""The console under test: the real application on the session's redis-server (under this
test's key prefix), driven by Starlette's test client, with the real notice system (identity,
classification, a provider directory that sends HOST_A's notices through a web form).

Starting a crawl is the one seam: :class:`RecordingLauncher` records the run ids the console
asks to crawl instead of starting ``hotline crawl --run`` processes (the browser test starts
real ones). Passwords are hashed with cheap Argon2id parameters, so logging in is quick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from hotline.config import Config
from hotline.console.app import create_app
from hotline.console.state import ConsoleSettings, ConsoleState
from hotline.services import Session
from hotline.takedownrun import open_takedown
from store.accounts import Accounts
from store.keys import Keys
from store.options import CrawlOptions
from tests.builders import CLASSIFICATION_TOML, IDENTITY_TOML
from tests.helpers import HOST_A

#: The password of every test user (long enough for the 12-character rule).
PASSWORD = "correct horse battery"
FORM_URL = "https://abuse.alpha.example/report"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class RecordingLauncher:
    launched: list[str] = field(default_factory=list)

    def __call__(self, run_id: str) -> None:
        self.launched.append(run_id)


@dataclass
class Console:
    state: ConsoleState
    launcher: RecordingLauncher
    accounts: Accounts
    client: redis.Redis
    keys: Keys
    access_log: list[str]

    def app_client(self) -> TestClient:
        """A fresh browser-like client (its own cookie jar) that does not follow redirects."""
        return TestClient(create_app(self.state), follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> TestClient:
        """A client logged in as ``name``."""
        web = self.app_client()
        response = login(web, name, password)
        assert response.status_code == 303, response.text
        return web


def login_token(web: TestClient) -> str:
    """The login form's CSRF token (the form sets its cookie)."""
    page = web.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def login(web: TestClient, name: str, password: str):
    token = login_token(web)
    return web.post(
        "/login", data={"username": name, "password": password, "csrf_token": token, "next": "/"}
    )


def csrf_of(web: TestClient, path: str = "/") -> str:
    """The session's CSRF token, as a page of the console carries it."""
    page = web.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'data-csrf="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


@pytest.fixture
def console(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> Iterator[Console]:
    config_file = tmp_path / "hotline.toml"
    config_file.write_text(
        IDENTITY_TOML
        + CLASSIFICATION_TOML
        + '[notices]\ndirectory = "providers.yaml"\n[rdap]\nurl = ""\n',
        encoding="utf-8",
    )
    (tmp_path / "providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  channel: form\n  form_url: {FORM_URL}\n",
        encoding="utf-8",
    )
    config = Config.from_env(
        {
            "HOTLINE_REDIS_URL": redis_url,
            "HOTLINE_KEY_PREFIX": redis_prefix,
            "HOTLINE_DATA_DIR": str(tmp_path / "data"),
            "HOTLINE_CONFIG": str(config_file),
        }
    )
    keys = Keys(redis_prefix)
    session = Session(redis_client, redis_url, keys)
    accounts = Accounts(redis_client, keys, hasher=CHEAP_HASHER)
    for name, role in (("ada", "admin"), ("ana", "analyst"), ("vic", "viewer")):
        accounts.add_user(name, role, PASSWORD, actor="admin@test")
    launcher = RecordingLauncher()
    access_log: list[str] = []
    settings = ConsoleSettings(
        crawl_options=CrawlOptions(allow_private_networks=True), access_log=access_log.append
    )
    with open_takedown(session, config, need_sender=False) as takedown:
        state = ConsoleState(
            config=config,
            settings=settings,
            session=session,
            accounts=accounts,
            takedown=takedown,
            launch=launcher,
        )
        yield Console(state, launcher, accounts, redis_client, keys, access_log)
