"""Recognise images: exact and perceptual hashes of bytes in memory, hash lists, indexes, verdicts.

This package imports nothing from the rest of hotline-crawler. Modules:

- :mod:`matchers.algorithms` - algorithm names, hex form, thresholds and limits as constants
- :mod:`matchers.errors` - the exception tree
- :mod:`matchers.sniff` - image format by magic bytes
- :mod:`matchers.digest` - :func:`digest_bytes`: MD5/SHA-1/SHA-256 + PDQ + pHash, safe decoding
- :mod:`matchers.lists` - hash-list CSV format, :class:`HashList`, building from a directory
- :mod:`matchers.formats` - plain and vendor-CSV hash lists, besides the native CSV
- :mod:`matchers.codec` - the checked binary container a serialized list is stored in
- :mod:`matchers.imageops` - reduction, border trimming and dihedral variants for hashing
- :mod:`matchers.pdq` - PDQ in numpy (Meta's algorithm, pinned to ``pdqhash``)
- :mod:`matchers.index` - exact and Hamming indexes, :class:`Matcher`
- :mod:`matchers.mih` - multi-index hashing: exact Hamming range search over millions
- :mod:`matchers.guards` - per-crawl guards on match quality (flood guard, low quality)
"""

from matchers.algorithms import ALGORITHMS, hamming, normalize_hash
from matchers.digest import ImageDigest, digest_bytes, digest_file
from matchers.errors import (
    DecodeError,
    HashListError,
    ImageError,
    ImageTooLarge,
    InvalidHash,
    MatcherError,
    NotAnImage,
)
from matchers.index import Match, Matcher
from matchers.lists import HashList, ListEntry, Thresholds
from matchers.sniff import sniff_image

__all__ = [
    "ALGORITHMS",
    "DecodeError",
    "HashList",
    "HashListError",
    "ImageDigest",
    "ImageError",
    "ImageTooLarge",
    "InvalidHash",
    "ListEntry",
    "Match",
    "Matcher",
    "MatcherError",
    "NotAnImage",
    "Thresholds",
    "digest_bytes",
    "digest_file",
    "hamming",
    "normalize_hash",
    "sniff_image",
]
