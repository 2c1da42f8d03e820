"""The machine-readable half of a notice: an X-ARF v4 ``content/csam`` report.

The report is a plain ``dict`` built here field by field and validated against the official
schema files shipped in the ``xarf`` package (``xarf-v4-master.json``, ``xarf-core.json``,
``types/content-csam.json`` and the files they reference), loaded with
:mod:`importlib.resources` and resolved through a :class:`referencing.Registry` keyed by each
schema's ``$id``, so relative ``$ref`` values (``xarf-core.json``, ``./content-base.json``,
``../xarf-core.json``) resolve offline. Nothing is fetched over the network.

What goes in, and why:

* ``xarf_version`` is :data:`XARF_VERSION` (``4.2.0``), the version the shipped schemas
  describe (their ``content-csam`` example and the package's ``SPEC_VERSION``); the schema
  itself only asks for ``^4.<minor>.<patch>``.
* ``report_id`` is a UUID *derived* from ``notice id + kind + sequence`` (:func:`report_id_for`,
  UUID version 5), so the same message re-rendered carries the same id and receivers can
  deduplicate. ``timestamp`` is when the incident was first observed and ``verified_at`` when
  the content was last seen online; both ISO 8601 UTC with a ``Z``.
* ``classification`` is the one the caller passes, decided for this incident: by the list's
  mapping of its categories (``hotline hashes import … --classification``), the
  configuration's ``[classification]`` table, or an analyst (``hotline notices classify``).
  The schema's values are :data:`CSAM_CLASSIFICATIONS`: ``baseline`` (illegal under the
  internationally agreed baseline), ``A1``/``A2`` (a prepubescent child: sex act /
  lascivious exhibition), ``B1``/``B2`` (a pubescent child: sex act / lascivious
  exhibition). There is no default: each value asserts something about the material, so a
  report without one is refused (:class:`NoticeError`), never filled in. The notice text
  shows the list's own category next to it.
* ``url`` is the image URL, or for an image inlined as a ``data:`` URI the page URL, the place
  the provider removes it from. ``source_identifier`` is the resolved IP (the route's, else
  the one the crawl connected to), else the host.
* ``hash_values`` holds the MD5, SHA-1 and SHA-256 of the matched bytes; the list, entry,
  algorithm and distance go into ``description``.
* Left out on purpose: ``confidence`` (a hash match is not a score), ``evidence`` (its items
  carry a base64 ``payload``: for this type that would be the material itself),
  ``screenshot_url`` (a link to a copy), ``source_port`` and ``_internal``.

Pitfalls in the ``xarf`` package (1.0.0), and why this module does not use its API:

* ``create_report`` generates a random ``uuid4`` ``report_id`` and a
  ``datetime.now().isoformat()`` timestamp (``+00:00`` and microseconds, not ``Z``) on every
  call, so a re-sent notice would look like a new report; callers cannot supply their own.
* ``XARFReport.confidence`` is typed ``int`` and documented as ``0-100`` while the schema
  requires a number in ``0.0 … 1.0``: any meaningful value fails one side or the other.
* Non-strict ``create_report``/``parse`` return a report object *together with* schema errors;
  a caller that only checks ``result.report`` ships invalid reports.
* ``strict=True`` promotes every ``x-recommended`` field to required, including
  ``evidence`` and ``confidence``: a strictly valid ``csam`` report would have to carry
  evidence payloads. Never validate these reports in strict mode.
* Its validator passes a bare ``jsonschema.FormatChecker()``: the ``date-time``, ``uri`` and
  ``hostname`` formats are only checked when the optional ``rfc3339-validator``, ``rfc3987``
  and ``fqdn`` packages are installed, and silently pass otherwise (``"timestamp": "soon"``
  validates). :func:`validate_xarf` registers its own checks for those formats.
* Schemas are located with ``Path(str(resources.files("xarf")))``, which breaks for zipped
  installs; its optional-field lookup maps ``../xarf-core.json`` to ``types/xarf-core.json``
  and silently finds nothing.
* Importing ``xarf`` builds pydantic adapters for every report type (a few hundred ms) and
  calls ``warnings.simplefilter("default", XARFv3DeprecationWarning)`` at import time, changing
  the process-wide warning filters. :mod:`importlib.resources` has to import the package to
  reach its files, so the schemas are loaded once, lazily, on the first validation.
* ``contact_info`` and ``evidence_item`` forbid extra properties, so a reporter cannot carry a
  phone number or a display name; content-base's ``domain`` pattern accepts lowercase
  FQDNs with an alphabetic TLD only (no IP literal, no ``localhost``), so it is set only when
  the host fits.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

import jsonschema
import referencing
import referencing.jsonschema
from jsonschema.exceptions import best_match

from store.clock import iso
from store.lists import CLASSIFICATIONS, normalise_classification
from store.queue import HitRecord
from store.text import one_line
from takedown.errors import NoticeError
from takedown.model import HotlineIdentity, NoticeKind, Route

__all__ = [
    "CSAM_CLASSIFICATIONS",
    "XARF_MEDIA_TYPES",
    "XARF_VERSION",
    "build_xarf_report",
    "content_noun",
    "data_url_media_type",
    "frame_times_text",
    "is_data_url",
    "removal_url",
    "report_id_for",
    "utc_iso",
    "validate_xarf",
    "xarf_classification",
    "xarf_media_type",
]

#: The X-ARF version the schemas shipped in ``xarf`` 1.0.0 describe.
XARF_VERSION = "4.2.0"
#: The ``classification`` values the ``content/csam`` schema accepts (kept with the lists in
#: :mod:`store.lists`, which stores each list's mapping to them).
CSAM_CLASSIFICATIONS: tuple[str, ...] = CLASSIFICATIONS
#: ``content-base.json``'s ``description`` limit.
DESCRIPTION_MAX = 1000
#: Namespace of the name-based (version 5) report ids.
REPORT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:hotline-crawler:xarf-report")

_SCHEMA_PACKAGE = "xarf"
_MASTER_ID = "https://xarf.org/schemas/v4/xarf-v4-master.json"
_MAX_MESSAGE = 240
# Keywords whose messages name the offending properties rather than repeat the instance.
_NAMED_KEYWORDS = frozenset({"required", "additionalProperties", "dependentRequired"})

# content-base.json's ``domain`` pattern, applied before setting the optional field.
_XARF_DOMAIN = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_DATA_URL = re.compile(r"^data:(?P<media>[^;,]*)", re.IGNORECASE)


# --------------------------------------------------------------------------- values


def utc_iso(value: str, field: str) -> str:
    """``value`` (ISO 8601 with an offset or ``Z``) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC.

    Raises :class:`NoticeError` naming ``field`` for text that is not a time or has no offset:
    a notice never guesses a time zone.
    """
    try:
        moment = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError) as exc:
        raise NoticeError(f"{field} is not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NoticeError(f"{field} has no UTC offset: {value!r}")
    return iso(moment.timestamp())


def report_id_for(notice_id: str, kind: NoticeKind, sequence: int) -> str:
    """The report id of one message: the same notice, kind and sequence give the same UUID."""
    return str(uuid.uuid5(REPORT_ID_NAMESPACE, f"{notice_id}.{kind}.{sequence}"))


def xarf_classification(value: str | None) -> str:
    """``value`` as X-ARF spells it (``a1`` → ``A1``).

    Raises :class:`NoticeError` when there is none or it is not one of
    :data:`CSAM_CLASSIFICATIONS`: a report never gets a classification nobody decided.
    """
    if not value:
        raise NoticeError(
            "no X-ARF classification for this incident: map the list's category "
            "(hashes import --classification, or [classification] in the configuration) "
            "or classify the notice (hotline notices classify)"
        )
    try:
        return normalise_classification(value)
    except ValueError as exc:
        raise NoticeError(f"classification: {exc}") from None


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def data_url_media_type(url: str) -> str:
    """The media type named by a ``data:`` URL (``image/png``), or ``""``."""
    found = _DATA_URL.match(url)
    return found.group("media").strip().lower() if found else ""


#: X-ARF ``media_type`` of each hit ``media_type`` (the schema knows image, video, audio,
#: text and mixed: an archive or another file may hold anything).
XARF_MEDIA_TYPES: Final = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "archive": "mixed",
    "archive_member": "mixed",
    "file": "mixed",
}
#: How the text of a report names each hit ``media_type``.
_MEDIA_NOUNS: Final = {"video": "video file", "audio": "audio file", "archive": "archive"}


def xarf_media_type(media_type: str) -> str:
    """The X-ARF ``media_type`` of a hit's (``mixed`` for one this version does not know)."""
    return XARF_MEDIA_TYPES.get(media_type, "mixed")


