"""``hotline hashes``: import, build, list and remove hash lists; hash image files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.table import Column

from hotline.cli.app import JsonOption, err, open_session, out
from hotline.cli.render import emit, json_or_empty, table
from hotline.errors import InputError, UsageError
from matchers.algorithms import (
    ALGORITHMS,
    PDQ_CONFIRM_THRESHOLD,
    PDQ_MIN_QUALITY,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.alternates import DEFAULT_FRAMINGS, FRAMINGS
from matchers.digest import digest_bytes
from matchers.errors import NotAnImage
from matchers.formats import VPDQ_MIN_QUALITY, read_plain, read_vendor_csv, read_vpdq
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
from store.errors import ListNotFound
from store.lists import (
    CLASSIFICATIONS,
    EVERY_CATEGORY,
    ClassificationMap,
    ListInfo,
    normalise_classification,
)

__all__ = ["hashes_app"]

hashes_app = typer.Typer(
    help="Hash lists: import, build, show, remove; compute the hashes of image files.",
    no_args_is_help=True,
)


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
CorroborateOption = Annotated[
    bool | None,
    typer.Option(
        "--corroborate/--no-corroborate",
        help="Confirm an image whose PDQ and pHash are both within the review distances of "
        "one entry (default: on for lists built from images, off for imported ones; an "
        "imported entry needs both hashes under one id).",
    ),
]


ListNameOption = Annotated[str, typer.Option("--list", help="Name of the list to (re)place.")]
AllowOption = Annotated[
    bool,
    typer.Option(
        "--allow", help="Store as an allow-list: known false positives, which always win."
    ),
]
ClassificationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--classification",
        metavar="[CATEGORY=]VALUE",
        help=f"X-ARF classification ({', '.join(CLASSIFICATIONS)}) of every category of the "
        "list (VALUE), or of one category (CATEGORY=VALUE; repeatable; the two combine). "
        "Replaces the list's stored mapping; without it a new version keeps the mapping the "
        "list had. Hits of a category with none wait as unclassified for an analyst.",
    ),
]


def _thresholds(
    pdq_confirm: int | None,
    pdq_review: int | None,
    phash_confirm: int | None,
    phash_review: int | None,
    pdq_min_quality: int | None,
    corroborate: bool,
) -> Thresholds:
    """The list's thresholds: the defaults, overridden by the options given."""
    given = {
        "pdq_confirm": pdq_confirm,
        "pdq_review": pdq_review,
        "phash_confirm": phash_confirm,
        "phash_review": phash_review,
        "pdq_min_quality": pdq_min_quality,
    }
    return Thresholds(**{k: v for k, v in given.items() if v is not None}, corroborate=corroborate)


# -- hashes --------------------------------------------------------------------------------


def _save_list(hash_list: HashList, classification: ClassificationMap | None = None) -> None:
    """Store (or replace) the list and say what was stored, and which of its categories have
    no classification."""
    with open_session() as session:
        info = session.lists().save(hash_list, classification=classification)
    counts = ", ".join(f"{k} {v}" for k, v in info.counts.items() if v)
    kind = " (allow-list)" if info.kind == ALLOW else ""
    out.print(
        f"list {info.name}{kind}: version {info.version}, {info.total} entries ({counts})",
        markup=False,
    )
    if info.kind == ALLOW:
        return
    out.print(f"classification: {_classification_text(info)}", markup=False)
    unmapped = sorted(
        c for c in {e.category for e in hash_list.entries} if info.classification.lookup(c) is None
    )
    if unmapped:
        err.print(
            f"note: no X-ARF classification for {_categories_text(unmapped)} of list "
            f"{info.name}: their hits wait as unclassified unless the configuration's "
            "[classification] maps them",
            markup=False,
        )


def _categories_text(categories: Iterable[str]) -> str:
    names = [repr(c) if c else "(no category)" for c in categories]
    return ("category " if len(names) == 1 else "categories ") + ", ".join(names)


def _classification_text(info: ListInfo) -> str:
    """``*=baseline, A=A1`` style, ``-`` for none, ``""`` for an allow-list."""
    if info.kind == ALLOW:
        return ""
    items = info.classification.as_dict()
    return ", ".join(f"{category}={value}" for category, value in items.items()) or "-"


