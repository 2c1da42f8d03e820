"""Reference hashes of served images, computed independently of ``matchers``.

The test site's known list is what a list built elsewhere would record: full-resolution PDQ
(``pdqhash.compute``), ``imagehash.phash`` and the checksums, computed here without the
project's reduced-scale decoder, so tests compare the crawler against an independent oracle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash

from hotline import imagegen

KNOWN_LIST_HEADER = "algorithm,hash,id,category"
PDQ_BITS = 256


@dataclass(frozen=True)
class ReferenceHashes:
    """Hashes of one served image body: exact ones of the bytes, perceptual ones of the pixels."""

    sha256: str
    md5: str
    pdq: str
    pdq_quality: int
    phash: str

    def rows(self, entry_id: str, category: str) -> list[str]:
        """Known-list CSV rows (without header) for this image."""
        return [
            f"{algorithm},{value},{entry_id},{category}"
            for algorithm, value in (
                ("sha256", self.sha256),
                ("md5", self.md5),
                ("pdq", self.pdq),
                ("phash", self.phash),
            )
        ]


def pdq_hex(bits: np.ndarray) -> str:
    """PDQ bit vector as 64 hex digits, bits packed MSB-first in vector order."""
    if len(bits) != PDQ_BITS:
        raise ValueError(f"PDQ hash must have {PDQ_BITS} bits, got {len(bits)}")
    return "%064x" % int("".join(str(int(b)) for b in bits), 2)  # noqa: UP031


def reference_hashes(body: bytes) -> ReferenceHashes:
    """Hash an encoded image body the way a known list records it."""
    img = imagegen.decode(body)
    bits, quality = pdqhash.compute(np.asarray(img))
    return ReferenceHashes(
        sha256=hashlib.sha256(body).hexdigest(),
        md5=hashlib.md5(body, usedforsecurity=False).hexdigest(),
        pdq=pdq_hex(bits),
        pdq_quality=int(quality),
        phash=str(imagehash.phash(img)),
    )


def hamming_hex(a: str, b: str) -> int:
    """Bit distance between two equal-length hex hashes."""
    if len(a) != len(b):
        raise ValueError(f"hash lengths differ: {len(a)} != {len(b)}")
    return (int(a, 16) ^ int(b, 16)).bit_count()
