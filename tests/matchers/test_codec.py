"""The columnar HashList and its binary form: round trips, and corruption refused clearly."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matchers import codec
from matchers.codec import StringTable
from matchers.errors import HashListError
from matchers.lists import (
    DEFAULT_ID,
    MAX_ID_LENGTH,
    HashColumn,
    HashList,
    ListEntry,
    Thresholds,
)

MAGIC = b"HLHL2\n"


def random_hash(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def mixed_list() -> HashList:
    rng = random.Random(42)
    entries = []
    for number in range(40):
        item = f"item-{number % 13}" if number % 5 else ""
        category = ["A1", "B2", "Kategorie Ü", ""][number % 4]
        for algorithm, bits in (("md5", 128), ("sha256", 256), ("pdq", 256), ("phash", 64)):
            hash_hex = random_hash(rng, bits)
            entry_id = item or f"{algorithm}:{hash_hex}"
            entries.append(ListEntry(algorithm, hash_hex, entry_id, category))
    return HashList(
        "mixed",
        entries,
        Thresholds(pdq_confirm=25, pdq_review=45),
        version=3,
        created="2026-01-02T03:04:05+00:00",
        kind="allow",
    )


def test_round_trip_keeps_every_entry() -> None:
    original = mixed_list()
    loaded = HashList.from_bytes(original.to_bytes())
    assert loaded == original
    assert list(loaded.entries) == list(original.entries)
    assert (loaded.kind, loaded.version, loaded.created) == ("allow", 3, original.created)
    assert loaded.thresholds == Thresholds(pdq_confirm=25, pdq_review=45)
    assert loaded.counts() == {"md5": 40, "sha1": 0, "sha256": 40, "pdq": 40, "phash": 40}
    # Default ids (algorithm:hash) are not stored as strings.
    assert len(original.id_table) == 13  # item-0 .. item-12
    assert int((original.columns["md5"].ids == DEFAULT_ID).sum()) == 8


def test_entries_view_is_grouped_by_algorithm_and_compares_to_lists() -> None:
    rng = random.Random(1)
    pdq, md5 = random_hash(rng, 256), random_hash(rng, 128)
    given = [ListEntry("pdq", pdq, "a"), ListEntry("md5", md5, "a", "X")]
    hash_list = HashList("l", given)
    assert len(hash_list.entries) == 2
    assert hash_list.entries == [given[1], given[0]]
    assert hash_list.entries[-1] == given[0]
    assert hash_list.entries[:1] == [given[1]]
    with pytest.raises(IndexError):
        hash_list.entries[2]


def test_round_trip_of_an_empty_list() -> None:
    empty = HashList("e", [])
    assert HashList.from_bytes(empty.to_bytes()) == empty
    assert len(HashList.from_bytes(empty.to_bytes()).entries) == 0


def test_loaded_columns_are_views_into_the_blob() -> None:
    """Loading copies no hash: the arrays point into the serialized bytes."""
    blob = mixed_list().to_bytes()
    loaded = HashList.from_bytes(blob)
    for column in loaded.columns.values():
        assert not column.hashes.flags.owndata
        assert not column.hashes.flags.writeable
        assert column.words().base is not None  # uint64 view, not a copy


def test_entries_with_bad_hashes_refused() -> None:
    with pytest.raises(HashListError) as info:
        HashList("l", [ListEntry("pdq", "AB" * 32, "x")])
    assert info.value.field == "hash"
    with pytest.raises(HashListError):
        HashList("l", [ListEntry("md5", "zz" * 16, "x")])
    with pytest.raises(HashListError) as info:
        HashList("l", [ListEntry("crc32", "00", "x")])
    assert info.value.field == "algorithm"


def test_truncation_and_bit_flips_rejected() -> None:
    blob = mixed_list().to_bytes()
    for cut in (3, len(MAGIC) + 2, len(MAGIC) + 40, len(blob) // 2, len(blob) - 1):
        with pytest.raises(HashListError):
            HashList.from_bytes(blob[:cut])
    with pytest.raises(HashListError, match="checksum"):
        corrupted = bytearray(blob)
        corrupted[-100] ^= 0x40
        HashList.from_bytes(bytes(corrupted))
    with pytest.raises(HashListError, match="not a serialized hash list"):
        HashList.from_bytes(b"HLHL9\n" + blob[len(MAGIC) :])


def forged(**replace: np.ndarray) -> bytes:
    """A blob with a valid checksum whose arrays were replaced: only validation stops it."""
    hash_list = HashList("forged", [ListEntry("md5", "00" * 16, "ok", "A")])
    column = hash_list.columns["md5"]
    arrays = {
        "ids.blob": hash_list.id_table.blob,
        "ids.offsets": hash_list.id_table.offsets,
        "categories.blob": hash_list.category_table.blob,
        "categories.offsets": hash_list.category_table.offsets,
        "md5.hashes": column.hashes,
        "md5.ids": column.ids,
        "md5.categories": column.categories,
    }
    arrays.update(replace)
    meta = {
        "name": "forged",
        "version": 1,
        "created": "",
        "kind": "known",
        "thresholds": Thresholds().as_dict(),
        "algorithms": ["md5"],
    }
    return codec.encode(MAGIC, meta, arrays)


def as_table(*strings: str) -> dict[str, np.ndarray]:
    table = StringTable.from_strings(strings)
    return {"ids.blob": table.blob, "ids.offsets": table.offsets}


@pytest.mark.parametrize(
    ("replace", "field", "reason"),
    [
        ({"md5.ids": np.array([5], dtype=np.uint8)}, "id", "out of range"),
        ({"md5.categories": np.array([9], dtype=np.uint8)}, "category", "out of range"),
        ({"md5.ids": np.array([1, 1], dtype=np.uint8)}, "id", "one per hash"),
        ({"md5.hashes": np.zeros((1, 15), dtype=np.uint8)}, "hash", "shape"),
        (as_table("bad\tid"), "id", "control characters"),
        (as_table("bad\x85id"), "id", "control characters"),
        (as_table(" padded"), "id", "whitespace"),
        (as_table("x" * (MAX_ID_LENGTH + 1)), "id", "longer than"),
        (as_table("é" * (MAX_ID_LENGTH + 1)), "id", "longer than"),
        (as_table(""), "id", "empty"),
        (
            {
                "ids.blob": np.frombuffer(b"\xff\xfe", dtype=np.uint8),
                "ids.offsets": np.array([0, 2]),
            },
            "id",
            "UTF-8",
        ),
        (
            {"ids.blob": np.frombuffer(b"ok", dtype=np.uint8), "ids.offsets": np.array([0, 5])},
            "id",
            "end",
        ),
        (
            {
                "ids.blob": np.frombuffer(b"okay", dtype=np.uint8),
                "ids.offsets": np.array([0, 3, 2, 4]),
            },
            "id",
            "negative",
        ),
    ],
)
def test_forged_contents_rejected(replace: dict[str, np.ndarray], field: str, reason: str) -> None:
    assert HashList.from_bytes(forged()).entries == [ListEntry("md5", "00" * 16, "ok", "A")]
    with pytest.raises(HashListError) as info:
        HashList.from_bytes(forged(**replace))
    assert info.value.field == field
    assert reason in info.value.reason


def test_forged_header_rejected() -> None:
    meta = {"name": "x", "version": 1, "created": "", "kind": "known"}
    with pytest.raises(HashListError, match="malformed serialized list"):
        HashList.from_bytes(codec.encode(MAGIC, meta, {}))
    bad_kind = {**meta, "kind": "other", "thresholds": {}, "algorithms": []}
    blob = codec.encode(MAGIC, bad_kind, as_table() | {"categories.blob": np.zeros(0, np.uint8)})
    with pytest.raises(HashListError):
        HashList.from_bytes(blob)
    with pytest.raises(ValueError, match="not allowed"):
        codec.encode(MAGIC, meta, {"floats": np.zeros(2)})


def test_codec_checks_array_descriptions() -> None:
    blob = codec.encode(MAGIC, {"k": 1}, {"a": np.arange(10, dtype=np.uint32)})
    meta, arrays = codec.decode(MAGIC, blob, source="s")
    assert meta == {"k": 1}
    assert arrays["a"].tolist() == list(range(10))
    # Lie about the shape in the header (and keep the header's length): refused.
    lying = blob.replace(b'"shape":[10]', b'"shape":[99]')
    with pytest.raises(HashListError, match="out of bounds"):
        codec.decode(MAGIC, lying, source="s")
    lying = blob.replace(b'"dtype":"<u4"', b'"dtype":"<f4"')
    with pytest.raises(HashListError, match="unexpected dtype"):
        codec.decode(MAGIC, lying, source="s")


def test_from_columns_validates_and_keeps_arrays() -> None:
    hashes = np.arange(32, dtype=np.uint8).reshape(2, 16)
    ids = np.array([0, 1], dtype=np.uint32)
    categories = np.array([0, 0], dtype=np.uint8)
    hash_list = HashList.from_columns(
        "cols",
        {"md5": HashColumn(hashes, ids, categories)},
        StringTable.from_strings(["item"]),
        StringTable.from_strings([""]),
    )
    assert hash_list.columns["md5"].hashes is hashes
    assert [e.id for e in hash_list.entries] == [f"md5:{hashes[0].tobytes().hex()}", "item"]
    with pytest.raises(HashListError) as info:
        HashList.from_columns(
            "cols",
            {"sha1": HashColumn(hashes, ids, categories)},
            StringTable.from_strings(["item"]),
            StringTable.from_strings([""]),
        )
    assert info.value.field == "hash"
