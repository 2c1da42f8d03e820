"""Text helpers every package shares: Redis replies as text, errors as one line."""

from __future__ import annotations

__all__ = ["ELLIPSIS", "one_line", "text"]

ELLIPSIS = "…"


def text(value: bytes | str) -> str:
    """A Redis reply (``bytes`` from a client without ``decode_responses``) as UTF-8 text."""
    return value.decode() if isinstance(value, bytes) else value


def one_line(value: str | BaseException, limit: int | None = None) -> str:
    """``value`` on one line: runs of white space (newlines included) become one space.

    An exception gives its message, or its type name when the message is empty. With
    ``limit``, a longer result is cut to ``limit`` characters, the last one ``…``.
    """
    if isinstance(value, BaseException):
        flat = " ".join(str(value).split()) or type(value).__name__
    else:
        flat = " ".join(value.split())
    if limit is not None and len(flat) > limit:
        return flat[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS
    return flat
