"""Rendering notices: the text an abuse desk reads, the X-ARF it parses, the e-mail around both."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

import pytest

from store.queue import HitRecord
from takedown.errors import NoticeError, TemplateError
from takedown.model import OutgoingNotice, Recipient, Route
from takedown.notice import NoticeFacts, NoticeRenderer, reference_for
from tests import builders
from tests.builders import TEST_IDENTITY, label_hex

Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


#: The optional address and phone are set: a notice has to print them.
IDENTITY = replace(
    TEST_IDENTITY, address="1 Example Street, 10000 Example City", phone="+49 30 000000"
)


def make_hit(**changes: Any) -> HitRecord:
    """A near (pdq) match on a list with its own category names: every hash and score a notice
    can print is present."""
    values: dict[str, Any] = {
        "pdq": label_hex("fixture-42-pdq", "sha256"),
        "pdq_quality": 92,
        "phash": "c3a1b2d4e5f60718",
        "list": "demo-list",
        "entry": "entry-0042",
        "category": "vendor-cat-2",
        "algorithm": "pdq",
        "distance": 9,
        "ip": "192.0.2.44",
    }
    return builders.make_hit(42, "img.host-a.example", **{**values, **changes})


def make_route(**changes: Any) -> Route:
    values: dict[str, Any] = {
        "host": "img.host-a.example",
        "ip": "192.0.2.44",
        "method": "directory-domain",
        "recipient": Recipient("Host A Hosting", "abuse@host-a.example", "smtp", "en"),
        "provider": "Host A Hosting",
        "asn": 64500,
        "registrar": "Example Registrar",
        "registrar_abuse": "abuse@registrar.example",
        "upstream_abuse": "abuse@upstream.example",
    }
    values.update(changes)
    return Route(**values)


def make_facts(
    hit: HitRecord | None = None, route: Route | None = None, **changes: Any
) -> NoticeFacts:
    hit = hit or make_hit()
    values: dict[str, Any] = {
        "notice_id": hit.incident,
        "hit": hit,
        "route": route or make_route(),
        "first_seen": "2025-03-01T09:00:00+01:00",
        "last_verified": "2025-03-02T10:30:00Z",
        "kind": "notice",
        "sequence": 0,
        "sent_first": None,
        "created": "2025-03-02T10:31:00Z",
        "classification": "B1",
    }
    values.update(changes)
    return NoticeFacts(**values)


def reminder(n: int, **changes: Any) -> NoticeFacts:
    return make_facts(
        kind="reminder",
        sequence=n,
        sent_first="2025-03-02T10:31:00Z",
        last_verified="2025-03-04T11:00:00Z",
        created="2025-03-04T11:01:00Z",
        **changes,
    )


def escalation(n: int = 1, **changes: Any) -> NoticeFacts:
    return make_facts(
        kind="escalation",
        sequence=n,
        sent_first="2025-03-02T10:31:00Z",
        last_verified="2025-03-09T11:00:00Z",
        created="2025-03-09T11:01:00Z",
        **changes,
    )


@pytest.fixture
def renderer() -> NoticeRenderer:
    return NoticeRenderer(IDENTITY)


def parse(notice: OutgoingNotice) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(notice.email)


# ----------------------------------------------------------------------------- the text


def test_text_has_every_element_a_notice_needs(renderer: NoticeRenderer) -> None:
    facts = make_facts()
    hit = facts.hit
    text = renderer.render(facts).text
    expected = [
        # who sends it (DSA Art. 16(2)(c))
        IDENTITY.name,
        IDENTITY.email,
        IDENTITY.website,
        IDENTITY.address,
        IDENTITY.phone,
        f"Country: {IDENTITY.country}",
        # where exactly (Art. 16(2)(b))
        hit.url,
        hit.page,
        "2025-03-01T08:00:00Z (UTC)",  # first seen, converted from +01:00
        "2025-03-02T10:30:00Z (UTC)",  # last verified
        "192.0.2.44",
        "AS64500",
        "Host A Hosting",
        # why (Art. 16(2)(a))
        IDENTITY.legal_basis,
        "Classification: vendor-cat-2 (X-ARF classification B1)",
        'Automated hash match against list "demo-list", entry entry-0042.',
        "Algorithm: pdq",
        "Distance:  9",
        hit.sha256,
        hit.sha1,
        hit.md5,
        cast(str, hit.pdq),
        cast(str, hit.phash),
        # what we ask
        "Remove the content",
        "Preserve the related evidence",
        "Do not view, download, copy or forward the material",
        # bona fide statement (Art. 16(2)(d))
        "accurate and complete to the best of our knowledge",
        # reference
        reference_for(facts.notice_id),
        facts.notice_id,
    ]
    missing = [item for item in expected if item not in text]
    assert missing == []
    assert "CONTENT DELIVERY NETWORK" not in text
    assert "REMINDER" not in text and "ESCALATION" not in text


def test_cdn_note_asks_to_forward_or_disclose_the_origin(renderer: NoticeRenderer) -> None:
    route = make_route(method="cdn", cdn="Example CDN")
    text = renderer.render(make_facts(route=route)).text
    assert "served through Example CDN" in text
    assert "forward this notice to the" in text and "disclose the origin host" in text


def test_unknown_values_are_said_to_be_unknown(renderer: NoticeRenderer) -> None:
    route = make_route(ip=None, asn=None, provider=None)
    text = renderer.render(make_facts(make_hit(ip=None), route)).text
    assert "IP address:    not resolved" in text
    assert "ASN:           unknown" in text
    assert "Provider:      unknown" in text


def test_data_url_image_is_described_and_reported_at_its_page(renderer: NoticeRenderer) -> None:
    digest = label_hex("fixture-inline", "sha256")
    # Even if a data: URL arrived with its payload, the notice must not repeat it.
    payload = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    hit = make_hit(url=f"data:image/png;sha256={digest};base64,{payload}", sha256=digest)
    notice = renderer.render(make_facts(hit))
    assert "embedded in the page as a data: URI (image/png)" in notice.text
    assert f"Remove from:   {hit.page}" in notice.text
    assert notice.xarf["url"] == hit.page
    assert payload.encode() not in notice.email
    assert b"data:image" not in notice.email


def test_subject_is_parseable_and_names_reference_and_host(renderer: NoticeRenderer) -> None:
    facts = make_facts()
    notice = renderer.render(facts)
    reference = reference_for(facts.notice_id)
    assert notice.subject == f"Takedown notice {reference}: illegal content at img.host-a.example"
    assert re.search(r"\bHL-[0-9a-f]{12}\b", notice.subject)


# ------------------------------------------------------------------ reminders, escalations


def test_reminder_keeps_reference_and_threads_to_the_notice(renderer: NoticeRenderer) -> None:
    first = renderer.render(make_facts())
    second = renderer.render(reminder(2))
    assert second.subject == f"Reminder 2: {first.subject}"
    assert "Reminder 2" in second.text
    assert "2025-03-02T10:31:00Z" in second.text  # the original notice's date
    assert reference_for(second.notice_id) in second.text
    assert second.recipient == first.recipient
    parsed = parse(second)
    assert parsed["In-Reply-To"] == first.message_id
    assert parsed["References"] == first.message_id
    assert parsed["Message-ID"] == second.message_id != first.message_id
    assert "In-Reply-To" not in parse(first)


def test_escalation_goes_upstream_and_says_the_host_did_not_act(
    renderer: NoticeRenderer,
) -> None:
    notice = renderer.render(escalation(1))
    assert notice.subject.startswith("Escalation 1: Takedown notice HL-")
    assert notice.recipient.address == "abuse@upstream.example"
    assert "upstream network provider of Host A Hosting" in notice.text
    assert "The hosting provider did not act" in notice.text
    assert "2025-03-02T10:31:00Z" in notice.text
    parsed = parse(notice)
    assert parsed["To"].addresses[0].addr_spec == "abuse@upstream.example"
    assert parsed["In-Reply-To"] == renderer.render(make_facts()).message_id


def test_escalation_without_upstream_goes_to_the_registrar(renderer: NoticeRenderer) -> None:
    notice = renderer.render(escalation(1, route=make_route(upstream_abuse=None)))
    assert notice.recipient.address == "abuse@registrar.example"
    assert notice.recipient.provider == "Example Registrar"
    assert "registrar of the domain img.host-a.example" in notice.text


def test_escalation_needs_somewhere_to_go(renderer: NoticeRenderer) -> None:
    route = make_route(upstream_abuse=None, registrar_abuse=None)
    with pytest.raises(NoticeError, match="neither an upstream nor a registrar"):
        renderer.render(escalation(1, route=route))


def test_unroutable_incident_is_not_rendered(renderer: NoticeRenderer) -> None:
    route = make_route(method="unroutable", recipient=None)
    with pytest.raises(NoticeError, match="has no recipient"):
        renderer.render(make_facts(route=route))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"notice_id": "XYZ"}, "32 lowercase hex"),
        ({"kind": "notice", "sequence": 1}, "sequence 0"),
        ({"kind": "reminder", "sequence": 0, "sent_first": "2025-03-02T10:31:00Z"}, ">= 1"),
        ({"kind": "reminder", "sequence": 1, "sent_first": None}, "needs sent_first"),
        ({"kind": "final-warning"}, "unknown notice kind"),
    ],
)
def test_inconsistent_facts_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(NoticeError, match=message):
        make_facts(**changes)


# ------------------------------------------------------------------------------ headers


def test_message_id_is_deterministic(renderer: NoticeRenderer) -> None:
    facts = make_facts()
    once, again = renderer.render(facts), renderer.render(facts)
    assert once.message_id == f"<{facts.notice_id}.notice.0@hotline.example>"
    assert once.message_id == again.message_id
    assert once.email == again.email  # the very same bytes: safe to re-send
    assert once.idempotency_key == f"{facts.notice_id}.notice.0"
    ids = {renderer.render(f).message_id for f in (facts, reminder(1), reminder(2), escalation())}
    assert len(ids) == 4


def test_message_id_uses_the_configured_mail_domain() -> None:
    identity = replace(TEST_IDENTITY, mail_domain="notices.hotline.example")
    notice = NoticeRenderer(identity).render(make_facts())
    assert notice.message_id.endswith("@notices.hotline.example>")


def test_headers(renderer: NoticeRenderer) -> None:
    notice = renderer.render(make_facts())
    parsed = parse(notice)
    assert parsed["From"].addresses[0].display_name == "Example Hotline"
    assert parsed["From"].addresses[0].addr_spec == "notices@hotline.example"
    assert parsed["To"].addresses[0].addr_spec == "abuse@host-a.example"
    assert parsed["Subject"] == notice.subject
    assert parsed["Date"].datetime.isoformat() == "2025-03-02T10:31:00+00:00"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Content-Language"] == "en"
    assert notice.sender == IDENTITY.email


def test_non_ascii_names_survive_the_headers() -> None:
    identity = replace(
        TEST_IDENTITY,
        name="Beschwerdestelle Müller",
        email="meldung@hotline.example",
        country="AT",
        legal_basis="§ 1 Beispielgesetz",
    )
    notice = NoticeRenderer(identity).render(make_facts())
    assert notice.email.isascii()
    assert parse(notice)["From"].addresses[0].display_name == "Beschwerdestelle Müller"


# ------------------------------------------------------------------------ MIME structure


def test_multipart_report_structure(renderer: NoticeRenderer) -> None:
    notice = renderer.render(make_facts())
    parsed = parse(notice)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "feedback-report"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/feedback-report",
        "application/json",
    ]
    text, feedback, report = cast(list[EmailMessage], parts)
    assert text.get_content_charset() == "utf-8"
    assert text.get_content().replace("\r\n", "\n") == notice.text

    fields = cast(EmailMessage, feedback.get_payload(0))
    assert fields["Feedback-Type"] == "xarf"
    assert fields["Version"] == "1"
    assert fields["User-Agent"].startswith("hotline-crawler/")

    assert report.get_filename() == "xarf.json"
    assert report.get_content_disposition() == "attachment"
    assert report["Content-Transfer-Encoding"] == "base64"
    assert json.loads(report.get_content()) == notice.xarf


def test_xarf_in_the_notice_is_valid_and_matches_the_facts(renderer: NoticeRenderer) -> None:
    facts = reminder(3)
    xarf = renderer.render(facts).xarf
    assert "confidence" not in xarf and "evidence" not in xarf
    assert Z_TIME.match(xarf["timestamp"]) and Z_TIME.match(xarf["verified_at"])
    assert xarf["timestamp"] == "2025-03-01T08:00:00Z"
    assert xarf["verified_at"] == "2025-03-04T11:00:00Z"
    assert xarf["url"] == facts.hit.url
    assert xarf["hash_values"]["sha256"] == facts.hit.sha256
    assert xarf["classification"] == "B1"  # the incident's, not the list's own category
    assert xarf["content_removed"] is False


def test_the_text_shows_the_list_category_next_to_the_classification(
    renderer: NoticeRenderer,
) -> None:
    text = renderer.render(make_facts()).text
    assert "vendor-cat-2 (X-ARF classification B1)" in text


@pytest.mark.parametrize("classification", ["", "A9", "vendor-cat-2"])
def test_no_message_without_a_valid_classification(
    renderer: NoticeRenderer, classification: str
) -> None:
    for facts in (
        make_facts(classification=classification),
        reminder(1, classification=classification),
    ):
        with pytest.raises(NoticeError, match="classification"):
            renderer.render(facts)


def test_render_refuses_an_invalid_report(renderer: NoticeRenderer) -> None:
    with pytest.raises(NoticeError, match=r"invalid at \$\.hash_values\.sha256"):
        renderer.render(make_facts(make_hit(sha256="not-hex")))


def test_german_body_with_a_german_template(renderer: NoticeRenderer) -> None:
    route = make_route(
        recipient=Recipient("Host A Hosting", "abuse@host-a.example", "smtp", "de-AT")
    )
    notice = renderer.render(reminder(1, route=route))
    assert notice.subject.startswith("Erinnerung 1: Entfernungsaufforderung HL-")
    assert "Erinnerung 1" in notice.text
    assert "in gutem Glauben" in notice.text
    assert "Sichern Sie die zugehörigen Beweise" in notice.text
    assert 'Hash-Abgleich mit der Liste "demo-list", Eintrag entry-0042' in notice.text
    parsed = parse(notice)
    assert parsed["Content-Language"] == "de"
    text_part = cast(EmailMessage, next(iter(parsed.iter_parts())))
    assert text_part.get_content().replace("\r\n", "\n") == notice.text


# ---------------------------------------------------------------------------- templates


def test_missing_language_falls_back_to_the_default(renderer: NoticeRenderer) -> None:
    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "fr"))
    notice = renderer.render(make_facts(route=route))
    assert notice.subject.startswith("Takedown notice")
    assert parse(notice)["Content-Language"] == "en"


def test_default_language_can_be_german() -> None:
    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "fr"))
    notice = NoticeRenderer(IDENTITY, default_language="de").render(make_facts(route=route))
    assert "Aktenzeichen" in notice.text


def test_hotline_directory_overrides_and_adds_languages(tmp_path: Path) -> None:
    (tmp_path / "notice.en.txt.j2").write_text(
        "Own wording {{ reference }} for {{ image_url }}\n", encoding="utf-8"
    )
    (tmp_path / "notice.fr.txt.j2").write_text("Avis {{ reference }}\n", encoding="utf-8")
    (tmp_path / "subject.fr.txt.j2").write_text("Avis {{ reference }}\n", encoding="utf-8")
    renderer = NoticeRenderer(IDENTITY, templates_dir=tmp_path)
    facts = make_facts()
    reference = reference_for(facts.notice_id)

    english = renderer.render(facts)
    assert english.text == f"Own wording {reference} for {facts.hit.url}\n"
    assert english.subject.startswith("Takedown notice")  # packaged subject still used

    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "fr"))
    french = renderer.render(make_facts(route=route))
    assert (french.text, french.subject) == (f"Avis {reference}\n", f"Avis {reference}")

    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "de"))
    assert "Aktenzeichen" in renderer.render(make_facts(route=route)).text  # packaged German


def test_broken_template_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "notice.en.txt.j2").write_text("ok\n{% if %}\n", encoding="utf-8")
    renderer = NoticeRenderer(IDENTITY, templates_dir=tmp_path)
    with pytest.raises(TemplateError, match=r"notice\.en\.txt\.j2 line 2"):
        renderer.render(make_facts())


def test_undefined_variable_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "notice.en.txt.j2").write_text("ok\n{{ no_such_value }}\n", encoding="utf-8")
    renderer = NoticeRenderer(IDENTITY, templates_dir=tmp_path)
    with pytest.raises(TemplateError, match=r"notice\.en\.txt\.j2 line 2: .*no_such_value"):
        renderer.render(make_facts())


def test_a_default_language_without_templates_is_refused_at_once(tmp_path: Path) -> None:
    # It was accepted, and every message of a provider without a language of its own failed.
    with pytest.raises(TemplateError, match=r"notice language 'xx': no template notice\.xx"):
        NoticeRenderer(IDENTITY, default_language="xx")
    (tmp_path / "notice.xx.txt.j2").write_text("Notice {{ reference }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"no template subject\.xx\.txt\.j2 in "):
        NoticeRenderer(IDENTITY, templates_dir=tmp_path, default_language="xx")
    (tmp_path / "subject.xx.txt.j2").write_text("Notice {{ reference }}\n", encoding="utf-8")
    renderer = NoticeRenderer(IDENTITY, templates_dir=tmp_path, default_language="xx")
    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "yy"))
    assert renderer.render(make_facts(route=route)).text.startswith("Notice HL-")


def test_templates_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        NoticeRenderer(IDENTITY, templates_dir=tmp_path / "missing")


def test_language_tags_cannot_reach_other_files(renderer: NoticeRenderer) -> None:
    route = make_route(
        recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "../../notice.en")
    )
    notice = renderer.render(make_facts(route=route))
    assert parse(notice)["Content-Language"] == "en"


def _file_hit(**changes: Any) -> HitRecord:
    fields = {
        "url": "http://files.host-a.example/v/clip.mp4",
        "media_type": "video",
        "file_type": "mp4",
    }
    base = {"pdq": None, "phash": None, "pdq_quality": None, "algorithm": "sha256", "distance": 0}
    return make_hit(**(base | fields | changes))


@pytest.mark.parametrize(
    ("media_type", "file_type", "sentence", "kind", "xarf"),
    [
        ("video", "mp4", "identified a video file at", "video file (mp4)", "video"),
        ("audio", "mp3", "identified an audio file at", "audio file (mp3)", "audio"),
        ("archive", "zip", "identified an archive at", "archive (zip)", "mixed"),
        ("file", "", "identified a file at", "file", "mixed"),
    ],
)
def test_a_file_is_named_as_what_it_is_in_the_text_and_the_report(
    renderer: NoticeRenderer,
    media_type: str,
    file_type: str,
    sentence: str,
    kind: str,
    xarf: str,
) -> None:
    hit = _file_hit(media_type=media_type, file_type=file_type)
    notice = renderer.render(make_facts(hit))
    assert sentence in notice.text
    assert f"File URL:      {hit.url}" in notice.text
    assert (f"File type:     {kind}" in notice.text) == (kind != "file")
    assert (
        f"Hashes of the {kind.split(' (', maxsplit=1)[0]} found at the location above:"
        in notice.text
    )
    assert "Image URL" not in notice.text and "an image" not in notice.text
    assert (notice.xarf["media_type"], notice.xarf["url"]) == (xarf, hit.url)
    assert f"{kind} at the reported URL" in notice.xarf["description"]


def test_a_video_matched_by_its_frames_says_when_they_are_shown(renderer: NoticeRenderer) -> None:
    hit = _file_hit(algorithm="pdq", distance=12, frame_times="3,4,65,3700.5", frames_matched=31)
    notice = renderer.render(make_facts(hit))
    assert "Frames:        matching at 0:03, 0:04, 1:05, 1:01:40, ..." in notice.text
    assert "of the frames match a known video" not in notice.text
    assert "(matching frames at 0:03, 0:04, 1:05, 1:01:40, ...)" in notice.xarf["description"]
    whole = _file_hit(algorithm="pdq", frame_times="0,1,2", frames_matched=3, frame_share="100")
    text = renderer.render(make_facts(whole)).text
    assert "matching at 0:00, 0:01, 0:02 (100 % of the frames match a known video)" in text
    route = make_route(recipient=Recipient("Host A Hosting", "abuse@host-a.example", "smtp", "de"))
    german = renderer.render(make_facts(whole, route)).text
    assert "Bilder:            Treffer bei 0:00, 0:01, 0:02 (100 % der Bilder" in german
    plain = renderer.render(make_facts(_file_hit())).text
    assert "Frames:" not in plain


def test_an_image_hit_from_before_media_types_reads_as_an_image(
    renderer: NoticeRenderer,
) -> None:
    fields = make_hit().to_fields()
    del fields["media_type"], fields["file_type"]
    hit = HitRecord.from_fields(fields)
    assert (hit.media_type, hit.file_type) == ("image", "")
    notice = renderer.render(make_facts(hit))
    assert "identified an image at" in notice.text and notice.xarf["media_type"] == "image"


def test_german_text_names_a_file_in_german(renderer: NoticeRenderer) -> None:
    route = make_route(recipient=Recipient("Host A Hosting", "abuse@host-a.example", "smtp", "de"))
    text = renderer.render(make_facts(_file_hit(), route)).text
    assert "eine Videodatei festgestellt, die nach" in text
    assert "Datei-URL:         http://files.host-a.example/v/clip.mp4" in text
    assert "Dateityp:          Videodatei (mp4)" in text
    assert "Hashwerte der an der oben genannten Adresse gefundenen Videodatei:" in text
    archive = renderer.render(make_facts(_file_hit(media_type="archive", file_type="7z"), route))
    assert "ein Archiv festgestellt, das nach" in archive.text
    assert "gefundenen Archivs:" in archive.text


def test_a_member_of_an_archive_asks_for_the_whole_archive(renderer: NoticeRenderer) -> None:
    hit = _file_hit(
        url="http://files.host-a.example/get/album.zip",
        media_type="archive_member",
        file_type="png",
        member="album/a.png",
    )
    notice = renderer.render(make_facts(hit))
    assert "identified a file inside an archive at" in notice.text
    assert f"Archive URL:   {hit.url} (remove the whole archive)" in notice.text
    assert "Member:        album/a.png (png)" in notice.text
    assert (notice.xarf["media_type"], notice.xarf["url"]) == ("mixed", hit.url)
    assert "file 'album/a.png' (png) in the archive" in notice.xarf["description"]


def test_an_unknown_media_type_is_named_a_file_never_an_image(renderer: NoticeRenderer) -> None:
    notice = renderer.render(make_facts(_file_hit(media_type="hologram", file_type="")))
    assert "identified a file at" in notice.text and "File URL:" in notice.text
    assert (
        "image" not in notice.text.split("HOW THE CONTENT")[0].lower().replace("images", "")
        or "an image" not in notice.text
    )
    assert notice.xarf["media_type"] == "mixed"


def test_a_corroborated_match_gives_both_distances_in_every_language(
    renderer: NoticeRenderer,
) -> None:
    hit = make_hit(algorithm="pdq", distance=44, corroborated_by=9)
    facts = make_facts(hit=hit)
    notice = renderer.render(facts)
    assert "Distance:  44 (0 = identical)" in notice.text
    assert "Corroborated by pHash, distance 9" in notice.text
    assert "(pdq distance 44, corroborated by phash distance 9)" in notice.xarf["description"]
    route = make_route(recipient=Recipient("Host A", "abuse@host-a.example", "smtp", "de"))
    german = renderer.render(make_facts(hit=hit, route=route)).text
    assert "Bestätigt durch pHash, Distanz 9" in german
    plain = renderer.render(make_facts(hit=make_hit(algorithm="pdq", distance=12))).text
    assert "orroborated" not in plain
