"""Reading seed URLs: from the command line or a file, one per line, ``#`` comments.

A bad line never stops a crawl: it is reported with its source and line number and skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from crawler.scope import HTTP_SCHEMES, host_name_problem

#: The longest seed URL accepted (what servers commonly take; a 10 MB line was accepted, stored
#: in the run record and then dropped by Scrapy).
MAX_URL_LENGTH = 8192
#: Characters of a bad seed line shown in its problem (the rest elided).
SHOWN_CHARACTERS = 120


@dataclass(frozen=True, slots=True)
class Seed:
    url: str
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class SeedProblem:
    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        shown = self.text
        if len(shown) > SHOWN_CHARACTERS:
            shown = f"{shown[:SHOWN_CHARACTERS]}… ({len(self.text)} characters)"
        return f"{self.source}:{self.line}: {self.reason}: {shown!r}"


class SeedFileError(Exception):
    """A seed file that cannot be read at all (missing, unreadable, not UTF-8)."""


def normalize_seed(text: str) -> str:
    """Return the canonical form of a seed URL, or raise ``ValueError`` with the reason."""
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in text):
        raise ValueError("URL contains whitespace")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"malformed URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError("missing scheme (expected http:// or https://)")
    if scheme not in HTTP_SCHEMES:
        raise ValueError(f"unsupported scheme {scheme!r} (expected http or https)")
    host = parts.hostname
    if not host:
        raise ValueError("missing host")
    if ":" not in host and (problem := host_name_problem(host)) is not None:
        raise ValueError(f"invalid host name ({problem})")
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def parse_seed_lines(lines: Iterable[str], *, source: str) -> tuple[list[Seed], list[SeedProblem]]:
    """Parse seed lines; return the good seeds (first occurrence kept) and the problems."""
    seeds: list[Seed] = []
    problems: list[SeedProblem] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        # An inline comment needs whitespace before '#': a bare '#' is a URL fragment.
        text = re.split(r"\s#", text, maxsplit=1)[0].strip()
        try:
            url = normalize_seed(text)
        except ValueError as exc:
            problems.append(SeedProblem(source, number, text, str(exc)))
            continue
        if url in first_line:
            problems.append(
                SeedProblem(source, number, text, f"duplicate of line {first_line[url]}")
            )
            continue
        first_line[url] = number
        seeds.append(Seed(url, source, number))
    return seeds, problems


def read_seed_file(path: str | os.PathLike[str]) -> tuple[list[Seed], list[SeedProblem]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedFileError(f"{p}: seed file not found") from None
    except UnicodeDecodeError as exc:
        raise SeedFileError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SeedFileError(f"{p}: cannot read seed file ({exc.strerror})") from None
    return parse_seed_lines(text.splitlines(), source=str(p))


def collect_seeds(
    urls: Iterable[str], seed_files: Iterable[str | os.PathLike[str]] = ()
) -> tuple[list[Seed], list[SeedProblem]]:
    """Seeds from the command line (source ``argv``, line = position) then from files;
    a URL given twice anywhere is reported as a duplicate."""
    seeds, problems = parse_seed_lines(urls, source="command line")
    seen = {s.url: s for s in seeds}
    for path in seed_files:
        file_seeds, file_problems = read_seed_file(path)
        problems.extend(file_problems)
        for seed in file_seeds:
            if seed.url in seen:
                first = seen[seed.url]
                problems.append(
                    SeedProblem(
                        seed.source,
                        seed.line,
                        seed.url,
                        f"duplicate of {first.source}:{first.line}",
                    )
                )
                continue
            seen[seed.url] = seed
            seeds.append(seed)
    return seeds, problems
