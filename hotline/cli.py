"""The analyst's command line: ``hotline crawl``, ``hotline hashes``, ``hotline hits``.

Every command explains itself (``--help``), prints tables for people and JSON for scripts
(``--json``), and fails with one line on standard error and a non-zero exit code:
2 for bad input, 3 when Redis cannot be reached, 1 for a crawl that did not finish.
No command ever shows an image.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Final

import redis
import typer
from rich.console import Console
from rich.table import Table

from crawler.safety import parse_networks
from crawler.seeds import SeedFileError, collect_seeds
from crawler.spiders.hotline import DEFAULT_DEPTH, DEFAULT_MAX_PAGES_PER_SEED
from hotline.config import Config
from hotline.crawlrun import CrawlOptions, CrawlResult, run_crawl
from hotline.demo import run_demo
from hotline.errors import HotlineError, InputError, ServiceError, UsageError
from hotline.services import Session, redis_session
from matchers.algorithms import (
    ALGORITHMS,
    PDQ_CONFIRM_THRESHOLD,
    PDQ_MIN_QUALITY,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.digest import digest_bytes
from matchers.errors import MatcherError, NotAnImage
from matchers.formats import read_plain, read_vendor_csv
from matchers.lists import (
    ALLOW,
    KNOWN,
    HashList,
    ListEntry,
    Thresholds,
    build_from_directory,
    read_csv,
    validate_list_name,
)
from takedown.errors import TakedownError
from takedown.lists import ListNotFound, ListStore
from takedown.queue import HitQueue, HitRecord

# Off a terminal (pipes, CI logs) tables get room for whole URLs instead of 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Notice-and-takedown crawler: crawl reported URLs, hash every image in memory, "
    "match known hash lists, queue confirmed hits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
hashes_app = typer.Typer(
    help="Hash lists: import, build, show, remove; compute the hashes of image files.",
    no_args_is_help=True,
)
hits_app = typer.Typer(help="Confirmed hits queued for notice and takedown.", no_args_is_help=True)
review_app = typer.Typer(help="Near misses queued for an analyst's review.", no_args_is_help=True)
app.add_typer(hashes_app, name="hashes")
app.add_typer(hits_app, name="hits")
app.add_typer(review_app, name="review")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _config() -> Config:
    return Config.from_env()


def _parse_sets(values: Iterable[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {value!r}: expected NAME=VALUE")
        overrides[key.strip()] = setting
    return overrides


# -- crawl ---------------------------------------------------------------------------------


@app.command()
def crawl(
    urls: Annotated[list[str] | None, typer.Argument(help="Reported URLs to crawl.")] = None,
    seeds: Annotated[
        Path | None, typer.Option("--seeds", help="File of URLs, one per line, # comments.")
    ] = None,
    depth: Annotated[
        int, typer.Option(min=0, help="Link depth to follow within each seed's site.")
    ] = DEFAULT_DEPTH,
    max_pages: Annotated[
        int, typer.Option(min=1, help="Page cap per seed.")
    ] = DEFAULT_MAX_PAGES_PER_SEED,
    allow_private_networks: Annotated[
        bool,
        typer.Option(
            help="Let the crawl reach private, loopback and link-local addresses "
            "(tests, demos). Also HOTLINE_ALLOW_PRIVATE_NETWORKS=1."
        ),
    ] = False,
    allow_network: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-network",
            help="A private network (CIDR) the crawl may reach, e.g. a lab (repeatable).",
        ),
    ] = None,
    obey_robots: Annotated[bool, typer.Option(help="Obey robots.txt (off by default).")] = False,
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="Match only these lists (repeatable).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a Scrapy setting, NAME=VALUE (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
) -> None:
    """Crawl reported URLs and queue every image that matches a known list."""
    config = _config()
    try:
        good, problems = collect_seeds(urls or [], [seeds] if seeds else [])
    except SeedFileError as exc:
        raise InputError(str(exc)) from None
    try:
        parse_networks(allow_network or [])
    except ValueError as exc:
        raise UsageError(str(exc).replace("SAFETY_ALLOWED_NETWORKS", "--allow-network")) from None
    for problem in problems:
        err.print(f"skipped seed {problem}")
    if not good:
        raise UsageError("no valid seed URL to crawl (give URLs or --seeds FILE)")
    with redis_session(config) as session:
        options = CrawlOptions(
            seeds=[s.url for s in good],
            redis_url=session.url,
            key_prefix=config.key_prefix,
            depth=depth,
            max_pages=max_pages,
            allow_private_networks=allow_private_networks or config.allow_private_networks,
            allowed_networks=allow_network or [],
            obey_robots=obey_robots,
            lists=lists or [],
            overrides=_parse_sets(sets or []),
            log_level="INFO" if verbose else "WARNING",
        )
        if not any(i.kind == KNOWN for i in ListStore(session.client, session.keys).info()):
            err.print(
                "warning: no known-hash list is loaded, nothing can match "
                "(import one with `hotline hashes import`)"
            )
        result = run_crawl(options, err, show_progress=not as_json)
        if not result.ok:
            _print_crawl_result(result, [], as_json=as_json, rejected=len(problems))
            raise HotlineError(f"crawl {result.crawl_id} did not finish: {result.reason}")
        hits = [
            r
            for r in HitQueue(session.client, session.keys).iter_records("confirmed")
            if r.crawl == result.crawl_id
        ]
    _print_crawl_result(result, hits, as_json=as_json, rejected=len(problems))


def _print_crawl_result(
    result: CrawlResult, hits: list[HitRecord], *, as_json: bool, rejected: int
) -> None:
    summary = result.summary()
    summary["seeds_rejected"] = rejected
    if as_json:
        out.print_json(data=summary)
        return
    table = Table(title=f"crawl {result.crawl_id}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("finish reason", summary["finish_reason"]),
        ("seeds (rejected)", f"{summary['seeds']} ({rejected})"),
        ("pages crawled", summary["pages"]),
        ("images hashed", summary["hashed"]),
        ("confirmed hits, new", summary["confirmed_new"]),
        ("confirmed hits, already queued", summary["confirmed_duplicate"]),
        ("review items, new", summary["review_new"]),
        ("undecodable images", summary["undecodable"]),
        ("refused private addresses", summary["refused_private"]),
        ("request errors", summary["errors"]),
        ("elapsed", f"{summary['elapsed_s']} s"),
        ("images per second", summary["images_per_s"]),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    out.print(table)
    if hits:
        out.print(_records_table(hits, title="confirmed hits of this crawl"))


@app.command()
def demo(as_json: JsonOption = False) -> None:
    """Crawl a generated benign demo site on 127.0.0.2 and print what matched its known list."""
    result, hits, expected = run_demo(_config(), err, show_progress=not as_json)
    found = {(r.url, r.entry) for r in hits}
    missed = sorted(url for url, entry in expected.items() if (url, entry) not in found)
    if as_json:
        out.print_json(
            data={
                "summary": result.summary(),
                "hits": [r.as_json() for r in hits],
                "missed": missed,
            }
        )
    else:
        _print_crawl_result(result, hits, as_json=False, rejected=0)
        out.print(
            f"{len(expected) - len(missed)} of {len(expected)} planted copies of known "
            "images found" + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    if not result.ok or missed:
        raise typer.Exit(1)


PdqConfirm = Annotated[
    int | None, typer.Option(help=f"PDQ distance confirmed (default {PDQ_CONFIRM_THRESHOLD}).")
]
PdqReview = Annotated[
    int | None, typer.Option(help=f"PDQ distance for review (default {PDQ_REVIEW_THRESHOLD}).")
]
PhashConfirm = Annotated[
    int | None,
    typer.Option(help=f"pHash distance confirmed (default {PHASH_CONFIRM_THRESHOLD})."),
]
PhashReview = Annotated[
    int | None,
    typer.Option(help=f"pHash distance for review (default {PHASH_REVIEW_THRESHOLD})."),
]
PdqMinQuality = Annotated[
    int | None,
    typer.Option(help=f"Lowest PDQ quality matched perceptually (default {PDQ_MIN_QUALITY})."),
]


AllowOption = Annotated[
    bool,
    typer.Option(
        "--allow", help="Store as an allow-list: known false positives, which always win."
    ),
]


def _thresholds(
    pdq_confirm: int | None,
    pdq_review: int | None,
    phash_confirm: int | None,
    phash_review: int | None,
    pdq_min_quality: int | None,
) -> Thresholds:
    """The list's thresholds: the defaults, overridden by the options given."""
    given = {
        "pdq_confirm": pdq_confirm,
        "pdq_review": pdq_review,
        "phash_confirm": phash_confirm,
        "phash_review": phash_review,
        "pdq_min_quality": pdq_min_quality,
    }
    return Thresholds(**{k: v for k, v in given.items() if v is not None})


