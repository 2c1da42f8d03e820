"""Tests of ``hotline``'s modules called in-process: the scheduler, the embedded redis-server.
The CLI itself is tested as a subprocess in ``tests/cli``."""
