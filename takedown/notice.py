"""Rendering one notice, reminder or escalation into the message an abuse desk receives.

:class:`NoticeRenderer` turns :class:`NoticeFacts` into an :class:`OutgoingNotice`: a
plain-text body from a Jinja2 template, an X-ARF v4 ``content/csam`` report validated against
the official schema (:mod:`takedown.xarf`), and the complete e-mail holding both.

The body carries every element of Art. 16(2) DSA (Regulation (EU) 2022/2065): the exact
location (image URL and the page it was found on), the reasons (legal basis, classification,
the hash match with list, entry, algorithm, distance and hashes), the hotline's name and
e-mail, and the bona fide statement; plus first seen / last verified times, IP, ASN and
provider, a CDN note, the request to remove and to preserve evidence, and the reference.
It never contains image bytes, a thumbnail or a link to a copy: an image inlined as a
``data:`` URI is described by media type and SHA-256 and reported at its page URL.

The e-mail follows the X-ARF e-mail transport (an extension of RFC 5965 ARF): an RFC 6522
``multipart/report; report-type=feedback-report`` with three parts: the text
(``text/plain; charset=utf-8``), a ``message/feedback-report`` part with
``Feedback-Type: xarf``, ``User-Agent`` and ``Version: 1`` (what tells an ARF parser that the
third part is X-ARF), and the report as ``application/json`` attachment ``xarf.json`` (base64).
Everything in it is derived from the facts (the ``Date`` is :attr:`NoticeFacts.created`, the
MIME boundary is derived from the ids), so rendering the same facts twice gives the same bytes,
and ``Message-ID`` is ``<{notice_id}.{kind}.{sequence}@{domain}>``: a re-sent message keeps
its id and receivers can deduplicate. Reminders and escalations refer to the first notice
with ``In-Reply-To`` and ``References``.

Templates (``notice.<lang>.txt.j2`` for the body, ``subject.<lang>.txt.j2`` for the subject)
come from ``takedown/templates``; a hotline may override any of them, or add languages, in its
own directory. Lookup order for a recipient language ``de-AT``: ``de-at``, ``de``, then the
default language. Templates are rendered with :class:`jinja2.StrictUndefined` (a misspelt
variable is an error, not an empty string) and receive these variables:

``kind`` (``notice``/``reminder``/``escalation``/``reappearance``: the content of a closed
notice was found online again, n-th time), ``sequence``, ``reference`` (``HL-`` and the
first 12 hex digits of the incident id), ``notice_id``, ``hotline`` (the
:class:`~takedown.model.HotlineIdentity`), ``recipient``
(:class:`~takedown.model.Recipient`), ``language``, ``image_url`` (the image or file URL,
``""`` for a ``data:`` image), ``page_url``, ``removal_url``, ``is_data_url``,
``data_media_type``, ``media_type`` (the hit's: ``image``, ``archive_member`` (then
``member`` is its path), ``video``, ``audio``, ``archive``, ``file``), ``frame_times``
(a video's matching frames, ``m:ss`` comma-separated, ``""`` otherwise) and ``frame_share``
(percent of frames matching a video entry, ``""`` otherwise), ``file_type`` (the
format of a file that is not an image, ``mp4``, ``zip``; ``""`` for an image or when
unknown), ``host``, ``ip``, ``asn``, ``as_name`` (the AS's name from the IP-to-AS table,
``""`` when unknown), ``provider``, ``network``, ``cdn``, ``registrar``,
``registrar_abuse``, ``upstream_abuse``, ``escalation_role``
(``upstream``/``registrar``/``other``, escalations only, else ``""``), ``first_seen``,
``last_verified``, ``sent_first`` (``""`` for a first notice), ``created`` (all
``YYYY-MM-DDTHH:MM:SSZ``), ``legal_basis``, ``category`` (the list's own),
``classification`` (the X-ARF one: :attr:`NoticeFacts.classification`), ``list_name``,
``entry``, ``algorithm``, ``exact`` (``True`` for an MD5/SHA-1/SHA-256 match), ``distance``,
``corroborated_by`` (the pHash distance of a PDQ match confirmed by corroboration, else
``None``), ``hashes`` (``(label, hex)`` pairs)."""