# -- hashes --------------------------------------------------------------------------------


def _save_list(session: Session, hash_list: HashList) -> None:
    info = ListStore(session.client, session.keys).save(hash_list)
    counts = ", ".join(f"{k} {v}" for k, v in info.counts.items() if v)
    kind = " (allow-list)" if info.kind == ALLOW else ""
    out.print(f"list {info.name}{kind}: version {info.version}, {info.total} entries ({counts})")


def _parse_columns(values: Iterable[str]) -> dict[str, str]:
    """``--column ALG=COL`` options -> {algorithm: column}."""
    mapping: dict[str, str] = {}
    for value in values:
        algorithm, sep, column = value.partition("=")
        algorithm, column = algorithm.strip(), column.strip()
        if not sep or not column:
            raise UsageError(f"--column {value!r}: expected ALGORITHM=COLUMN, e.g. md5=MD5")
        if algorithm not in ALGORITHMS:
            raise UsageError(
                f"--column {value!r}: algorithm must be one of {', '.join(ALGORITHMS)}"
            )
        if algorithm in mapping:
            raise UsageError(f"--column {value!r}: {algorithm} is mapped more than once")
        mapping[algorithm] = column
    return mapping


def _parse_delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    delimiter = _DELIMITER_NAMES.get(value.lower(), value)
    if len(delimiter) != 1:
        raise UsageError(f"--delimiter {value!r}: give one character, or 'tab'")
    return delimiter


