"""`hotline notifier` holds an unclassified hit; `hotline notices classify` decides and sends.

The CLI runs as a subprocess against the session's real redis-server; notices go to the
outbox (no SMTP configured), whose files are what a hotline would send.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from store.keys import Keys
from store.queue import HitQueue
from tests.builders import IDENTITY_TOML, make_hit
from tests.helpers import HOST_A, one_line_error, run_cli

TAKEDOWN_TOML = IDENTITY_TOML + '[notices]\ndirectory = "providers.yaml"\n[rdap]\nurl = ""\n'


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """An identity, a directory that knows host A, no RDAP, and no classification at all."""
    config = tmp_path / "hotline.toml"
    config.write_text(TAKEDOWN_TOML, encoding="utf-8")
    (tmp_path / "providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: abuse@alpha.example\n",
        encoding="utf-8",
    )
    return {**env, "HOTLINE_CONFIG": str(config)}


def test_an_unclassified_hit_waits_until_an_analyst_classifies_it(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    hit, other = make_hit(1), make_hit(2)
    queue = HitQueue(redis_client, Keys(redis_prefix))
    queue.enqueue(hit)
    queue.enqueue(other)
    result = run_cli(["notifier", "--once", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert (json.loads(result.stdout)["sent"], json.loads(result.stdout)["unclassified"]) == (0, 2)
    outbox = tmp_path / "data" / "outbox"
    assert not outbox.exists() or list(outbox.iterdir()) == []
    waiting = run_cli(["notices", "list", "--status", "unclassified", "--json"], env)
    assert {n["id"] for n in json.loads(waiting.stdout)} == {hit.incident, other.incident}

    classify = [
        "notices",
        "classify",
        hit.incident[:8],
        "b1",
        "--reason",
        "reviewed by two analysts",
        "--analyst",
        "alice",
        "--json",
    ]
    decided = run_cli(classify, env)
    assert decided.returncode == 0, decided.stderr
    # The outbox prepares it for an analyst to send.
    assert json.loads(decided.stdout)["status"] == "awaiting_manual"
    payload = json.loads((outbox / f"{hit.incident}.notice.0.json").read_text())
    assert payload["xarf"]["classification"] == "B1"
    assert sorted(p.name for p in outbox.iterdir()) == [
        f"{hit.incident}.notice.0.eml",
        f"{hit.incident}.notice.0.json",
    ]  # exactly one notice, and none for the other hit

    shown = json.loads(run_cli(["notices", "show", hit.incident[:8], "--json"], env).stdout)
    assert shown["classification"] == "B1"
    [event] = [e for e in shown["timeline"] if e["event"] == "classified"]
    assert event["actor"] == "analyst@alice"
    assert "reviewed by two analysts" in event["detail"]

    again = one_line_error(run_cli(classify, env), 2)
    assert "is awaiting_manual: it was already sent (or prepared) with classification B1" in again
    bad = one_line_error(run_cli(["notices", "classify", other.incident[:8], "A9"], env), 2)
    assert "VALUE: 'A9' is not an X-ARF classification" in bad
    assert run_cli(["notifier", "--once", "--json"], env).returncode == 0
    assert len(list(outbox.iterdir())) == 2  # nothing more was sent


def test_a_bad_classification_in_the_configuration_is_exit_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(TAKEDOWN_TOML + '[classification]\nknown.test = "A5"\n', encoding="utf-8")
    line = one_line_error(run_cli(["notifier", "--once"], env), 2)
    assert f"{config}: [classification] known.test: 'A5' is not an X-ARF classification" in line