def content_noun(hit: HitRecord) -> str:
    """What a hit's content is, for a sentence: ``image``, ``video file (mp4)``,
    ``archive (zip)``, ``file (pdf)``, ``file``, ``file 'a/b.png' (png) in the archive``."""
    if hit.media_type == "image":
        return "image"
    if hit.media_type == "archive_member":
        kind = f" ({hit.file_type})" if hit.file_type else ""
        return f"file {hit.member!r}{kind} in the archive"
    noun = _MEDIA_NOUNS.get(hit.media_type, "file")
    return f"{noun} ({hit.file_type})" if hit.file_type else noun


def frame_times_text(hit: HitRecord) -> str:
    """A video hit's matching frame times as ``m:ss`` (``h:mm:ss`` past an hour), comma
    separated, with ``...`` when more frames matched than the hit lists; ``""`` otherwise."""
    times = []
    for part in filter(None, hit.frame_times.split(",")):
        try:
            seconds = max(0, int(float(part)))
        except ValueError:
            continue
        minutes, second = divmod(seconds, 60)
        hours, minute = divmod(minutes, 60)
        times.append(f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}")
    if times and hit.frames_matched is not None and hit.frames_matched > len(times):
        times.append("...")
    return ", ".join(times)


def removal_url(hit: HitRecord) -> str:
    """Where the provider removes the content from: the image URL, or for an image inlined
    as a ``data:`` URI (which names no location of its own) the page it is embedded in."""
    return hit.page if is_data_url(hit.url) else hit.url