_DELIMITER_NAMES: Final = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}


def _read_entries(
    file: Path,
    *,
    algorithm: str | None,
    columns: list[str],
    id_column: str | None,
    category_column: str | None,
    delimiter: str | None,
) -> list[ListEntry]:
    """Read FILE in the format the options select (see ``hotline hashes import --help``)."""
    vendor_only = {
        "--id-column": id_column,
        "--category-column": category_column,
        "--delimiter": delimiter,
    }
    if algorithm is not None and columns:
        raise UsageError("give --algorithm (plain file) or --column (vendor CSV), not both")
    if not columns:
        for option, value in vendor_only.items():
            if value is not None:
                raise UsageError(f"{option} needs --column (vendor CSV)")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm {algorithm!r}: must be one of {', '.join(ALGORITHMS)}")
    try:
        if algorithm is not None:
            return read_plain(file, algorithm, lenient_case=True)
        if columns:
            return read_vendor_csv(
                file,
                _parse_columns(columns),
                id_column=id_column,
                category_column=category_column,
                delimiter=_parse_delimiter(delimiter),
                lenient_case=True,
            )
        return read_csv(file)
    except OSError as exc:
        raise InputError(f"{file}: cannot read the hash list ({exc.strerror})") from None


@hashes_app.command("import")
def hashes_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Hash list: native CSV (header algorithm,hash,id,category) by default, "
            "a plain file with --algorithm, another vendor's CSV with --column."
        ),
    ],
    list_name: Annotated[str, typer.Option("--list", help="Name of the list to (re)place.")],
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--algorithm",
            help=f"FILE is plain, one hash per line, of this algorithm ({', '.join(ALGORITHMS)}).",
        ),
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="FILE is a vendor CSV; ALGORITHM=COLUMN names the column holding that "
            "algorithm's hashes, e.g. md5=MD5 (repeatable).",
        ),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Vendor CSV column holding the entry id.")
    ] = None,
    category_column: Annotated[
        str | None,
        typer.Option("--category-column", help="Vendor CSV column holding the category."),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="Vendor CSV delimiter (one character or 'tab'; default: detected)."),
    ] = None,
    allow: AllowOption = False,
    pdq_confirm: PdqConfirm = None,
    pdq_review: PdqReview = None,
    phash_confirm: PhashConfirm = None,
    phash_review: PhashReview = None,
    pdq_min_quality: PdqMinQuality = None,
) -> None:
    """Import a hash list (all rows valid, or nothing is imported; the previous version of the
    list serves until the new one is stored). Plain and vendor files may use uppercase hex."""
    name = validate_list_name(list_name)
    thresholds = _thresholds(pdq_confirm, pdq_review, phash_confirm, phash_review, pdq_min_quality)
    entries = _read_entries(
        file,
        algorithm=algorithm,
        columns=columns or [],
        id_column=id_column,
        category_column=category_column,
        delimiter=delimiter,
    )
    if not entries:
        raise InputError(f"{file}: no hash rows to import")
    hash_list = HashList(
        name=name, entries=entries, thresholds=thresholds, kind=ALLOW if allow else KNOWN
    )
    with redis_session(_config()) as session:
        _save_list(session, hash_list)


