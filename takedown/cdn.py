"""Built-in CDN ranges, shipped as package data (``takedown/data/cdns.yaml``).

When a reported image resolves to a CDN edge address, the CDN is not the host of the content
but it knows who is: the notice goes to the CDN's abuse desk, which forwards it to the origin.
The file uses the provider-directory schema (every entry ``cdn: true``) and is read with the
same loader, so its errors read like a directory's. It lists only ranges a CDN publishes; where
each list comes from, and when it was copied, is written at the top of the file.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from takedown.directory import ProviderDirectory
from takedown.errors import DirectoryError

__all__ = ["CDN_DATA_FILE", "CDN_DATA_PACKAGE", "load_builtin_cdns"]

CDN_DATA_PACKAGE = "takedown"
#: Path of the ranges file inside :data:`CDN_DATA_PACKAGE`.
CDN_DATA_FILE = "data/cdns.yaml"


@lru_cache(maxsize=1)
def load_builtin_cdns() -> ProviderDirectory:
    """The CDN ranges shipped with the package (parsed once per process)."""
    resource = files(CDN_DATA_PACKAGE).joinpath(CDN_DATA_FILE)
    source = f"{CDN_DATA_PACKAGE}/{CDN_DATA_FILE}"
    directory = ProviderDirectory.from_yaml(resource.read_text(encoding="utf-8"), source=source)
    for provider in directory.providers:
        if not provider.cdn:
            raise DirectoryError(f"{provider.origin}: field 'cdn': built-in entries must be CDNs")
    return directory
