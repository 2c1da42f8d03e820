"""`hotline hashes` end to end: every import format, allow-lists, remove, compute."""

from __future__ import annotations

import codecs
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from hotline.imagegen import encode, textured_image
from matchers.digest import digest_bytes
from matchers.lists import ALLOW
from store.keys import Keys
from store.lists import ListStore
from tests.helpers import one_line_error, run_cli

MD5_A = "8f14e45fceea167a5a36dedd4bea2543"
MD5_B = "c9f0f895fb98ab9159f51fd0297e236d"
PDQ_A = "4acc" * 16


def lists(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = run_cli(["hashes", "lists", "--json"], env)
    assert result.returncode == 0, result.stderr
    return {x["name"]: x for x in json.loads(result.stdout)}


def test_native_import_as_allow_list_shows_kind_and_thresholds(
    env: dict[str, str], tmp_path: Path
) -> None:
    native = tmp_path / "fp.csv"
    native.write_text(f"algorithm,hash,id,category\nmd5,{MD5_A},fp1,logo\n")
    args = [
        "hashes",
        "import",
        str(native),
        "--list",
        "fp",
        "--allow",
        "--phash-confirm",
        "5",
        "--phash-review",
        "12",
    ]
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr
    assert "list fp (allow-list): version 1, 1 entries" in result.stdout
    result = run_cli(["hashes", "import", str(native), "--list", "known"], env)
    assert result.returncode == 0, result.stderr
    listed = lists(env)
    assert (listed["fp"]["kind"], listed["known"]["kind"]) == ("allow", "known")
    assert listed["fp"]["thresholds"] == {
        "pdq_confirm": 31,
        "pdq_review": 50,
        "phash_confirm": 5,
        "phash_review": 12,
        "pdq_min_quality": 50,
        "corroborate": False,  # imported lists corroborate only when asked to
    }
    table = run_cli(["hashes", "lists"], env)
    assert table.returncode == 0 and "allow" in table.stdout and "phash 5/12" in table.stdout
    assert "corroborated" not in table.stdout.split("thresholds:")[0]
    asked = run_cli(["hashes", "import", str(native), "--list", "known", "--corroborate"], env)
    assert asked.returncode == 0, asked.stderr
    assert lists(env)["known"]["thresholds"]["corroborate"] is True
    table = run_cli(["hashes", "lists"], env)
    assert "phash 6/10, corroborated" in table.stdout


def test_plain_import_accepts_uppercase_and_comments(env: dict[str, str], tmp_path: Path) -> None:
    plain = tmp_path / "md5.txt"
    plain.write_text(f"# vendor MD5 list\n{MD5_A.upper()}\n\n  {MD5_B}  \n")
    result = run_cli(["hashes", "import", str(plain), "--list", "plain", "--algorithm", "md5"], env)
    assert result.returncode == 0, result.stderr
    listed = lists(env)["plain"]
    assert listed["total"] == 2 and listed["counts"] == {
        "md5": 2,
        "sha1": 0,
        "sha256": 0,
        "pdq": 0,
        "phash": 0,
    }
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{MD5_A}\n{MD5_B[:-2]}\n")
    result = run_cli(["hashes", "import", str(bad), "--list", "plain", "--algorithm", "md5"], env)
    assert result.returncode == 2
    assert f"{bad}:2: field 'hash'" in one_line_error(result)


def test_vendor_import_by_column_mapping(
    env: dict[str, str], tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    vendor = tmp_path / "vendor.csv"
    vendor.write_bytes(
        codecs.BOM_UTF8
        + (
            "ID;MD5;PDQHash;Category;Added\r\n"
            f"a-17;{MD5_A.upper()};{PDQ_A};B1;2024-02-01\r\n"
            f"a-18;{MD5_B};;A1;2024-02-02\r\n"
        ).encode()
    )
    mapping = ["--column", "md5=MD5", "--column", "pdq=PDQHash"]
    extra = ["--id-column", "ID", "--category-column", "Category"]
    result = run_cli(["hashes", "import", str(vendor), "--list", "v", *mapping, *extra], env)
    assert result.returncode == 0, result.stderr
    loaded = ListStore(redis_client, Keys(redis_prefix)).load("v")
    assert sorted((e.algorithm, e.hash, e.id, e.category) for e in loaded.entries) == [
        ("md5", MD5_A, "a-17", "B1"),
        ("md5", MD5_B, "a-18", "A1"),
        ("pdq", PDQ_A, "a-17", "B1"),
    ]
    missing = run_cli(
        ["hashes", "import", str(vendor), "--list", "v", "--column", "sha1=SHA1", *extra], env
    )
    assert missing.returncode == 2
    line = one_line_error(missing)
    assert f"{vendor}:1: field 'SHA1': column missing" in line
    explicit = run_cli(
        ["hashes", "import", str(vendor), "--list", "v2", *mapping, "--delimiter", ","], env
    )
    assert explicit.returncode == 2 and "field 'MD5'" in one_line_error(explicit)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "md5", "--column", "md5=MD5"], "not both"),
        (["--id-column", "ID"], "--id-column needs --column"),
        (["--column", "md5"], "expected ALGORITHM=COLUMN"),
        (["--column", "md4=MD4"], "algorithm must be one of"),
        (["--algorithm", "md4"], "--algorithm 'md4'"),
        (["--column", "md5=MD5", "--delimiter", "ab"], "one character"),
        (["--vpdq", "--algorithm", "pdq"], "--vpdq reads vPDQ files"),
        (["--id", "v1"], "--id needs --vpdq"),
        (["--category", "c"], "--category needs --vpdq"),
    ],
)
def test_import_option_errors(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    file = tmp_path / "x.csv"
    file.write_text(f"MD5\n{MD5_A}\n")
    result = run_cli(["hashes", "import", str(file), "--list", "x", *args], env)
    assert result.returncode == 2
    assert message in one_line_error(result)


def test_vpdq_import_makes_one_entry_per_video_and_errors_name_file_and_line(
    env: dict[str, str], tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.txt").write_text(f"0,100,{'4a' * 32},0.000\n1,90,{'b1' * 32},1.000\n")
    (videos / "b.vpdq").write_text(f"0,100,{'0f' * 32},0.000\n")
    result = run_cli(["hashes", "import", str(videos), "--vpdq", "--list", "v"], env)
    assert result.returncode == 0, result.stderr
    loaded = ListStore(redis_client, Keys(redis_prefix)).load("v")
    assert sorted((e.id, e.algorithm) for e in loaded.entries) == [
        ("vpdq:a", "pdq"),
        ("vpdq:a", "pdq"),
        ("vpdq:b", "pdq"),
    ]
    one = run_cli(
        ["hashes", "import", str(videos / "a.txt"), "--vpdq", "--id", "x9", "--list", "w"], env
    )
    assert one.returncode == 0, one.stderr
    assert {e.id for e in ListStore(redis_client, Keys(redis_prefix)).load("w").entries} == {
        "vpdq:x9"
    }
    (videos / "c.txt").write_text(f"0,100,{'0f' * 32},0.000\n1,100,{'0f' * 32}\n")
    bad = run_cli(["hashes", "import", str(videos), "--vpdq", "--list", "v"], env)
    assert bad.returncode == 2
    assert f"{videos / 'c.txt'}:2:" in one_line_error(bad)
    assert lists(env)["v"]["version"] == 1  # nothing half-imported
    with_id = run_cli(["hashes", "import", str(videos), "--vpdq", "--id", "x", "--list", "v"], env)
    assert with_id.returncode == 2
    assert "--id names the video of one vPDQ file" in one_line_error(with_id)


def test_failed_import_leaves_the_old_version_serving(
    env: dict[str, str], tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"algorithm,hash,id\nmd5,{MD5_A},e1\nmd5,{MD5_B},e2\n")
    assert run_cli(["hashes", "import", str(good), "--list", "known"], env).returncode == 0
    bad_rows = tmp_path / "bad.txt"
    bad_rows.write_text(f"{MD5_A}\nnot-a-hash\n")
    bad_args = ["--list", "known", "--algorithm", "md5"]
    assert run_cli(["hashes", "import", str(bad_rows), *bad_args], env).returncode == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    result = run_cli(["hashes", "import", str(empty), *bad_args], env)
    assert result.returncode == 2 and "no hash rows" in one_line_error(result)
    listed = lists(env)["known"]
    assert (listed["version"], listed["total"]) == (1, 2)
    loaded = ListStore(redis_client, Keys(redis_prefix)).load("known")
    assert {e.id for e in loaded.entries} == {"e1", "e2"}


def test_remove(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(f"algorithm,hash\nmd5,{MD5_A}\n")
    for name in ("a", "b"):
        assert run_cli(["hashes", "import", str(good), "--list", name], env).returncode == 0
    result = run_cli(["hashes", "remove", "a", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "a", "removed": True}
    assert list(lists(env)) == ["b"]
    again = run_cli(["hashes", "remove", "a"], env)
    assert again.returncode == 2
    assert one_line_error(again) == "error: no hash list named 'a'"
    assert run_cli(["hashes", "remove", "b"], env).stdout.strip() == "list b removed"
    assert lists(env) == {}


def test_compute_prints_every_hash_and_reports_bad_files(
    env: dict[str, str], tmp_path: Path
) -> None:
    bodies = {
        "a.jpg": encode(textured_image(31), "JPEG", quality=90),
        "b.png": encode(textured_image(32), "PNG"),
    }
    for name, body in bodies.items():
        (tmp_path / name).write_bytes(body)
    (tmp_path / "notes.txt").write_text("not an image")
    files = [str(tmp_path / n) for n in ("a.jpg", "notes.txt", "b.png")]
    env = {**env, "HOTLINE_REDIS_URL": f"unix://{tmp_path}/no-redis.sock"}  # needs no Redis
    result = run_cli(["hashes", "compute", *files, "--json"], env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith(f"error: {tmp_path / 'notes.txt'}: not an image")
    printed = json.loads(result.stdout)
    assert [p["file"] for p in printed] == [files[0], files[2]]
    for shown, body in zip(printed, bodies.values(), strict=True):
        digest = digest_bytes(body)
        assert shown["md5"] == hashlib.md5(body).hexdigest()
        assert shown["sha1"] == hashlib.sha1(body).hexdigest()
        assert shown["sha256"] == hashlib.sha256(body).hexdigest()
        assert (shown["pdq"], shown["pdq_quality"], shown["phash"]) == (
            digest.pdq,
            digest.pdq_quality,
            digest.phash,
        )
        assert (shown["size"], shown["error"]) == (len(body), None)
        assert (shown["width"], shown["height"]) == (640, 480)
    assert printed[0]["format"] == "jpeg" and printed[1]["format"] == "png"
    assert printed[0]["pdq"] != printed[1]["pdq"]

    text = run_cli(["hashes", "compute", files[0]], env)
    assert text.returncode == 0 and text.stderr == ""
    assert hashlib.sha256(bodies["a.jpg"]).hexdigest() in text.stdout
    missing = run_cli(["hashes", "compute", str(tmp_path / "gone.png"), files[2]], env)
    assert missing.returncode == 2
    assert "gone.png: cannot read" in one_line_error(missing)
    assert hashlib.md5(bodies["b.png"]).hexdigest() in missing.stdout


def test_truncated_image_still_gives_exact_hashes(env: dict[str, str], tmp_path: Path) -> None:
    body = encode(textured_image(33), "JPEG", quality=90)[:2000]
    path = tmp_path / "cut.jpg"
    path.write_bytes(body)
    result = run_cli(["hashes", "compute", str(path), "--json"], env)
    assert result.returncode == 0, result.stderr
    (shown,) = json.loads(result.stdout)
    assert shown["sha256"] == hashlib.sha256(body).hexdigest()
    expected_error = digest_bytes(body).error
    assert expected_error is not None
    assert shown["pdq"] is None and shown["error"] == expected_error


def test_allow_flag_on_build(env: dict[str, str], tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.jpg").write_bytes(encode(textured_image(34), "JPEG", quality=90))
    result = run_cli(["hashes", "build", str(refs), "--list", "fp", "--allow"], env)
    assert result.returncode == 0, result.stderr
    assert lists(env)["fp"]["kind"] == ALLOW
    # Built from images: each entry has a PDQ and a pHash under one id, corroboration on.
    assert lists(env)["fp"]["thresholds"]["corroborate"] is True
    off = ["hashes", "build", str(refs), "--list", "fp", "--no-corroborate"]
    assert run_cli(off, env).returncode == 0
    assert lists(env)["fp"]["thresholds"]["corroborate"] is False


def test_build_stores_alternate_framings_as_asked(env: dict[str, str], tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.jpg").write_bytes(encode(textured_image(35), "JPEG", quality=90))

    def perceptual_rows(*options: str) -> tuple[int, int]:
        result = run_cli(["hashes", "build", str(refs), "--list", "r", *options], env)
        assert result.returncode == 0, result.stderr
        counts = lists(env)["r"]["counts"]
        return counts["pdq"], counts["phash"]

    # The image's own PDQ and pHash, and those of each framing (two by default).
    assert perceptual_rows() == (3, 3)
    assert perceptual_rows("--no-alternates") == (1, 1)
    assert perceptual_rows("--framing", "centre-80", "--framing", "top-left-90") == (3, 3)
    assert perceptual_rows("--framing", "centre-80") == (2, 2)
    bad = run_cli(["hashes", "build", str(refs), "--list", "r", "--framing", "centre-91"], env)
    assert bad.returncode == 2 and "--framing 'centre-91': use one of" in one_line_error(bad)
    both = ["--no-alternates", "--framing", "centre-80"]
    clash = run_cli(["hashes", "build", str(refs), "--list", "r", *both], env)
    assert clash.returncode == 2 and "--framing needs --alternates" in one_line_error(clash)


# -- classification --------------------------------------------------------------------------


def test_classification_is_stored_shown_and_kept_by_a_new_version(
    env: dict[str, str], tmp_path: Path
) -> None:
    native = tmp_path / "known.csv"
    native.write_text(f"algorithm,hash,id,category\nmd5,{MD5_A},k1,cat-1\nmd5,{MD5_B},k2,cat 2\n")
    args = ["hashes", "import", str(native), "--list", "known"]
    result = run_cli([*args, "--classification", "b2", "--classification", "cat-1=A1"], env)
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stderr  # every category is covered
    assert lists(env)["known"]["classification"] == {"*": "B2", "cat-1": "A1"}
    table = run_cli(["hashes", "lists"], env).stdout
    assert "*=B2, cat-1=A1" in table

    again = run_cli(args, env)  # a new version without --classification keeps the mapping
    assert again.returncode == 0, again.stderr
    listed = lists(env)["known"]
    assert (listed["version"], listed["classification"]) == (2, {"*": "B2", "cat-1": "A1"})

    replaced = run_cli([*args, "--classification", "cat 2=baseline"], env)
    assert replaced.returncode == 0, replaced.stderr
    assert lists(env)["known"]["classification"] == {"cat 2": "baseline"}
    assert "no X-ARF classification for category 'cat-1' of list known" in replaced.stderr


def test_an_unmapped_list_says_its_hits_will_wait(env: dict[str, str], tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "a.png").write_bytes(encode(textured_image(31, 96, 96), "PNG"))
    result = run_cli(["hashes", "build", str(refs), "--list", "local", "--category", "c"], env)
    assert result.returncode == 0, result.stderr
    assert "wait as unclassified" in result.stderr
    assert lists(env)["local"]["classification"] == {}
    built = run_cli(
        ["hashes", "build", str(refs), "--list", "local", "--classification", "A2"], env
    )
    assert built.returncode == 0, built.stderr
    assert lists(env)["local"]["classification"] == {"*": "A2"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--classification", "A9"], "--classification 'A9': 'A9' is not an X-ARF classification"),
        (["--classification", "cat=illegal"], "'illegal' is not an X-ARF classification"),
        (["--classification", "nope=A1"], "list x has no category 'nope' (its categories: 'cat')"),
        (["--classification", "=A1"], "expected VALUE or CATEGORY=VALUE"),
        (["--classification", "A1", "--classification", "B1"], "every category is given more"),
        (["--classification", "A1", "--allow"], "an allow-list is never noticed"),
    ],
)
def test_bad_classification_is_exit_2_and_stores_nothing(
    env: dict[str, str], tmp_path: Path, extra: list[str], expected: str
) -> None:
    native = tmp_path / "x.csv"
    native.write_text(f"algorithm,hash,id,category\nmd5,{MD5_A},k1,cat\n")
    line = one_line_error(run_cli(["hashes", "import", str(native), "--list", "x", *extra], env), 2)
    assert expected in line
    assert "x" not in lists(env)
