"""Seeded random hashes and a pure-Python brute-force oracle for the index tests."""

from __future__ import annotations

import random


def random_hash(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def flip(hash_hex: str, distance: int, rng: random.Random) -> str:
    """A hash exactly ``distance`` bits away from ``hash_hex``."""
    bits = len(hash_hex) * 4
    value = int(hash_hex, 16)
    for position in rng.sample(range(bits), distance):
        value ^= 1 << position
    return f"{value:0{bits // 4}x}"


def brute_force(items: list[tuple[str, int]], probe: str, limit: int) -> list[tuple[int, int]]:
    """(payload, distance) of every item within ``limit`` of ``probe``, by distance then payload."""
    found = []
    for hash_hex, payload in items:
        distance = (int(hash_hex, 16) ^ int(probe, 16)).bit_count()
        if distance <= limit:
            found.append((payload, distance))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
