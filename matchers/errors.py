"""Exceptions raised by :mod:`matchers`.

Every exception the package raises on purpose derives from :class:`MatcherError`, so a caller
(the CLI, a pipeline) can map the whole family to one exit code or one stats key::

    MatcherError                 base class
    ├── InvalidHash              a hash text is not valid for its algorithm
    ├── HashListError            a hash list (CSV file, serialized blob, list name, thresholds)
    │                            is invalid; carries ``path``, ``line``, ``field`` and ``reason``
    └── ImageError               bytes could not be hashed as an image
        ├── NotAnImage           the bytes do not start with a known image signature
        ├── ImageTooLarge        the header announces more pixels than allowed
        └── DecodeError          the decoder failed (truncated or corrupt data); ``code`` says which

Messages describe what is wrong in words; they never contain image bytes.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "HashListError",
    "ImageError",
    "ImageTooLarge",
    "InvalidHash",
    "MatcherError",
    "NotAnImage",
]


class MatcherError(Exception):
    """Base class of every error raised by :mod:`matchers`."""


class InvalidHash(MatcherError):
    """A hash text is malformed: unknown algorithm, wrong length, not lowercase hex."""


class HashListError(MatcherError):
    """A hash list is invalid.

    ``str()`` is ``"{path}:{line}: field '{field}': {reason}"``; parts that are ``None`` are left
    out, e.g. ``"known.csv: empty file"``.
    """

    def __init__(self, path: str, line: int | None, field: str | None, reason: str) -> None:
        super().__init__(path, line, field, reason)
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        location = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.field is not None:
            return f"{location}: field '{self.field}': {self.reason}"
        return f"{location}: {self.reason}"


class ImageError(MatcherError):
    """Bytes could not be hashed as an image.

    ``width`` and ``height`` are the header dimensions when they were read before the failure.
    """

    def __init__(
        self, message: str, *, width: int | None = None, height: int | None = None
    ) -> None:
        super().__init__(message)
        self.width = width
        self.height = height


class NotAnImage(ImageError):
    """The bytes do not start with the signature of a supported image format."""


class ImageTooLarge(ImageError):
    """The image header announces more pixels than the configured limit."""


class DecodeError(ImageError):
    """The decoder failed. ``code`` is a short machine-readable reason (``truncated``, ...)."""

    def __init__(
        self, code: str, message: str, *, width: int | None = None, height: int | None = None
    ) -> None:
        super().__init__(message, width=width, height=height)
        self.code = code