from __future__ import annotations

import hashlib
import json
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2

from store.queue import HitRecord
from store.text import one_line
from takedown.errors import NoticeError, TemplateError
from takedown.model import (
    NOTICE_KINDS,
    HotlineIdentity,
    NoticeKind,
    OutgoingNotice,
    Recipient,
    Route,
)
from takedown.xarf import (
    build_xarf_report,
    data_url_media_type,
    frame_times_text,
    is_data_url,
    removal_url,
    utc_iso,
    validate_xarf,
    xarf_classification,
)

__all__ = [
    "REFERENCE_PREFIX",
    "USER_AGENT",
    "NoticeFacts",
    "NoticeRenderer",
    "message_id_for",
    "reference_for",
]

#: Prefix of the human reference printed in subjects and bodies (``HL-0123456789ab``).
REFERENCE_PREFIX = "HL"
#: Hex digits of the incident id in the reference.
REFERENCE_DIGITS = 12
#: ``User-Agent`` of the ``message/feedback-report`` part.
USER_AGENT = "hotline-crawler/0.1"
#: Algorithms whose match means byte-identical content.
EXACT_ALGORITHMS = frozenset({"md5", "sha1", "sha256"})
#: File name of the X-ARF attachment, as the X-ARF e-mail transport names it.
XARF_FILENAME = "xarf.json"
#: Longest body line sent as ``7bit`` (RFC 5322's recommended 78 characters).
MAX_7BIT_LINE = 78

