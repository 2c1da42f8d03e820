"""Routing through the real CLI: ``rdap update|status``, ``providers lookup`` with the IP-to-AS
table and bad targets, and ``notices approve-route`` for a suggested RFC 2142 route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from store.keys import Keys
from store.queue import HitQueue
from takedown.bootstrap import BOOTSTRAP_FILES, BUILTIN_BOOTSTRAP_DIR
from takedown.notice import reference_for
from tests.builders import CLASSIFICATION_TOML, IDENTITY_TOML, make_hit
from tests.helpers import HOST_A, ok_json, one_line_error, run_cli
from tests.servers.rdap import RdapServer

IP2ASN = f"{HOST_A}\t{HOST_A}\t64500\tNL\tEXAMPLE-AS Example Hosting\n"


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """An identity, a directory that lists AS64500, an IP-to-AS table, and no RDAP."""
    config = tmp_path / "hotline.toml"
    config.write_text(
        IDENTITY_TOML + CLASSIFICATION_TOML + '[notices]\ndirectory = "providers.yaml"\n'
        '[routing]\nip_to_asn = "ip2asn.tsv"\n'
        '[rdap]\nurl = ""\n',  # the registrar lookup of example.org would leave loopback
        encoding="utf-8",
    )
    (tmp_path / "providers.yaml").write_text(
        "- name: Example AS Host\n  asns: [AS64500]\n  abuse: abuse@as-host.example\n",
        encoding="utf-8",
    )
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN, encoding="utf-8")
    return {**env, "HOTLINE_CONFIG": str(config)}


def test_providers_lookup_shows_the_as_and_routes_by_it(env: dict[str, str]) -> None:
    route = ok_json(["providers", "lookup", HOST_A], env)
    assert route["method"] == "directory-asn"
    assert (route["asn"], route["as_name"]) == (64500, "EXAMPLE-AS Example Hosting")
    assert route["recipient"]["address"] == "abuse@as-host.example"
    text = run_cli(["providers", "lookup", HOST_A], env)
    assert text.returncode == 0, text.stderr
    assert "AS64500 (EXAMPLE-AS Example Hosting)" in text.stdout


@pytest.mark.parametrize("target", ["http://", "a..b", "not a host!", "http://exa mple.net/x"])
def test_providers_lookup_of_something_that_is_no_host_exits_2(
    env: dict[str, str], target: str
) -> None:
    line = one_line_error(run_cli(["providers", "lookup", target], env), 2)
    assert repr(target) in line


def test_a_bad_ip2asn_table_is_a_one_line_error(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN + "1.2.3.4\tx\t1\tNL\tX\n", encoding="utf-8")
    line = one_line_error(run_cli(["providers", "lookup", HOST_A], env), 2)
    assert line.endswith("ip2asn.tsv:2: field 'range_end': 'x' is not an IP address")


def test_approve_route_sends_the_suggestion_and_show_offers_it(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    hit = make_hit(7, url="http://img.example.org/7.jpg", ip="127.0.0.9")
    HitQueue(redis_client, Keys(redis_prefix)).enqueue(hit)
    assert ok_json(["notifier", "--once"], env)["unroutable"] == 1
    ref = reference_for(hit.incident)
    shown = run_cli(["notices", "show", ref], env)
    assert shown.returncode == 0, shown.stderr
    assert "abuse@example.org" in shown.stdout
    assert f"hotline notices approve-route {ref}" in shown.stdout
    outbox = tmp_path / "data" / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())  # never sent on its own

    approved = ok_json(["notices", "approve-route", ref], env)
    assert approved["outcome"] == "awaiting_manual"  # the outbox prepares it
    assert approved["recipient"] == "abuse@example.org"
    timeline = ok_json(["notices", "show", ref], env)["timeline"]
    [event] = [e for e in timeline if e["event"] == "route_approved"]
    assert event["actor"].startswith("analyst@")
    assert any(p.suffix == ".eml" for p in outbox.iterdir())

    again = run_cli(["notices", "approve-route", ref], env)
    assert "is awaiting_manual, not unroutable" in one_line_error(again, 2)


def test_rdap_update_from_a_mirror_then_status(
    env: dict[str, str], rdap_server: RdapServer, tmp_path: Path
) -> None:
    for name in BOOTSTRAP_FILES.values():
        data = json.loads((BUILTIN_BOOTSTRAP_DIR / name).read_text(encoding="utf-8"))
        data["publication"] = "2026-12-02T00:00:00Z"
        rdap_server.raw(f"/iana/rdap/{name}", json.dumps(data).encode(), "application/json")
    # A mirror on a private network is refused until the configuration allows its network.
    refused = run_cli(["rdap", "update", "--url", f"{rdap_server.url}/iana/rdap/"], env)
    assert "resolves to non-public" in one_line_error(refused, 1)
    assert rdap_server.total_hits == 0
    config = Path(env["HOTLINE_CONFIG"])
    config.write_text(
        config.read_text(encoding="utf-8") + '[network]\nallowed_networks = ["127.0.0.0/8"]\n',
        encoding="utf-8",
    )
    result = ok_json(["rdap", "update", "--url", f"{rdap_server.url}/iana/rdap/"], env)
    assert {f["publication"] for f in result["files"]} == {"2026-12-02T00:00:00Z"}
    target = tmp_path / "data" / "rdap-bootstrap"
    assert sorted(p.name for p in target.iterdir()) == sorted(BOOTSTRAP_FILES.values())
    status = ok_json(["rdap", "status"], env)
    assert {row["publication"] for row in status} == {"2026-12-02T00:00:00Z"}
    assert all(row["source"].startswith(str(target)) for row in status)

    rdap_server.raw("/iana/rdap/asn.json", b"{not json", "application/json")
    failed = run_cli(["rdap", "update", "--url", f"{rdap_server.url}/iana/rdap/"], env)
    assert "asn.json: not JSON" in one_line_error(failed, 1)
    after = ok_json(["rdap", "status"], env)
    assert {row["publication"] for row in after} == {"2026-12-02T00:00:00Z"}


@pytest.mark.parametrize("url", ["http://[::1", "notaurl", "ftp://mirror.example/rdap/"])
def test_rdap_update_of_a_url_that_is_not_one_is_bad_input(env: dict[str, str], url: str) -> None:
    line = one_line_error(run_cli(["rdap", "update", "--url", url], env), 2)
    assert line == f"error: --url: bootstrap URL {url!r} is not an http(s) URL"


def test_a_malformed_rdap_url_in_the_environment_is_bad_input(env: dict[str, str]) -> None:
    result = run_cli(
        ["providers", "lookup", "127.0.0.2"], {**env, "HOTLINE_RDAP_URL": "http://[::1"}
    )
    assert "is not an http(s) URL" in one_line_error(result, 2)
