from __future__ import annotations

import itertools

from matchers.algorithms import hamming
from matchers.digest import digest_bytes
from tests.matchers.imagegen import make_bytes, make_rgb


def test_same_seed_same_image() -> None:
    assert make_bytes(3) == make_bytes(3)


def test_different_seeds_are_perceptually_far_apart() -> None:
    digests = [digest_bytes(make_bytes(seed)) for seed in range(1, 9)]
    for a, b in itertools.combinations(digests, 2):
        assert a.pdq is not None and b.pdq is not None
        assert a.phash is not None and b.phash is not None
        assert hamming(a.pdq, b.pdq) > 64
        assert hamming(a.phash, b.phash) > 12


def test_generated_images_are_textured_enough_for_pdq() -> None:
    for seed in range(1, 9):
        digest = digest_bytes(make_bytes(seed))
        assert digest.pdq_quality is not None and digest.pdq_quality >= 80
        assert digest.phash not in {"0000000000000000", "8000000000000000"}


def test_requested_size() -> None:
    assert make_rgb(1, 123, 45).size == (123, 45)
