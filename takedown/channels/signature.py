"""How webhook notices are signed, and how a receiver checks the signature.

Every POST carries::

    X-Hotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

To check it, a receiver:

1. splits the header on ``,`` into ``key=value`` pairs, takes ``t`` and every ``v1``;
2. computes ``HMAC-SHA256(key=secret as UTF-8, message=ASCII "<t>." followed by the raw
   request body bytes exactly as received)`` -- before any JSON parsing -- as lowercase hex;
3. accepts if it equals one of the ``v1`` values (compare in constant time) and ``t`` is
   within 300 seconds of its own clock (this bounds replays; the ``Idempotency-Key`` header
   detects re-sends of the same notice, which carry a fresh ``t``).

:func:`verify_signature` does exactly this. In shell, for a body saved to ``body.json``::

    printf '%s.' "$t" | cat - body.json | openssl dgst -sha256 -hmac "$SECRET"

This module needs no HTTP client, so a receiver written in Python can import it alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE",
    "sign",
    "signature_header",
    "verify_signature",
]

#: Seconds a signature's timestamp may differ from the receiver's clock.
SIGNATURE_TOLERANCE = 300
SIGNATURE_HEADER = "X-Hotline-Signature"

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Hotline-Signature`` value for ``body``, timestamped now unless given."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    *,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` is a valid, fresh signature of the raw ``body`` under ``secret``.

    For receivers. Several ``v1`` values are allowed (a sender rotating secrets may sign with
    both); the comparison is constant-time. A malformed header is simply invalid.
    """
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            candidates.append(value.lower())
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    valid = False
    for candidate in candidates:
        if _HEX_SHA256.fullmatch(candidate):
            valid |= hmac.compare_digest(expected, candidate)
    return valid