def _organisation_domain(identity: HotlineIdentity) -> str:
    domain = identity.email.rpartition("@")[2].strip().lower()
    if not domain:
        raise NoticeError(f"hotline email {identity.email!r} has no domain")
    return domain


def _description(hit: HitRecord, reference: str) -> str:
    where = (
        f"image embedded in the page as a data: URI ({data_url_media_type(hit.url) or 'image'})"
        if is_data_url(hit.url)
        else f"{content_noun(hit)} at the reported URL"
    )
    if frames := frame_times_text(hit):
        where += f" (matching frames at {frames})"
    text = (
        f"Reference {reference}: {where} matched list {hit.list!r} entry {hit.entry!r} "
        f"by automated hash match ({hit.match_text}). "
        "Please remove the content and preserve evidence."
    )
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 3] + "..."


def build_xarf_report(
    identity: HotlineIdentity,
    hit: HitRecord,
    route: Route,
    *,
    notice_id: str,
    kind: NoticeKind,
    sequence: int,
    first_seen: str,
    last_verified: str,
    reference: str,
    classification: str | None,
) -> dict[str, Any]:
    """One X-ARF v4 ``content/csam`` report for one message about one incident.

    ``classification`` is the incident's X-ARF classification; without one (``None`` or
    ``""``) no report is built (:class:`NoticeError`). Not validated here:
    :func:`validate_xarf` does that (the renderer always calls it).
    """
    contact = {
        "org": identity.name,
        "contact": identity.email,
        "domain": _organisation_domain(identity),
    }
    report: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": report_id_for(notice_id, kind, sequence),
        "timestamp": utc_iso(first_seen, "first_seen"),
        "reporter": dict(contact),
        "sender": dict(contact),
        "source_identifier": route.ip or hit.ip or route.host,
        "category": "content",
        "type": "csam",
        "evidence_source": "crawler",
        "description": _description(hit, reference),
        "url": removal_url(hit),
        "verified_at": utc_iso(last_verified, "last_verified"),
        "verification_method": "automated_crawler",
        "classification": xarf_classification(classification),
        "detection_method": "hash_match",
        "media_type": xarf_media_type(hit.media_type),
        "hash_values": {"md5": hit.md5, "sha1": hit.sha1, "sha256": hit.sha256},
        "content_removed": False,
    }
    host = route.host.strip().lower()
    if _XARF_DOMAIN.fullmatch(host):
        report["domain"] = host
    if route.provider or route.as_name:
        report["hosting_provider"] = route.provider or route.as_name
    if route.asn is not None and route.asn > 0:
        report["asn"] = route.asn
    if route.registrar:
        report["registrar"] = route.registrar
    return report


