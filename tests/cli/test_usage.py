"""The CLI as an analyst and a script see it: exit codes, one-line errors, JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hotline.imagegen import encode, textured_image
from matchers.digest import digest_bytes
from tests.helpers import deaf_server, hotline_env, one_line_error, run_cli


def test_import_is_all_or_nothing_and_names_line_and_field(
    env: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"algorithm,hash,id,category\nmd5,{'a' * 32},e1,test\n")
    assert run_cli(["hashes", "import", str(good), "--list", "known"], env).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "algorithm,hash,id,category\n"
        f"sha256,{'b' * 64},e2,test\n"
        "# a comment\n"
        f"sha1,{'c' * 39},e3,test\n"
    )
    result = run_cli(["hashes", "import", str(bad), "--list", "known"], env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"{bad}:4:" in line and "field 'hash'" in line
    listed = json.loads(run_cli(["hashes", "lists", "--json"], env).stdout)
    assert [(x["name"], x["version"], x["total"]) for x in listed] == [("known", 1, 1)]
    assert listed[0]["counts"]["md5"] == 1 and listed[0]["counts"]["sha256"] == 0


def test_bad_algorithm_and_header(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "algo.csv"
    bad.write_text(f"algorithm,hash\nmd4,{'a' * 32}\n")
    line = one_line_error(run_cli(["hashes", "import", str(bad), "--list", "x"], env))
    assert f"{bad}:2:" in line and "field 'algorithm'" in line
    header = tmp_path / "header.csv"
    header.write_text(f"algo,hash\nmd5,{'a' * 32}\n")
    line = one_line_error(run_cli(["hashes", "import", str(header), "--list", "x"], env))
    assert f"{header}:1:" in line
    missing = run_cli(["hashes", "import", str(tmp_path / "none.csv"), "--list", "x"], env)
    assert missing.returncode == 2
    assert "none.csv" in one_line_error(missing)
    assert json.loads(run_cli(["hashes", "lists", "--json"], env).stdout) == []


def test_thresholds_are_validated(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"algorithm,hash\nphash,{'0f' * 8}\n")
    result = run_cli(
        [
            "hashes",
            "import",
            str(good),
            "--list",
            "x",
            "--phash-confirm",
            "20",
            "--phash-review",
            "10",
        ],
        env,
    )
    assert result.returncode == 2
    assert "phash_confirm" in one_line_error(result)


def test_build_hashes_a_directory_and_skips_non_images(env: dict[str, str], tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    (refs / "sub").mkdir(parents=True)
    bodies = [encode(textured_image(seed), "JPEG", quality=90) for seed in (11, 12)]
    (refs / "a.jpg").write_bytes(bodies[0])
    (refs / "sub" / "b.bin").write_bytes(bodies[1])  # detected by content, not extension
    (refs / "notes.txt").write_text("not an image")
    build = ["hashes", "build", str(refs), "--list", "refs", "--category", "c", "--no-alternates"]
    result = run_cli(build, env)
    assert result.returncode == 0, result.stderr
    assert "notes.txt" in result.stderr
    (listed,) = json.loads(run_cli(["hashes", "lists", "--json"], env).stdout)
    assert listed["name"] == "refs"
    assert listed["counts"]["sha256"] == 2 and listed["counts"]["phash"] == 2
    assert listed["counts"]["pdq"] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["hashes", "build", str(empty), "--list", "e"], env).returncode == 2
    digests = {digest_bytes(b).sha256 for b in bodies}
    assert len(digests) == 2


def test_unreachable_redis_is_exit_3_with_masked_password(tmp_path: Path) -> None:
    env = hotline_env(HOTLINE_REDIS_URL=f"unix://user:s3cret@{tmp_path}/nothing.sock")
    result = run_cli(["hits", "list", "--json"], env)
    assert result.returncode == 3
    line = one_line_error(result)
    assert "s3cret" not in line and "nothing.sock" in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [("foo://redis.example/0", "foo://redis.example/0"), ("redis://:99999", "redis://:99999")],
)
def test_a_malformed_redis_url_is_bad_input_exit_2(url: str, shown: str) -> None:
    result = run_cli(["hits", "list", "--json"], hotline_env(HOTLINE_REDIS_URL=url))
    assert one_line_error(result, 2).startswith(f"error: invalid Redis URL {shown}: ")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("DOWNLOAD_MAXSIZE=abc", "error: --set DOWNLOAD_MAXSIZE='abc': expected a number"),
        ("ROBOTSTXT_OBEY=maybe", "error: --set ROBOTSTXT_OBEY='maybe': expected true/false or 1/0"),
        ("DOWNLOAD_TIMEOUT=soon", "error: --set DOWNLOAD_TIMEOUT='soon': expected a number"),
        (
            "CRAWL_PROXY=relay:3128",
            "error: --set CRAWL_PROXY: expected http://host:port, got 'relay:3128'",
        ),
        ("CRAWL_PARSE_TIMEOUT=abc", "error: --set CRAWL_PARSE_TIMEOUT='abc': expected a number"),
        (
            "CRAWL_MEDIA_MAXSIZE=0",
            "error: --set CRAWL_MEDIA_MAXSIZE='0': expected a positive number of bytes",
        ),
        (
            "MATCHER_HASH_TIMEOUT=-1",
            "error: --set MATCHER_HASH_TIMEOUT='-1': expected a positive number of seconds",
        ),
        (
            "MATCHER_VIDEO_MAX_FRAMES=abc",
            "error: --set MATCHER_VIDEO_MAX_FRAMES='abc': expected a positive whole number",
        ),
        (
            "MATCHER_VIDEO_MAX_FRAMES=2.5",
            "error: --set MATCHER_VIDEO_MAX_FRAMES='2.5': expected a positive whole number",
        ),
        (
            "MATCHER_VIDEO_SAMPLE_FPS=0",
            "error: --set MATCHER_VIDEO_SAMPLE_FPS='0': "
            "expected a positive number of frames per second",
        ),
        (
            "MATCHER_ARCHIVE_MAX_DEPTH=nan",
            "error: --set MATCHER_ARCHIVE_MAX_DEPTH='nan': expected a positive whole number",
        ),
    ],
)
def test_a_set_value_of_the_wrong_type_is_bad_input_exit_2(
    env: dict[str, str], setting: str, expected: str
) -> None:
    result = run_cli(["crawl", "http://127.0.0.2/", "--set", setting], env)
    assert one_line_error(result, 2) == expected


def test_crawl_without_valid_seeds_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# only bad lines\nftp://x.example/\nhttp://\n")
    result = run_cli(["crawl", "--seeds", str(seeds)], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"skipped seed {seeds}:2: unsupported scheme 'ftp'")
    assert lines[1].startswith(f"skipped seed {seeds}:3: missing host")
    assert lines[-1] == "error: no valid seed URL to crawl (give URLs or --seeds FILE)"


def test_empty_queues_print_empty_json(env: dict[str, str]) -> None:
    for command in (["hits", "list", "--json"], ["review", "list", "--json"]):
        result = run_cli(command, env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []


def test_help_explains_every_command(env: dict[str, str]) -> None:
    result = run_cli(["--help"], env)
    assert result.returncode == 0
    for command in (
        "crawl",
        "demo",
        "hashes",
        "hits",
        "review",
        "notifier",
        "recheck",
        "providers",
        "notices",
        "stats",
        "runs",
        "schedule",
        "scheduler",
        "users",
        "tokens",
    ):
        assert command in result.stdout


def test_a_redis_that_never_answers_is_one_line_and_exit_3_within_seconds(
    env: dict[str, str],
) -> None:
    """`hashes lists` took 162 s to say so (the timeouts of every layer retried)."""
    with deaf_server() as url:
        started = time.monotonic()
        result = run_cli(["hashes", "lists"], {**env, "HOTLINE_REDIS_URL": url})
        elapsed = time.monotonic() - started
    assert "cannot use Redis at" in one_line_error(result, 3)
    assert elapsed < 30, elapsed  # PROBE_TIMEOUT 5 s and the start-up of the command