def _parse_classification(
    values: list[str] | None, hash_list: HashList
) -> ClassificationMap | None:
    """``--classification [CATEGORY=]VALUE`` options -> the list's mapping (None: none given,
    keep the stored one). Every CATEGORY must be one of the list's own."""
    if not values:
        return None
    if hash_list.kind == ALLOW:
        raise UsageError("--classification: an allow-list is never noticed; it has none")
    categories = {e.category for e in hash_list.entries}
    mapping: dict[str, str] = {}
    for value in values:
        category, sep, text = value.rpartition("=")
        category = category.strip() if sep else EVERY_CATEGORY
        if sep and not category:
            raise UsageError(
                f"--classification {value!r}: expected VALUE or CATEGORY=VALUE "
                "(VALUE alone covers every category)"
            )
        try:
            chosen = normalise_classification(text)
        except ValueError as exc:
            raise UsageError(f"--classification {value!r}: {exc}") from None
        if category != EVERY_CATEGORY and category not in categories:
            known = ", ".join(sorted(repr(c) for c in categories if c)) or "none"
            raise UsageError(
                f"--classification {value!r}: list {hash_list.name} has no category "
                f"{category!r} (its categories: {known})"
            )
        if category in mapping:
            what = "every category" if category == EVERY_CATEGORY else f"category {category!r}"
            raise UsageError(f"--classification {value!r}: {what} is given more than once")
        mapping[category] = chosen
    return ClassificationMap(mapping)


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


def _read_vpdq_entries(
    source: Path, *, entry_id: str | None, category: str, min_quality: int
) -> list[ListEntry]:
    """One video entry per vPDQ file: FILE itself (id: --id, else its name without the
    extension), or every file of a directory (id: each file's name without the extension)."""
    if source.is_dir():
        if entry_id is not None:
            raise UsageError("--id names the video of one vPDQ file, not of a directory")
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise InputError(f"{source}: no vPDQ file in the directory")
        ids: dict[str, Path] = {}
        for path in files:
            if path.stem in ids:
                raise InputError(f"{path}: same video id {path.stem!r} as {ids[path.stem].name}")
            ids[path.stem] = path
    else:
        ids = {entry_id if entry_id is not None else source.stem: source}
    entries: list[ListEntry] = []
    for video_id, path in ids.items():
        try:
            entries.extend(
                read_vpdq(path, entry_id=video_id, category=category, min_quality=min_quality)
            )
        except OSError as exc:
            raise InputError(f"{path}: cannot read the vPDQ file ({exc.strerror})") from None
    return entries


@hashes_app.command("import")
def hashes_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Hash list: native CSV (header algorithm,hash,id,category) by default, "
            "a plain file with --algorithm, another vendor's CSV with --column."
        ),
    ],
    list_name: ListNameOption,
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
    vpdq: Annotated[
        bool,
        typer.Option(
            "--vpdq",
            help="FILE is one video's vPDQ hash (frame_number,quality,pdq_hex,timestamp "
            "lines), or a directory of them: each video becomes one entry of its frames.",
        ),
    ] = False,
    video_id: Annotated[
        str | None,
        typer.Option("--id", help="Entry id of the video of a vPDQ FILE (default: its name)."),
    ] = None,
    category: Annotated[
        str, typer.Option(help="Category recorded with each vPDQ video entry.")
    ] = "",
    allow: AllowOption = False,
    classification: ClassificationOption = None,
    pdq_confirm: PdqConfirm = None,
    pdq_review: PdqReview = None,
    phash_confirm: PhashConfirm = None,
    phash_review: PhashReview = None,
    pdq_min_quality: PdqMinQuality = None,
    corroborate: CorroborateOption = None,
) -> None:
    """Import a hash list (all rows valid, or nothing is imported; the previous version of the
    list serves until the new one is stored). Plain and vendor files may use uppercase hex."""
    name = validate_list_name(list_name)
    thresholds = _thresholds(
        pdq_confirm, pdq_review, phash_confirm, phash_review, pdq_min_quality, bool(corroborate)
    )
    if vpdq:
        if algorithm is not None or columns:
            raise UsageError("--vpdq reads vPDQ files: give neither --algorithm nor --column")
        entries = _read_vpdq_entries(
            file,
            entry_id=video_id,
            category=category,
            min_quality=VPDQ_MIN_QUALITY if pdq_min_quality is None else pdq_min_quality,
        )
    else:
        for option, value in {"--id": video_id, "--category": category or None}.items():
            if value is not None:
                raise UsageError(f"{option} needs --vpdq")
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
    hash_list = HashList(name, entries, thresholds, kind=ALLOW if allow else KNOWN)
    _save_list(hash_list, _parse_classification(classification, hash_list))


