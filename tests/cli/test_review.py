"""Per-list thresholds decide confirmed against review, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.imagegen import cropped, encode, textured_image, watermarked
from hotline.loopback import html_page, image_response, serve
from matchers.algorithms import hamming
from matchers.digest import digest_bytes
from tests.helpers import HOST_A, run_cli


def test_a_near_copy_goes_to_review_under_strict_thresholds(
    env: dict[str, str], tmp_path: Path
) -> None:
    original = textured_image(3301)
    known = encode(original, "JPEG", quality=92)
    copy = encode(cropped(watermarked(original, "sample"), 0.02), "JPEG", quality=80)
    k, c = digest_bytes(known), digest_bytes(copy)
    assert k.pdq and c.pdq and k.phash and c.phash
    pdq_distance, phash_distance = hamming(k.pdq, c.pdq), hamming(k.phash, c.phash)
    # Strict list: the copy falls between confirm and review for both algorithms.
    pdq_confirm, phash_confirm = pdq_distance - 1, phash_distance - 1
    assert pdq_confirm >= 0 and phash_confirm >= 0, (pdq_distance, phash_distance)

    known_csv = tmp_path / "known.csv"
    known_csv.write_text(
        "algorithm,hash,id,category\n"
        f"sha256,{k.sha256},e1,test\npdq,{k.pdq},e1,test\nphash,{k.phash},e1,test\n"
    )
    imported = run_cli(
        [
            "hashes",
            "import",
            str(known_csv),
            "--list",
            "strict",
            "--pdq-confirm",
            str(pdq_confirm),
            "--phash-confirm",
            str(phash_confirm),
        ],
        env,
    )
    assert imported.returncode == 0, imported.stderr
    pages = {
        "/": html_page("<img src='/original.jpg'><img src='/copy.jpg'>"),
        "/original.jpg": image_response(known, "image/jpeg"),
        "/copy.jpg": image_response(copy, "image/jpeg"),
    }
    with serve(pages, host=HOST_A) as site:
        crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert (summary["confirmed_new"], summary["review_new"]) == (1, 1)
    hits = json.loads(run_cli(["hits", "list", "--json"], env).stdout)
    review = json.loads(run_cli(["review", "list", "--json"], env).stdout)
    assert [(h["url"], h["algorithm"], h["verdict"]) for h in hits] == [
        (site.url("/original.jpg"), "sha256", "confirmed")
    ]
    (item,) = review
    assert item["url"] == site.url("/copy.jpg") and item["verdict"] == "review"
    assert (item["algorithm"], item["distance"]) in {
        ("pdq", pdq_distance),
        ("phash", phash_distance),
    }
