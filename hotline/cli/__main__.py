"""``python -m hotline.cli``: the ``hotline`` command (tests and the scheduler start it so)."""

from hotline.cli import main

main()
