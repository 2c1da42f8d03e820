"""Made-up takedown values for the tests: one confirmed hit builder, one hotline identity
(as a value and as the ``[hotline]`` table of a configuration file), and the explicit X-ARF
classification of the list the hits are on (as settings and as a ``[classification]`` table).

Nothing here is, or is derived from, real content: the "hashes" are hex digests of a text
label, so they have the right length and alphabet and differ per number, nothing more.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from store.lists import EVERY_CATEGORY, ClassificationMap
from store.queue import HitRecord
from takedown.model import HotlineIdentity
from tests.helpers import HOST_A

TEST_IDENTITY = HotlineIdentity(
    name="Example Hotline",
    email="notices@hotline.example",
    website="https://hotline.example",
    country="NL",
    legal_basis="Art. 1 of the Example Act (test configuration)",
)

#: :data:`TEST_IDENTITY` as the ``[hotline]`` table of ``hotline.toml``.
IDENTITY_TOML = f"""
[hotline]
name = "{TEST_IDENTITY.name}"
email = "{TEST_IDENTITY.email}"
website = "{TEST_IDENTITY.website}"
country = "{TEST_IDENTITY.country}"
legal_basis = "{TEST_IDENTITY.legal_basis}"
"""

#: The list :func:`make_hit`'s hits are on, and its classification: nothing is noticed
#: without one, so tests that send notices map their list explicitly.
TEST_LIST = "known"
TEST_CLASSIFICATION_VALUE = "baseline"
TEST_CLASSIFICATION = {TEST_LIST: ClassificationMap({EVERY_CATEGORY: TEST_CLASSIFICATION_VALUE})}
#: :data:`TEST_CLASSIFICATION` as the ``[classification]`` table of ``hotline.toml``.
CLASSIFICATION_TOML = f"""
[classification]
{TEST_LIST} = "{TEST_CLASSIFICATION_VALUE}"
"""


def label_hex(label: str, algorithm: str) -> str:
    """Made-up hex of the right length for ``algorithm``: a digest of a label, not of an image."""
    return hashlib.new(algorithm, label.encode()).hexdigest()


def make_hit(number: int = 1, host: str = HOST_A, **changes: Any) -> HitRecord:
    """A confirmed sha256 hit of made-up image ``number`` on ``host``; ``changes`` replace fields.

    The URL, list entry and hashes follow from ``number``, so two numbers are two incidents;
    the IP the crawl connected to is ``host`` itself.
    """
    label = f"benign-test-image-{number}"
    hit = HitRecord(
        url=f"http://{host}/img/{number:03d}.jpg",
        page=f"http://{host}/gallery.html",
        seed=f"http://{host}/gallery.html",
        sha256=label_hex(label, "sha256"),
        md5=label_hex(label, "md5"),
        sha1=label_hex(label, "sha1"),
        pdq=None,
        pdq_quality=None,
        phash=None,
        list=TEST_LIST,
        entry=f"k{number:03d}",
        category="test",
        algorithm="sha256",
        distance=0,
        verdict="confirmed",
        first_seen="2026-11-22T10:00:00+00:00",
        ip=host,
        status=200,
        content_type="image/jpeg",
        content_length=2048,
        server="TestServer",
        crawl="crawl-1",
    )
    return replace(hit, **changes)