#: Serialises headers folded only at RFC 5322's hard limit (998). With the 78-column default,
#: Python's folder moves a whole value that fits on a continuation line onto it
#: (``Subject:`` CRLF SP ``Takedown ...``), which parsers (Python's included) read back with a
#: leading space. The parts' payloads are encoded with plain :data:`email.policy.SMTP`.
_WIRE_POLICY = SMTP.clone(max_line_length=998)
_NOTICE_ID = re.compile(r"^[0-9a-f]{32}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
_PACKAGE_TEMPLATES = ("takedown", "templates")


def reference_for(notice_id: str) -> str:
    """The human reference of an incident: ``HL-`` and the first 12 hex digits of its id."""
    return f"{REFERENCE_PREFIX}-{notice_id[:REFERENCE_DIGITS]}"


def message_id_for(identity: HotlineIdentity, notice_id: str, kind: str, sequence: int) -> str:
    """The ``Message-ID`` (with angle brackets) of one message; stable across re-sends."""
    return f"<{notice_id}.{kind}.{sequence}@{identity.message_id_domain}>"


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """Everything one message says, as plain values.

    ``notice_id`` is the incident id (32 lowercase hex); ``sequence`` is 0 for the notice and
    n for reminder n, escalation n or reappearance n; ``sent_first`` is when the original
    notice went out (required for all but the first notice); ``created`` is this message's
    time. Times are ISO 8601 with an offset (they are printed in UTC). ``recipient`` overrides
    who receives the message; by default a notice or reminder goes to ``route.recipient`` and
    an escalation to ``route.upstream_abuse``, else ``route.registrar_abuse``.
    ``classification`` is the incident's X-ARF classification (``baseline``, ``A1``, ``A2``,
    ``B1``, ``B2``), decided by the list's mapping, the configuration or an analyst; a message
    without one is not rendered (:class:`NoticeError`).
    """

    notice_id: str
    hit: HitRecord
    route: Route
    first_seen: str
    last_verified: str
    kind: NoticeKind
    sequence: int
    sent_first: str | None
    created: str
    recipient: Recipient | None = None
    classification: str = ""

    def __post_init__(self) -> None:
        if not _NOTICE_ID.fullmatch(self.notice_id):
            raise NoticeError(f"notice id must be 32 lowercase hex digits: {self.notice_id!r}")
        if self.kind not in NOTICE_KINDS:
            raise NoticeError(f"unknown notice kind {self.kind!r}")
        if self.kind == "notice" and self.sequence != 0:
            raise NoticeError(f"a first notice has sequence 0, not {self.sequence}")
        if self.kind != "notice":
            if self.sequence < 1:
                raise NoticeError(f"a {self.kind} has sequence >= 1, not {self.sequence}")
            if not self.sent_first:
                raise NoticeError(f"a {self.kind} needs sent_first (the original notice's time)")


class NoticeRenderer:
    """Renders :class:`NoticeFacts` for one hotline.

    ``templates_dir`` holds the hotline's own ``notice.<lang>.txt.j2`` /
    ``subject.<lang>.txt.j2`` files, which take precedence over the packaged ones; languages
    without a template fall back to ``default_language``.
    """

    def __init__(
        self,
        identity: HotlineIdentity,
        *,
        templates_dir: Path | None = None,
        default_language: str = "en",
    ) -> None:
        self.identity = identity
        self.default_language = _normal_language(default_language)
        if not self.default_language:
            raise NoticeError(f"default language {default_language!r} is not a language tag")
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            if not templates_dir.is_dir():
                raise TemplateError(f"notice template directory {templates_dir} does not exist")
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        loaders.append(jinja2.PackageLoader(*_PACKAGE_TEMPLATES))
        loader = jinja2.ChoiceLoader(loaders)
        self._env = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        # The default language is what every message falls back to: it must have templates
        # (found, not compiled here: a template's own errors are reported when it renders).
        where = f"{templates_dir} or the packaged templates" if templates_dir else "the package"
        for kind in ("notice", "subject"):
            name = f"{kind}.{self.default_language}.txt.j2"
            try:
                loader.get_source(self._env, name)
            except jinja2.TemplateNotFound:
                raise TemplateError(
                    f"notice language {default_language!r}: no template {name} in {where}"
                ) from None

    # ------------------------------------------------------------------ public

    def render(self, facts: NoticeFacts) -> OutgoingNotice:
        """The complete message for ``facts``; raises :class:`NoticeError` (or
        :class:`TemplateError`) when it cannot be built or its X-ARF report is invalid."""
        recipient, role = self._recipient(facts)
        language, body_template = self._template("notice", recipient.language)
        _, subject_template = self._template("subject", language)
        context = self._context(facts, recipient, role, language)
        text = _tidy(_render(body_template, context))
        subject = " ".join(_render(subject_template, context).split())
        if not subject:
            raise TemplateError(f"subject template {subject_template.name} rendered empty")

        report = build_xarf_report(
            self.identity,
            facts.hit,
            facts.route,
            notice_id=facts.notice_id,
            kind=facts.kind,
            sequence=facts.sequence,
            first_seen=facts.first_seen,
            last_verified=facts.last_verified,
            reference=context["reference"],
            classification=context["classification"],
        )
        validate_xarf(report)
        payload = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        xarf: dict[str, Any] = json.loads(payload)

        message_id = message_id_for(self.identity, facts.notice_id, facts.kind, facts.sequence)
        email = self._email(facts, recipient, language, subject, text, payload, message_id)
        return OutgoingNotice(
            notice_id=facts.notice_id,
            kind=facts.kind,
            sequence=facts.sequence,
            recipient=recipient,
            sender=self.identity.email,
            subject=subject,
            text=text,
            xarf=xarf,
            message_id=message_id,
            email=email,
        )

    # ------------------------------------------------------------------ parts

    def _recipient(self, facts: NoticeFacts) -> tuple[Recipient, str]:
        route = facts.route
        language = route.recipient.language if route.recipient else self.default_language
        if facts.kind != "escalation":
            recipient = facts.recipient or route.recipient
            if recipient is None:
                raise NoticeError(
                    f"incident {facts.notice_id} has no recipient (route {route.method})"
                )
            return recipient, ""
        if facts.recipient is not None:
            address = facts.recipient.address
            role = (
                "upstream"
                if address and address == route.upstream_abuse
                else "registrar"
                if address and address == route.registrar_abuse
                else "other"
            )
            return facts.recipient, role
        if route.upstream_abuse:
            provider = f"upstream of {route.provider or route.host}"
            return Recipient(provider, route.upstream_abuse, "smtp", language), "upstream"
        if route.registrar_abuse:
            provider = route.registrar or f"registrar of {route.host}"
            return Recipient(provider, route.registrar_abuse, "smtp", language), "registrar"
        raise NoticeError(
            f"cannot escalate incident {facts.notice_id}: the route names neither an "
            "upstream nor a registrar abuse address"
        )

    def _template(self, stem: str, language: str) -> tuple[str, jinja2.Template]:
        """The first of ``<stem>.<lang>.txt.j2`` for the language, its primary subtag and
        the default language that exists."""
        wanted = _normal_language(language)
        candidates: list[str] = []
        if wanted:
            candidates += [wanted, wanted.split("-")[0]]
        candidates.append(self.default_language)
        tried: list[str] = []
        for candidate in dict.fromkeys(candidates):
            name = f"{stem}.{candidate}.txt.j2"
            tried.append(name)
            try:
                return candidate, self._env.get_template(name)
            except jinja2.TemplateNotFound:
                continue
            except jinja2.TemplateSyntaxError as exc:
                where = exc.filename or exc.name or name
                raise TemplateError(
                    f"notice template {where} line {exc.lineno}: {exc.message}"
                ) from exc
        raise TemplateError(f"no notice template found: tried {', '.join(tried)}")

    def _context(
        self, facts: NoticeFacts, recipient: Recipient, role: str, language: str
    ) -> dict[str, Any]:
        hit, route = facts.hit, facts.route
        inline = is_data_url(hit.url)
        hashes = [("SHA-256", hit.sha256), ("SHA-1", hit.sha1), ("MD5", hit.md5)]
        if hit.pdq:
            hashes.append(("PDQ", hit.pdq))
        if hit.phash:
            hashes.append(("pHash", hit.phash))
        return {
            "kind": facts.kind,
            "sequence": facts.sequence,
            "reference": reference_for(facts.notice_id),
            "notice_id": facts.notice_id,
            "hotline": self.identity,
            "recipient": recipient,
            "language": language,
            "image_url": "" if inline else hit.url,
            "page_url": hit.page,
            "removal_url": removal_url(hit),
            "is_data_url": inline,
            "data_media_type": data_url_media_type(hit.url) if inline else "",
            "media_type": hit.media_type,
            "file_type": "" if hit.media_type == "image" else hit.file_type,
            "member": hit.member,
            "frame_times": frame_times_text(hit),
            "frame_share": hit.frame_share,
            "host": route.host,
            "ip": route.ip or hit.ip or "",
            "asn": route.asn,
            "as_name": route.as_name or "",
            "provider": route.provider or "",
            "network": route.network or "",
            "cdn": route.cdn or ("unknown CDN" if route.method == "cdn" else ""),
            "registrar": route.registrar or "",
            "registrar_abuse": route.registrar_abuse or "",
            "upstream_abuse": route.upstream_abuse or "",
            "escalation_role": role,
            "first_seen": utc_iso(facts.first_seen, "first_seen"),
            "last_verified": utc_iso(facts.last_verified, "last_verified"),
            "sent_first": utc_iso(facts.sent_first, "sent_first") if facts.sent_first else "",
            "created": utc_iso(facts.created, "created"),
            "legal_basis": self.identity.legal_basis,
            "category": hit.category,
            "classification": xarf_classification(facts.classification),
            "list_name": hit.list,
            "entry": hit.entry,
            "algorithm": hit.algorithm,
            "exact": hit.algorithm.lower() in EXACT_ALGORITHMS,
            "distance": hit.distance,
            "corroborated_by": hit.corroborated_by,
            "hashes": hashes,
        }

    def _email(
        self,
        facts: NoticeFacts,
        recipient: Recipient,
        language: str,
        subject: str,
        text: str,
        payload: str,
        message_id: str,
    ) -> bytes:
        msg = EmailMessage(policy=SMTP)
        try:
            msg["From"] = Address(
                display_name=one_line(self.identity.name), addr_spec=self.identity.email
            )
            if recipient.address:
                msg["To"] = Address(
                    display_name=one_line(recipient.provider), addr_spec=recipient.address
                )
        except (ValueError, IndexError) as exc:
            raise NoticeError(f"invalid mail address in notice {facts.notice_id}: {exc}") from exc
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.fromisoformat(utc_iso(facts.created, "created")))
        msg["Message-ID"] = message_id
        if facts.kind != "notice":
            original = message_id_for(self.identity, facts.notice_id, "notice", 0)
            msg["In-Reply-To"] = original
            msg["References"] = original
        msg["Auto-Submitted"] = "auto-generated"
        msg["Content-Language"] = language
        msg["MIME-Version"] = "1.0"
        msg.add_header("Content-Type", "multipart/report", report_type="feedback-report")

        body = MIMEPart(policy=SMTP)
        body.set_content(text, subtype="plain", charset="utf-8", cte=_text_encoding(text))
        feedback = Message(policy=SMTP)
        feedback["Feedback-Type"] = "xarf"
        feedback["User-Agent"] = USER_AGENT
        feedback["Version"] = "1"
        machine = MIMEPart(policy=SMTP)
        machine.set_content(feedback, subtype="feedback-report", disposition="inline")
        attachment = MIMEPart(policy=SMTP)
        attachment.set_content(
            payload.encode("utf-8"),
            maintype="application",
            subtype="json",
            disposition="attachment",
            filename=XARF_FILENAME,
            params={"name": XARF_FILENAME},
        )
        msg.set_payload([body, machine, attachment])
        msg.set_boundary(_boundary(message_id, text))
        return msg.as_bytes(policy=_WIRE_POLICY)


