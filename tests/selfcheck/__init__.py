"""Tests of the test tools themselves: the two-host test site serves what it claims, and the
leak finder finds what it must (a check that cannot fail proves nothing)."""
