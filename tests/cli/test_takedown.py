"""The takedown commands' edges through the real CLI: configuration errors, the default outbox,
provider lookups, unknown notices. The full loop is in ``test_takedown_loop.py``."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import redis

from store.keys import Keys
from store.queue import HitQueue
from tests.builders import IDENTITY_TOML, directory_config, make_hit
from tests.helpers import HOST_A, ROOT, one_line_error, run_cli
from tests.servers.rdap import RdapServer, load_doc

EXAMPLES = ROOT / "examples"


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The CLI tests' environment plus a configuration: an identity, a provider directory
    that knows one host, and no RDAP."""
    return {**env, "HOTLINE_CONFIG": str(directory_config(tmp_path))}


def test_default_delivery_is_the_outbox(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    queued = HitQueue(redis_client, Keys(redis_prefix))
    first = make_hit()
    queued.enqueue(first)
    result = run_cli(["notifier", "--once", "--json"], env)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    outbox = tmp_path / "data" / "outbox"
    assert stats["sent"] == 0
    assert stats["awaiting_manual"] == {
        first.incident: str(outbox / f"{first.incident}.notice.0.eml")
    }
    eml = outbox / f"{first.incident}.notice.0.eml"
    payload = json.loads((outbox / f"{first.incident}.notice.0.json").read_text())
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert "abuse@alpha.example" in str(message["To"])
    assert payload["notice_id"] == first.incident
    assert payload["xarf"]["url"] == first.url
    assert sorted(p.name for p in outbox.iterdir()) == sorted([eml.name, eml.stem + ".json"])
    assert oct(eml.stat().st_mode & 0o777) == "0o600"
    shown = json.loads(run_cli(["notices", "show", first.incident[:8], "--json"], env).stdout)
    assert shown["channel"] == "smtp"
    assert shown["status"] == "awaiting_manual"
    assert shown["timeline"][-1]["event"] == "prepared"
    assert shown["timeline"][-1]["detail"].startswith("outbox")


def test_providers_lookup_explains_the_route(env: dict[str, str]) -> None:
    result = run_cli(["providers", "lookup", HOST_A, "--json"], env)
    assert result.returncode == 0, result.stderr
    route = json.loads(result.stdout)
    assert route["method"] == "directory-cidr"
    assert route["recipient"]["address"] == "abuse@alpha.example"
    text = run_cli(["providers", "lookup", f"http://{HOST_A}:8080/x.jpg"], env)
    assert text.returncode == 0, text.stderr
    assert "Alpha Hosting" in text.stdout
    assert f"{HOST_A}/32" in text.stdout
    nobody = json.loads(run_cli(["providers", "lookup", "127.0.0.9", "--json"], env).stdout)
    assert nobody["method"] == "unroutable"
    assert nobody["recipient"] is None
    assert nobody["trail"]


def test_providers_lookup_through_rdap(env: dict[str, str], rdap_server: RdapServer) -> None:
    rdap_server.add_network("127.0.0.9/32", load_doc("ripe_ip"))
    rdap_server.add_network("127.0.0.10/32", load_doc("ripe_ip"))
    # A registry on a private network is refused (the trail says why) until allowed. (A
    # failed lookup is cached for a while, hence another address below.)
    refused = json.loads(
        run_cli(
            ["providers", "lookup", "127.0.0.10", "--json"],
            {**env, "HOTLINE_RDAP_URL": rdap_server.url},
        ).stdout
    )
    assert refused["method"] != "rdap"
    assert "resolves to non-public" in json.dumps(refused["trail"])
    assert rdap_server.total_hits == 0
    route = json.loads(
        run_cli(
            ["providers", "lookup", "127.0.0.9", "--json"],
            {**env, "HOTLINE_RDAP_URL": rdap_server.url, "HOTLINE_ALLOW_PRIVATE_NETWORKS": "1"},
        ).stdout
    )
    assert route["method"] == "rdap"
    assert route["recipient"]["address"]
    assert rdap_server.total_hits >= 1


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[notices\n", "hotline.toml"),
        ("[smtp]\nport = 25\n", r"[smtp] host: missing"),
        ('[notices]\nreminder_interval = "soon"\n', "[notices] reminder_interval"),
    ],
)
def test_configuration_errors_are_one_line_exit_2(
    env: dict[str, str], tmp_path: Path, config: str, expected: str
) -> None:
    (tmp_path / "hotline.toml").write_text(IDENTITY_TOML + config, encoding="utf-8")
    line = one_line_error(run_cli(["notifier", "--once"], env), 2)
    assert expected in line