# ---------------------------------------------------------------------- helpers


def _normal_language(value: str) -> str:
    """``de_AT`` → ``de-at``; ``""`` for anything that is not a language tag (which also
    keeps path separators out of template names)."""
    tag = value.strip().lower().replace("_", "-")
    return tag if _LANGUAGE.fullmatch(tag) else ""


def _render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        where = template.filename or template.name or "<template>"
        line = _template_line(exc, template.filename)
        at = f" line {line}" if line else ""
        message = getattr(exc, "message", None) or str(exc)
        raise TemplateError(f"notice template {where}{at}: {message}") from exc


def _template_line(exc: BaseException, filename: str | None) -> int | None:
    """The template line an error was raised at (Jinja maps its frames to the file)."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if filename and frame.f_code.co_filename == filename:
            line = lineno
    return line


def _tidy(text: str) -> str:
    """Strip trailing spaces, squeeze runs of blank lines, end with one newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    squeezed = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return squeezed + "\n"


def _text_encoding(text: str) -> str:
    """``7bit`` for short-lined ASCII (readable as is), else ``quoted-printable``: never
    ``8bit``, which a relay without 8BITMIME would have to refuse or mangle."""
    short = all(len(line) <= MAX_7BIT_LINE for line in text.split("\n"))
    return "7bit" if text.isascii() and short else "quoted-printable"


def _boundary(message_id: str, text: str) -> str:
    """A MIME boundary derived from the message id; it cannot occur in the base64 or
    quoted-printable parts (``=_`` never appears there) and is checked against the text."""
    seed = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    counter = 0
    while True:
        candidate = f"=_hl.{seed}.{counter}"
        if f"--{candidate}" not in text:
            return candidate
        counter += 1
