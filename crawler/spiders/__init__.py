"""The spiders: ``hotline`` crawls reported URLs; ``recheck`` is run by ``hotline recheck``."""