# --------------------------------------------------------------------------- validation


def _is_rfc3339(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _RFC3339.fullmatch(instance):
        return False
    try:
        datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uri(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _SCHEME.match(instance) or any(ch.isspace() or ord(ch) < 32 for ch in instance):
        return False
    try:
        parts = urlsplit(instance)
    except ValueError:
        return False
    return parts.scheme.lower() not in {"http", "https"} or bool(parts.hostname)


def _is_hostname(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    name = instance.removesuffix(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split("."))


def _is_email(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    local, at, domain = instance.rpartition("@")
    return bool(at and local) and _is_hostname(domain) and not any(c.isspace() for c in local)


def _format_checker() -> jsonschema.FormatChecker:
    """jsonschema's checkers, plus real ones for the formats it skips without extra packages."""
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_is_rfc3339)
    checker.checks("uri")(_is_uri)
    checker.checks("hostname")(_is_hostname)
    checker.checks("email")(_is_email)
    return checker


@cache
def _validator() -> jsonschema.Draft202012Validator:
    """The master schema with every shipped schema registered under its ``$id``."""
    root = resources.files(_SCHEMA_PACKAGE) / "schemas"
    files = [root / "xarf-core.json", root / "xarf-v4-master.json"]
    files += sorted(
        (f for f in (root / "types").iterdir() if f.name.endswith(".json")),
        key=lambda f: f.name,
    )
    registry: referencing.Registry[Any] = referencing.Registry()
    master: dict[str, Any] | None = None
    for item in files:
        try:
            schema = json.loads(item.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NoticeError(f"cannot load X-ARF schema {item.name}: {exc}") from exc
        schema_id = schema.get("$id") if isinstance(schema, dict) else None
        if not isinstance(schema_id, str):
            raise NoticeError(f"X-ARF schema {item.name} has no $id")
        registry = registry.with_resource(
            schema_id, referencing.jsonschema.DRAFT202012.create_resource(schema)
        )
        if schema_id == _MASTER_ID:
            master = schema
    if master is None:
        raise NoticeError(f"the {_SCHEMA_PACKAGE} package ships no {_MASTER_ID}")
    return jsonschema.Draft202012Validator(
        master, registry=registry, format_checker=_format_checker()
    )


def _describe(error: jsonschema.ValidationError) -> str:
    """The error's message, without echoing a whole object back (an ``anyOf`` failure on the
    report would otherwise repeat the complete report in a one-line message)."""
    if isinstance(error.instance, dict | list) and error.validator not in _NAMED_KEYWORDS:
        keyword_path = "/".join(str(p) for p in error.relative_schema_path)
        return f"does not satisfy '{error.validator}' (schema {keyword_path})"
    return one_line(error.message, _MAX_MESSAGE)


def validate_xarf(report: Mapping[str, Any]) -> None:
    """Validate ``report`` against the official X-ARF v4 schemas (type-specific rules
    included); raise :class:`NoticeError` naming the failing JSON path otherwise.

    Beyond the schema, a ``content/csam`` report must never carry ``evidence`` (its items
    hold base64 content) or a ``screenshot_url``.
    """
    data = dict(report)
    errors = list(_validator().iter_errors(data))
    if errors:
        worst = best_match(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise NoticeError(f"X-ARF report invalid at {worst.json_path}: {_describe(worst)}{more}")
    if data.get("type") == "csam":
        for forbidden in ("evidence", "screenshot_url"):
            if forbidden in data:
                raise NoticeError(
                    f"X-ARF report invalid at $.{forbidden}: a csam report never carries "
                    "content or a link to a copy"
                )