def test_directory_errors_name_file_and_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "providers.yaml").write_text(
        "- name: Alpha Hosting\n  cidrs: [127.0.0.2/33]\n  abuse: abuse@alpha.example\n",
        encoding="utf-8",
    )
    line = one_line_error(run_cli(["notifier", "--once"], env), 2)
    assert "providers.yaml:2" in line
    assert "cidrs" in line


def test_sending_needs_the_hotline_identity(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "hotline.toml").write_text('[rdap]\nurl = ""\n', encoding="utf-8")
    line = one_line_error(run_cli(["notifier", "--once"], env), 2)
    assert "[hotline]" in line
    # Reading does not need it.
    listed = run_cli(["notices", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_missing_configuration_file_is_named(env: dict[str, str], tmp_path: Path) -> None:
    line = one_line_error(
        run_cli(["stats"], {**env, "HOTLINE_CONFIG": str(tmp_path / "nope.toml")}), 2
    )
    assert "nope.toml" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["notices", "show", "abcdef12"], "no notice abcdef12"),
        (["notices", "show", "zz"], "not a notice id"),
        (["notices", "resend", "abcdef12"], "no notice"),
        (["notices", "list", "--status", "lost"], "--status 'lost'"),
        (["providers", "lookup", "ftp://x.example/"], "expected an http(s) URL"),
    ],
)
def test_bad_input_is_exit_2(env: dict[str, str], args: list[str], expected: str) -> None:
    assert expected in one_line_error(run_cli(args, env), 2)


def test_empty_figures(env: dict[str, str]) -> None:
    result = run_cli(["stats", "--json"], env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["providers"] == []
    assert set(data["statuses"].values()) == {0}
    assert run_cli(["stats"], env).stdout.strip() == "no notices yet"


def test_example_configuration_files_are_valid(env: dict[str, str], tmp_path: Path) -> None:
    config = (EXAMPLES / "hotline.toml").read_text(encoding="utf-8")
    (tmp_path / "hotline.toml").write_text(config, encoding="utf-8")
    (tmp_path / "providers.yaml").write_text(
        (EXAMPLES / "providers.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "providers.csv").write_text(
        (EXAMPLES / "providers.csv").read_text(encoding="utf-8"), encoding="utf-8"
    )
    env = {**env, "HOTLINE_RDAP_URL": "", "HOTLINE_SMTP_PASSWORD": "x"}
    route = json.loads(run_cli(["providers", "lookup", "192.0.2.10", "--json"], env).stdout)
    assert route["method"] == "directory-cidr"
    csv_config = config.replace('directory = "providers.yaml"', 'directory = "providers.csv"')
    (tmp_path / "hotline.toml").write_text(csv_config, encoding="utf-8")
    route = json.loads(run_cli(["providers", "lookup", "192.0.2.10", "--json"], env).stdout)
    assert route["method"] == "directory-cidr"


def test_demo_writes_one_notice_per_hit_to_its_outbox(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(["demo", "--json"], env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["missed"] == []
    incidents = {h["incident"] for h in data["hits"]}
    # Written to the outbox is prepared, not sent: each waits for an analyst's mark-sent.
    assert set(data["notices"]["awaiting_manual"]) == incidents
    assert data["notices"]["sent"] == 0 < len(incidents)
    outbox = Path(data["notices"]["outbox"])
    assert outbox == tmp_path / "data" / "demo-outbox"
    written = {p.name.split(".")[0] for p in outbox.glob("*.notice.0.eml")}
    assert written == incidents
    for hit_json in data["hits"]:
        eml = (outbox / f"{hit_json['incident']}.notice.0.eml").read_bytes()
        message = message_from_bytes(eml, policy=policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        assert hit_json["url"] in body.get_content()
