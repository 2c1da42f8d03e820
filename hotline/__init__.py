"""The front door: the ``hotline`` command line, its configuration, and the processes it runs.

``hotline`` may import every other package of ours (``crawler``, ``takedown``, ``store``,
``matchers``); none of them imports ``hotline``.

===================  ==========================================================================
:mod:`hotline.cli`   the command line, one module per command group (see its docstring), and
                     :func:`hotline.cli.main`, which maps every error to one line and an exit code
``config``           :class:`~hotline.config.Config`: the environment read once into a typed
                     object (through :mod:`store.environment`), the notices' TOML on demand
``services``         opening Redis for a command: the configured server or the embedded one
``redisserver``      the embedded ``redis-server`` under the data directory (unix socket, AOF),
                     shared by its commands: the last one to exit stops it
``scheduler``        the scheduler daemon and the one function that starts a scheduled run
``worker``           the distributed-crawl worker: joins runs and crawls their shared frontier
``crawlrun``         running the crawl spider in-process, with live progress and a summary
``takedownrun``      wiring notice and takedown together from the configuration (store,
                     router, channels, sender) for the takedown commands
``demo``             ``hotline demo``: the whole loop on a benign generated site
``demosite``         the benign demo site's pages and generated images
``loopback``         a small in-memory HTTP server on a loopback address (demo, tests, benchmarks)
``imagegen``         seeded, benign, textured images for tests, demos and benchmarks
``paths``            the per-user data directory on disk, created private on first use
``errors``           the errors the CLI turns into exit codes (1, 2, 3)
===================  ==========================================================================
"""
