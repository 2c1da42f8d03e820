"""Alternate framings stored with a reference (matchers.alternates, build_from_directory):
a cropped copy meets the hash of its own framing, counted as the entry; nothing unrelated does."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from hotline.imagegen import cropped, encode, textured_image
from matchers.alternates import DEFAULT_FRAMINGS, FRAMINGS, alternate_hashes
from matchers.digest import digest_bytes
from matchers.index import CONFIRMED, Matcher
from matchers.lists import HashList, build_from_directory

REFERENCE_SEED = 4850


def _list(directory: Path, framings: tuple[str, ...]) -> HashList:
    entries, skipped = build_from_directory(directory, framings=framings)
    assert skipped == []
    return HashList("refs", entries)


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    directory = tmp_path / "refs"
    directory.mkdir()
    (directory / "ref.png").write_bytes(encode(textured_image(REFERENCE_SEED), "PNG"))
    return directory


def _verdicts(hash_list: HashList, picture: Image.Image) -> list[tuple[str, str]]:
    digest = digest_bytes(encode(picture, "JPEG", quality=90))
    return [(m.entry, m.verdict) for m in Matcher([hash_list]).match(digest)]


def test_a_copy_cropped_by_ten_percent_is_confirmed_only_with_alternates(refs: Path) -> None:
    plain, framed = _list(refs, ()), _list(refs, DEFAULT_FRAMINGS)
    entry = plain.entries[0].id
    copy = cropped(textured_image(REFERENCE_SEED), 0.10)
    assert (entry, CONFIRMED) not in _verdicts(plain, copy)
    # One match, the entry's, however many of its framings are close.
    assert _verdicts(framed, copy) == [(entry, CONFIRMED)]
    # The framings are rows of the same entry: two hashes more per framing at most.
    assert {e.id for e in framed.entries} == {entry}
    extra = len(framed.entries) - len(plain.entries)
    assert 0 < extra <= 2 * len(DEFAULT_FRAMINGS)


def test_no_alternate_brings_an_unrelated_image_within_reach(refs: Path) -> None:
    framed = _list(refs, tuple(FRAMINGS))
    for seed in range(REFERENCE_SEED + 1, REFERENCE_SEED + 6):
        assert _verdicts(framed, textured_image(seed)) == []


def test_alternate_hashes_are_each_framing_s_once_and_checked_by_name() -> None:
    data = encode(textured_image(REFERENCE_SEED), "PNG")
    own = digest_bytes(data)
    hashes = alternate_hashes(data, ("centre-90", "centre-90", "centre-80"))
    assert hashes == alternate_hashes(data, ("centre-90", "centre-80"))
    assert [a for a, _ in hashes] == ["pdq", "phash", "pdq", "phash"]
    assert ("pdq", own.pdq) not in hashes and ("phash", own.phash) not in hashes
    # A flat picture has no PDQ of quality: its framings give pHashes only.
    flat = encode(Image.new("RGB", (320, 240), (90, 90, 90)), "PNG")
    assert {a for a, _ in alternate_hashes(flat)} == {"phash"}
    with pytest.raises(KeyError):
        alternate_hashes(data, ("centre-91",))