@hashes_app.command("build")
def hashes_build(
    directory: Annotated[Path, typer.Argument(help="Directory of reference images.")],
    list_name: ListNameOption,
    category: Annotated[str, typer.Option(help="Category recorded with each entry.")] = "",
    allow: AllowOption = False,
    classification: ClassificationOption = None,
    pdq_confirm: PdqConfirm = None,
    pdq_review: PdqReview = None,
    phash_confirm: PhashConfirm = None,
    phash_review: PhashReview = None,
    pdq_min_quality: PdqMinQuality = None,
    corroborate: CorroborateOption = None,
    alternates: Annotated[
        bool,
        typer.Option(
            "--alternates/--no-alternates",
            help="Also store, under each image's entry, the PDQ and pHash of standard "
            "re-framings (crops), so cropped copies match.",
        ),
    ] = True,
    framing: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A re-framing to store (repeatable; default {', '.join(DEFAULT_FRAMINGS)}): "
            f"{', '.join(FRAMINGS)}.",
        ),
    ] = None,
) -> None:
    """Hash every image file under DIRECTORY into a list (the images are read, never copied)."""
    name = validate_list_name(list_name)
    thresholds = _thresholds(
        pdq_confirm,
        pdq_review,
        phash_confirm,
        phash_review,
        pdq_min_quality,
        corroborate is not False,
    )
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    unknown = [name for name in framing or () if name not in FRAMINGS]
    if unknown:
        raise UsageError(f"--framing {unknown[0]!r}: use one of {', '.join(FRAMINGS)}")
    if framing and not alternates:
        raise UsageError("--framing needs --alternates")
    framings = tuple(framing or DEFAULT_FRAMINGS) if alternates else ()
    entries, skipped = build_from_directory(directory, category=category, framings=framings)
    for path, reason in skipped:
        err.print(f"skipped {path}: {reason}")
    if not entries:
        raise InputError(f"{directory}: no image could be hashed")
    hash_list = HashList(name, entries, thresholds, kind=ALLOW if allow else KNOWN)
    _save_list(hash_list, _parse_classification(classification, hash_list))


@hashes_app.command("remove")
def hashes_remove(
    name: Annotated[str, typer.Argument(help="Name of the list to delete.")],
    as_json: JsonOption = False,
) -> None:
    """Delete a list (known or allow-list); running crawls keep the copy they loaded."""
    validate_list_name(name)
    with open_session() as session:
        try:
            session.lists().remove(name)
        except ListNotFound as exc:
            raise InputError(str(exc)) from None
    emit({"name": name, "removed": True}, f"list {name} removed", as_json=as_json)


@hashes_app.command("lists")
def hashes_lists(as_json: JsonOption = False) -> None:
    """Show each list with its kind, thresholds, counts per algorithm and X-ARF classification
    (category=value; * is every other category)."""
    with open_session() as session:
        infos = session.lists().info()
    data = [i.as_json() for i in infos]
    empty = "no known-hash lists (import one with `hotline hashes import`)"
    if json_or_empty(infos, data, empty=empty, as_json=as_json):
        return
    headers = (
        "list",
        "kind",
        "version",
        "updated",
        *ALGORITHMS,
        "total",
        "thresholds",
        "classification",
    )
    left = {"list", "kind", "updated", "thresholds", "classification"}
    rows = []
    for i in infos:
        t = i.thresholds
        rows.append(
            (
                i.name,
                i.kind,
                str(i.version),
                i.updated,
                *(str(i.counts.get(a, 0)) for a in ALGORITHMS),
                str(i.total),
                f"pdq {t.pdq_confirm}/{t.pdq_review} q>={t.pdq_min_quality}, "
                f"phash {t.phash_confirm}/{t.phash_review}"
                + (", corroborated" if t.corroborate else ""),
                _classification_text(i),
            )
        )
    columns = [Column(h, justify="left" if h in left else "right") for h in headers]
    out.print(table("hash lists", columns, rows))
    out.print(
        "thresholds: confirm/review distance; q: lowest PDQ quality matched; corroborated: "
        "PDQ and pHash both within review distance of one entry confirm"
    )
    out.print("classification: X-ARF value per category (* every other); - none", markup=False)


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
