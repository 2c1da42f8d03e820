"""Made-up takedown values for the tests: one confirmed hit builder, one hotline identity
(as a value and as the ``[hotline]`` table of a configuration file), and the explicit X-ARF
classification of the list the hits are on (as settings and as a ``[classification]`` table).

Nothing here is, or is derived from, real content: the "hashes" are hex digests of a text
label, so they have the right length and alphabet and differ per number, nothing more.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
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


#: The one provider of :func:`directory_config`'s directory, by e-mail, for HOST_A.
ALPHA_PROVIDER = "abuse: abuse@alpha.example"


def directory_config(directory: Path, provider: str = ALPHA_PROVIDER) -> Path:
    """Write ``hotline.toml`` (identity, classification, no RDAP) and a provider directory
    ``providers.yaml`` of one provider, Alpha Hosting, that has HOST_A and the YAML lines of
    ``provider`` (its channel); return the configuration's path."""
    config = directory / "hotline.toml"
    config.write_text(
        IDENTITY_TOML
        + CLASSIFICATION_TOML
        + '[notices]\ndirectory = "providers.yaml"\n[rdap]\nurl = ""\n',
        encoding="utf-8",
    )
    lines = "".join(f"  {line}\n" for line in provider.splitlines())
    (directory / "providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n{lines}", encoding="utf-8"
    )
    return config


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
