"""Allow-lists and the flood guard, in a real crawl through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.imagegen import cropped, encode, textured_image
from hotline.loopback import html_page, image_response, serve
from matchers.digest import digest_bytes
from tests.helpers import HOST_A, ok_json, run_cli


def test_flood_guard_demotes_an_entry_matching_too_many_images(
    env: dict[str, str], tmp_path: Path
) -> None:
    body = encode(textured_image(4401), "JPEG", quality=90)
    known = tmp_path / "known.csv"
    known.write_text(f"algorithm,hash,id\nsha256,{digest_bytes(body).sha256},e1\n")
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0
    urls = [f"/copy{i}.jpg" for i in range(5)]
    pages = {"/": html_page("".join(f"<img src='{u}'>" for u in urls))}
    pages.update({u: image_response(body, "image/jpeg") for u in urls})
    with serve(pages, host=HOST_A) as site:
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-private-networks",
                "--json",
                "--set",
                "MATCHER_FLOOD_LIMIT=2",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert (summary["confirmed_new"], summary["review_new"]) == (2, 3)
    assert "flood guard: k/e1 confirmed more than 2 distinct images" in crawl.stderr
    review = json.loads(run_cli(["review", "list", "--json"], env).stdout)
    assert {r["entry"] for r in review} == {"e1"} and len(review) == 3


def test_an_allow_list_entry_silences_a_match(env: dict[str, str], tmp_path: Path) -> None:
    flagged = encode(textured_image(4402), "JPEG", quality=90)
    false_positive = encode(textured_image(4403), "PNG")
    fp = digest_bytes(false_positive)
    known = tmp_path / "known.csv"
    # The known list holds both; the second is a known false positive.
    known.write_text(
        f"algorithm,hash,id\nsha256,{digest_bytes(flagged).sha256},e1\nsha256,{fp.sha256},e2\n"
    )
    allow = tmp_path / "allow.csv"
    allow.write_text(f"algorithm,hash,id\npdq,{fp.pdq},fp1\n")
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0
    assert (
        run_cli(["hashes", "import", str(allow), "--list", "fps", "--allow"], env).returncode == 0
    )
    pages = {
        "/": html_page("<img src='/a.jpg'><img src='/b.png'>"),
        "/a.jpg": image_response(flagged, "image/jpeg"),
        "/b.png": image_response(false_positive, "image/png"),
    }
    with serve(pages, host=HOST_A) as site:
        crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
    assert crawl.returncode == 0, crawl.stderr
    hits = json.loads(run_cli(["hits", "list", "--json"], env).stdout)
    assert [(h["url"], h["entry"]) for h in hits] == [(site.url("/a.jpg"), "e1")]
    assert json.loads(run_cli(["review", "list", "--json"], env).stdout) == []


def test_a_cropped_copy_is_confirmed_by_corroboration_on_a_list_built_from_images(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A 5 % crop of a reference: PDQ 38 and pHash 8 from it, each only in its review band,
    together a confirmed hit with both distances; without corroboration a review item."""
    reference = textured_image(4831)
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "ref.png").write_bytes(encode(reference, "PNG"))
    copy = encode(cropped(reference, 0.05), "JPEG", quality=90)
    pages = {
        "/": html_page("<img src='/copy.jpg'><img src='/other.jpg'>"),
        "/copy.jpg": image_response(copy, "image/jpeg"),
        "/other.jpg": image_response(encode(textured_image(4832), "JPEG"), "image/jpeg"),
    }
    found: dict[str, tuple[list[object], list[object]]] = {}
    with serve(pages, host=HOST_A) as site:
        for rule, name in (("--corroborate", "on"), ("--no-corroborate", "off")):
            # Without the alternate framings, which would match the crop on their own.
            build = run_cli(
                ["hashes", "build", str(refs), "--list", name, rule, "--no-alternates"], env
            )
            assert build.returncode == 0, build.stderr
            crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
            assert crawl.returncode == 0, crawl.stderr
            hits = [h for h in ok_json(["hits", "list"], env) if h["list"] == name]
            reviews = [r for r in ok_json(["review", "list"], env) if r["list"] == name]
            found[name] = (
                [(h["url"], h["algorithm"], h["distance"], h["corroborated_by"]) for h in hits],
                [(r["url"], r["algorithm"], r["distance"]) for r in reviews],
            )
            if hits:  # the table shows both distances
                assert "pdq 38 + phash 8" in run_cli(["hits", "list"], env).stdout
            assert run_cli(["hashes", "remove", name], env).returncode == 0
        copy_url = site.url("/copy.jpg")
    assert found["on"] == ([(copy_url, "pdq", 38, 8)], [])
    assert found["off"] == ([], [(copy_url, "pdq", 38)])