@hashes_app.command("build")
def hashes_build(
    directory: Annotated[Path, typer.Argument(help="Directory of reference images.")],
    list_name: Annotated[str, typer.Option("--list", help="Name of the list to (re)place.")],
    category: Annotated[str, typer.Option(help="Category recorded with each entry.")] = "",
    allow: AllowOption = False,
    pdq_confirm: PdqConfirm = None,
    pdq_review: PdqReview = None,
    phash_confirm: PhashConfirm = None,
    phash_review: PhashReview = None,
    pdq_min_quality: PdqMinQuality = None,
) -> None:
    """Hash every image file under DIRECTORY into a list (the images are read, never copied)."""
    name = validate_list_name(list_name)
    thresholds = _thresholds(pdq_confirm, pdq_review, phash_confirm, phash_review, pdq_min_quality)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    entries, skipped = build_from_directory(directory, category=category)
    for path, reason in skipped:
        err.print(f"skipped {path}: {reason}")
    if not entries:
        raise InputError(f"{directory}: no image could be hashed")
    hash_list = HashList(
        name=name, entries=entries, thresholds=thresholds, kind=ALLOW if allow else KNOWN
    )
    with redis_session(_config()) as session:
        _save_list(session, hash_list)


@hashes_app.command("remove")
def hashes_remove(
    name: Annotated[str, typer.Argument(help="Name of the list to delete.")],
    as_json: JsonOption = False,
) -> None:
    """Delete a list (known or allow-list); running crawls keep the copy they loaded."""
    validate_list_name(name)
    with redis_session(_config()) as session:
        try:
            ListStore(session.client, session.keys).remove(name)
        except ListNotFound as exc:
            raise InputError(str(exc)) from None
    if as_json:
        out.print_json(data={"name": name, "removed": True})
    else:
        out.print(f"list {name} removed")


@hashes_app.command("lists")
def hashes_lists(as_json: JsonOption = False) -> None:
    """Show each list with its kind, thresholds and counts per algorithm."""
    with redis_session(_config()) as session:
        infos = ListStore(session.client, session.keys).info()
    if as_json:
        out.print_json(
            data=[
                {
                    "name": i.name,
                    "kind": i.kind,
                    "version": i.version,
                    "updated": i.updated,
                    "thresholds": i.thresholds.as_dict(),
                    "counts": i.counts,
                    "total": i.total,
                }
                for i in infos
            ]
        )
        return
    if not infos:
        out.print("no known-hash lists (import one with `hotline hashes import`)")
        return
    table = Table(title="hash lists")
    columns = ("list", "kind", "version", "updated", *ALGORITHMS, "total", "thresholds")
    for column in columns:
        left = column in ("list", "kind", "updated", "thresholds")
        table.add_column(column, justify="left" if left else "right")
    for i in infos:
        t = i.thresholds
        table.add_row(
            i.name,
            i.kind,
            str(i.version),
            i.updated,
            *(str(i.counts.get(a, 0)) for a in ALGORITHMS),
            str(i.total),
            f"pdq {t.pdq_confirm}/{t.pdq_review} q>={t.pdq_min_quality}, "
            f"phash {t.phash_confirm}/{t.phash_review}",
        )
    out.print(table)
    out.print("thresholds: confirm/review distance; q: lowest PDQ quality matched")


