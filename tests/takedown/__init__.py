"""Tests of ``takedown``: providers and routing, RDAP, notices and X-ARF, channels, the
notifier, the notice store and the recheck book."""
