from __future__ import annotations

import pickle

import pytest

from matchers.algorithms import ALGORITHMS, BITS, HEX_LENGTHS, hamming, normalize_hash
from matchers.errors import HashListError, InvalidHash, MatcherError


def test_constants_consistent() -> None:
    assert set(HEX_LENGTHS) == set(ALGORITHMS)
    assert BITS == {"md5": 128, "sha1": 160, "sha256": 256, "pdq": 256, "phash": 64}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_normalize_accepts_lowercase_and_strips_whitespace(algorithm: str) -> None:
    value = "0123456789abcdef" * (HEX_LENGTHS[algorithm] // 16) + "abcd" * (
        HEX_LENGTHS[algorithm] % 16 // 4
    )
    assert len(value) == HEX_LENGTHS[algorithm]
    assert normalize_hash(algorithm, f"  {value}\t\n") == value


@pytest.mark.parametrize(
    ("algorithm", "text", "message"),
    [
        ("crc32", "00000000", "unknown algorithm 'crc32'"),
        ("md5", "", "empty hash"),
        ("md5", "   ", "empty hash"),
        ("md5", "D41D8CD98F00B204E9800998ECF8427E", "must be lowercase hex"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427g", "not hex"),
        ("md5", "d41d8cd9 8f00b204e9800998ecf8427e", "not hex"),
        ("sha256", "a" * 63, "expected 64 lowercase hex characters for sha256, got 63"),
        ("phash", "a" * 17, "expected 16 lowercase hex characters for phash, got 17"),
    ],
)
def test_normalize_rejects(algorithm: str, text: str, message: str) -> None:
    with pytest.raises(InvalidHash, match=message):
        normalize_hash(algorithm, text)


def test_normalize_lenient_lowercases() -> None:
    upper = "D41D8CD98F00B204E9800998ECF8427E"
    assert normalize_hash("md5", upper, lenient=True) == upper.lower()


def test_hamming() -> None:
    assert hamming("0000", "0000") == 0
    assert hamming("ffff", "0000") == 16
    assert hamming("8000000000000000", "0000000000000001") == 2
    with pytest.raises(InvalidHash):
        hamming("00", "0000")
    with pytest.raises(InvalidHash):
        hamming("zz", "00")


def test_hash_list_error_format_and_pickle() -> None:
    full = HashListError("known.csv", 7, "hash", "bad")
    assert str(full) == "known.csv:7: field 'hash': bad"
    assert str(HashListError("known.csv", None, None, "empty file")) == "known.csv: empty file"
    assert str(HashListError("known.csv", 3, None, "x")) == "known.csv:3: x"
    assert str(HashListError("known.csv", None, "id", "x")) == "known.csv: field 'id': x"
    assert isinstance(full, MatcherError)
    copy = pickle.loads(pickle.dumps(full))
    assert (copy.path, copy.line, copy.field, copy.reason) == ("known.csv", 7, "hash", "bad")
