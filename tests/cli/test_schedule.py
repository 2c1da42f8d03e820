"""``hotline schedule ...`` and ``hotline scheduler`` as a person and a script see them:
one-line errors with exit code 2, JSON, and the state each command leaves in Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from store.options import OPTION_KEYS
from tests.helpers import HOST_A, HOST_B, ok_json, run_cli


def usage_error(args: list[str], env: dict[str, str]) -> str:
    result = run_cli(args, env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), result.stderr
    assert all(line.startswith("skipped seed ") for line in lines[:-1]), result.stderr
    return lines[-1]


def test_add_list_pause_resume_remove(env: dict[str, str], tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"# reported\nhttp://{HOST_A}/a\nftp://{HOST_A}/\nhttp://{HOST_B}/b\n")
    result = run_cli(
        [
            "schedule",
            "add",
            "nightly",
            "--seeds",
            str(seeds),
            "--cron",
            "0 2 * * *",
            "--depth",
            "2",
            "--list",
            "known",
            "--allow-network",
            "10.1.0.0/16",
            "--set",
            "DOWNLOAD_DELAY=0.5",
            "--json",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"skipped seed {seeds}:3: unsupported scheme 'ftp'")
    added = json.loads(result.stdout)
    assert added["seeds"] == [f"http://{HOST_A}/a", f"http://{HOST_B}/b"]  # URLs, not the path
    assert added["seeds_rejected"] == 1
    assert added["trigger"] == "cron 0 2 * * *"
    assert added["options"]["depth"] == 2 and added["options"]["lists"] == ["known"]
    assert added["options"]["allowed_networks"] == ["10.1.0.0/16"]
    assert added["options"]["overrides"] == {"DOWNLOAD_DELAY": "0.5"}
    assert set(added["options"]) == set(OPTION_KEYS)  # what `crawl --run` reads back
    assert added["next_run"].endswith("T02:00:00Z")
    seeds.unlink()  # the schedule does not depend on the file any more

    ok_json(["schedule", "add", "often", f"http://{HOST_A}/", "--every", "6h"], env)
    listed = ok_json(["schedule", "list"], env)
    assert [(s["name"], s["trigger"], s["paused"]) for s in listed] == [
        ("nightly", "cron 0 2 * * *", False),
        ("often", "every 6h", False),
    ]
    assert listed[1]["last_run_id"] is None and listed[1]["last_run_status"] is None
    table = run_cli(["schedule", "list"], env)
    assert table.returncode == 0 and "nightly" in table.stdout and "every 6h" in table.stdout

    paused = ok_json(["schedule", "pause", "often"], env)
    assert paused["paused"] is True and paused["next_run"] is None
    resumed = ok_json(["schedule", "resume", "often"], env)
    assert resumed["paused"] is False
    next_run = datetime.fromisoformat(resumed["next_run"].replace("Z", "+00:00"))
    assert next_run > datetime.now(UTC)

    assert ok_json(["schedule", "remove", "often"], env) == {"name": "often", "removed": True}
    assert [s["name"] for s in ok_json(["schedule", "list"], env)] == ["nightly"]


def test_bad_inputs_are_one_line_errors(env: dict[str, str], tmp_path: Path) -> None:
    url = f"http://{HOST_A}/"
    line = usage_error(["schedule", "add", "c", url, "--cron", "61 * * * *"], env)
    assert "'61 * * * *'" in line and "minute" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "soon"], env)
    assert "--every 'soon'" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "10s"], env)
    assert "minimum" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "99999999d"], env)
    assert "--every '99999999d': longer than the maximum of 366d" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "1h", "--cron", "0 * * * *"], env)
    assert "exactly one of --every" in line
    line = usage_error(["schedule", "add", "c", url], env)
    assert "exactly one of --every" in line
    line = usage_error(["schedule", "add", "no/slash", url, "--every", "1h"], env)
    assert "invalid schedule name" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "1h", "--set", "X"], env)
    assert "--set 'X'" in line
    line = usage_error(["schedule", "add", "c", url, "--every", "1h", "--allow-network", "x"], env)
    assert "--allow-network 'x'" in line

    bad_seeds = tmp_path / "bad.txt"
    bad_seeds.write_text(f"ftp://{HOST_A}/\n")
    line = usage_error(["schedule", "add", "c", "--seeds", str(bad_seeds), "--every", "1h"], env)
    assert line == "error: no valid seed URL to schedule (give URLs or --seeds FILE)"
    line = usage_error(
        ["schedule", "add", "c", "--seeds", str(tmp_path / "none.txt"), "--every", "1h"], env
    )
    assert "seed file not found" in line

    for command in ("pause", "resume", "remove", "run"):
        assert usage_error(["schedule", command, "ghost"], env) == "error: no schedule 'ghost'"
    assert ok_json(["schedule", "list"], env) == []

    ok_json(["schedule", "add", "twice", url, "--every", "1h"], env)
    line = usage_error(["schedule", "add", "twice", url, "--every", "1h"], env)
    assert "already exists" in line


def test_minimum_interval_is_configurable(env: dict[str, str]) -> None:
    env["HOTLINE_SCHEDULE_MIN_INTERVAL"] = "1s"
    added = ok_json(["schedule", "add", "fast", f"http://{HOST_A}/", "--every", "2s"], env)
    assert added["every"] == 2.0
    env["HOTLINE_SCHEDULE_MIN_INTERVAL"] = "never"
    assert "HOTLINE_SCHEDULE_MIN_INTERVAL" in usage_error(
        ["schedule", "add", "x", f"http://{HOST_A}/", "--every", "2s"], env
    )


def test_scheduler_once_with_nothing_due(env: dict[str, str]) -> None:
    ok_json(["schedule", "add", "later", f"http://{HOST_A}/", "--every", "1d"], env)
    stats = ok_json(["scheduler", "--once"], env)
    assert stats == {"ticks": 1, "started": 0, "failed": 0, "runs": []}
    assert ok_json(["schedule", "list"], env)[0]["runs_started"] == 0
