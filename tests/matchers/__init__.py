"""Tests of ``matchers``: hashing, safe decoding, list formats, indexes and their oracles."""
