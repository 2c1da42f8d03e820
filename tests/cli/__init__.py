"""Whole-program tests: ``python -m hotline.cli`` (and ``scrapy crawl``) in a subprocess, with
a real redis-server and loopback sites, checked by exit code, output and the state left in Redis."""
