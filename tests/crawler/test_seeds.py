import re
from pathlib import Path

import pytest

from crawler.seeds import SeedFileError, collect_seeds, normalize_seed, parse_seed_lines


def test_seed_file_reports_bad_lines_with_numbers_and_keeps_the_rest(tmp_path: Path) -> None:
    seeds_file = tmp_path / "reported.txt"
    seeds_file.write_text(
        "# reported on Monday\n"
        "https://a.example/page\n"
        "\n"
        "ftp://b.example/file\n"
        "not a url\n"
        "https://a.example/page   # same again\n"
        "http://c.example:99999/\n"
        "HTTPS://D.example/x#frag\n"
        "example.org/no-scheme\n",
        encoding="utf-8",
    )
    seeds, problems = collect_seeds([], [seeds_file])
    assert [s.url for s in seeds] == ["https://a.example/page", "https://d.example/x"]
    assert [s.line for s in seeds] == [2, 8]
    by_line = {p.line: p.reason for p in problems}
    assert set(by_line) == {4, 5, 6, 7, 9}
    assert "unsupported scheme 'ftp'" in by_line[4]
    assert "whitespace" in by_line[5]
    assert by_line[6] == "duplicate of line 2"
    assert "malformed" in by_line[7]
    assert "missing scheme" in by_line[9]
    assert all(p.source == str(seeds_file) for p in problems)
    assert str(problems[0]).startswith(f"{seeds_file}:4: ")


def test_command_line_and_file_duplicates_are_reported(tmp_path: Path) -> None:
    seeds_file = tmp_path / "s.txt"
    seeds_file.write_text("https://a.example/\n", encoding="utf-8")
    seeds, problems = collect_seeds(["https://a.example/"], [seeds_file])
    assert [s.url for s in seeds] == ["https://a.example/"]
    assert len(problems) == 1
    assert problems[0].reason == "duplicate of command line:1"


def test_unreadable_seed_files_raise_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SeedFileError, match="seed file not found"):
        collect_seeds([], [tmp_path / "missing.txt"])
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"https://a.example/\n\xff\xfe\n")
    with pytest.raises(SeedFileError, match=r"not UTF-8 text \(byte 19\)"):
        collect_seeds([], [binary])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://Example.ORG", "http://example.org/"),
        ("https://example.org:8443/a?b=1#c", "https://example.org:8443/a?b=1"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_normalize_seed(text: str, expected: str) -> None:
    assert normalize_seed(text) == expected


def test_parse_seed_lines_skips_comments_and_blanks() -> None:
    seeds, problems = parse_seed_lines(["", "   # x", "http://a.example/#top"], source="s")
    assert [s.url for s in seeds] == ["http://a.example/"]
    assert problems == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http://a..b/", "invalid host name (empty label)"),
        ("http://.x.org/", "invalid host name (empty label)"),
        ("http://" + "a" * 64 + ".org/", "a label longer than 63 characters"),
        ("http://" + ".".join(["a" * 60] * 5) + "/", "longer than 253 characters"),
        ("http://x.org/" + "p" * 9000, "URL longer than 8192 characters"),
    ],
)
def test_hosts_dns_cannot_hold_and_overlong_urls_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_seed(text)


def test_a_huge_seed_line_is_reported_short() -> None:
    line = "http://x.org/" + "p" * 10_000_000
    seeds, problems = parse_seed_lines([line, "http://ok.example/"], source="seeds.txt")
    assert [s.url for s in seeds] == ["http://ok.example/"]
    (problem,) = problems
    shown = str(problem)
    assert shown.startswith("seeds.txt:1: URL longer than 8192 characters: 'http://x.org/ppp")
    assert shown.endswith("(10000013 characters)'") and len(shown) < 300
    # Names DNS can hold still pass, in any script, with a trailing dot.
    assert normalize_seed("http://bücher.de./x") == "http://bücher.de./x"