@hashes_app.command("compute")
def hashes_compute(
    files: Annotated[list[Path], typer.Argument(help="Image files to hash.")],
    as_json: JsonOption = False,
) -> None:
    """Print every hash of image files, to check a list entry (files are read into memory
    only; no Redis needed). Exits 2 after the others if a file is unreadable or not an image."""
    results: list[dict[str, object]] = []
    failed = 0
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            err.print(f"error: {file}: cannot read ({exc.strerror})", markup=False)
            failed += 1
            continue
        size = len(data)
        try:
            digest = digest_bytes(data)
        except NotAnImage:
            err.print(f"error: {file}: not an image (no known image signature)", markup=False)
            failed += 1
            continue
        finally:
            del data  # the bytes never outlive their hashing
        results.append({"file": str(file), "size": size, **digest.as_dict()})
    if as_json:
        out.print_json(data=results)
    else:
        for result in results:
            _print_digest(result)
    if failed:
        raise typer.Exit(InputError.exit_code)


_COMPUTE_FIELDS: Final = (
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "pdq_quality",
    "phash",
    "format",
    "width",
    "height",
    "frames",
    "size",
    "error",
)


def _print_digest(result: dict[str, object]) -> None:
    out.print(str(result["file"]), markup=False)
    for name in _COMPUTE_FIELDS:
        value = result.get(name)
        out.print(f"  {name:<12} {'-' if value is None else value}", markup=False)


# -- hits and review -----------------------------------------------------------------------


def _records_table(records: list[HitRecord], *, title: str) -> Table:
    table = Table(title=title)
    table.add_column("image URL", overflow="fold", ratio=3)
    table.add_column("found on page", overflow="fold", ratio=2)
    table.add_column("list/entry", overflow="fold")
    table.add_column("match", no_wrap=True)
    table.add_column("first seen (UTC)", no_wrap=True)
    for r in records:
        table.add_row(
            r.url,
            r.page,
            f"{r.list}/{r.entry}",
            f"{r.algorithm} {r.distance}",
            r.first_seen.replace("T", " ")[:16],
        )
    return table


def _list_records(
    verdict: str, *, as_json: bool, crawl_id: str | None, limit: int | None, title: str
) -> None:
    with redis_session(_config()) as session:
        records = [
            r
            for r in HitQueue(session.client, session.keys).iter_records(verdict)
            if crawl_id is None or r.crawl == crawl_id
        ]
    if limit is not None:
        records = records[-limit:]
    if as_json:
        out.print_json(data=[r.as_json() for r in records])
        return
    if not records:
        out.print(f"no {title}")
        return
    out.print(_records_table(records, title=title))


CrawlFilter = Annotated[str | None, typer.Option("--crawl", help="Only this crawl's records.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the newest N records.")]


@hits_app.command("list")
def hits_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List confirmed hits, oldest first."""
    _list_records(
        "confirmed", as_json=as_json, crawl_id=crawl_id, limit=limit, title="confirmed hits"
    )


@review_app.command("list")
def review_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List near misses waiting for an analyst, oldest first."""
    _list_records("review", as_json=as_json, crawl_id=crawl_id, limit=limit, title="review items")


# -- entry point ---------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    err.print(f"error: {message}", markup=False)
    return code


def main(argv: list[str] | None = None) -> None:
    """Console script ``hotline``: run the app, map errors to one line and an exit code."""
    code: Any = 0
    try:
        # Standalone mode: usage errors print themselves and exit 2, --help exits 0.
        app(args=argv)
    except HotlineError as exc:
        code = _fail(str(exc), exc.exit_code)
    except MatcherError as exc:
        code = _fail(str(exc), InputError.exit_code)
    except TakedownError as exc:
        code = _fail(str(exc), ServiceError.exit_code)
    except redis.RedisError as exc:  # Redis went away in the middle of a command
        code = _fail(f"Redis failed: {' '.join(str(exc).split())}", ServiceError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
