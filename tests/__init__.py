"""The test suite. Its packages mirror the code's: ``matchers``, ``store``, ``crawler``,
``takedown`` and ``hotline`` test one package's modules each; ``cli`` runs the whole program
as an analyst does (``python -m hotline.cli`` or ``scrapy crawl`` in a subprocess).

What they share: :mod:`tests.helpers` (the CLI runner, test hosts, a clock, polling),
:mod:`tests.builders` (made-up takedown values), :mod:`tests.nocontent` (the leak finder),
``servers`` (loopback SMTP, webhook and RDAP servers), ``site`` (the two-host test site) and
``selfcheck`` (tests that the test site and the leak finder work).
"""
