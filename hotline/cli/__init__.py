"""The analyst's command line, ``hotline``: one module per command group, assembled here.

Every command explains itself (``--help``), prints tables for people and JSON for scripts
(``--json``), and fails with one line on standard error and a non-zero exit code:
2 for bad input, 3 when Redis cannot be reached, 1 for a crawl that did not finish.
No command ever shows an image.

==========================  ===================================================================
:mod:`~hotline.cli.app`      the Typer app, the consoles, the options several commands share,
                             opening Redis and the notice system, reading seeds
:mod:`~hotline.cli.render`   tables, time/duration/health cells, the hit and review records
                             table, JSON for scripts or one line for people
:mod:`~hotline.cli.crawl`    ``crawl`` (here, ``--distributed`` or ``--run ID``) and ``demo``
:mod:`~hotline.cli.worker`   ``worker``, and waiting for a ``crawl --distributed`` run
:mod:`~hotline.cli.records`  ``hits list`` and ``review list``
:mod:`~hotline.cli.hashes`   ``hashes``: import, build, list and remove hash lists; hash files
:mod:`~hotline.cli.runs`     ``runs``: list, show, cancel crawl runs
:mod:`~hotline.cli.schedule` ``schedule`` (add, list, pause, resume, remove, run) and
                             ``scheduler``, the daemon that starts due runs
:mod:`~hotline.cli.notifier` ``notifier`` and ``recheck``, the notice-and-takedown daemons
:mod:`~hotline.cli.providers` ``providers lookup``: who would receive a notice, and why
:mod:`~hotline.cli.rdap`     ``rdap update|status``: the IANA RDAP bootstrap files
:mod:`~hotline.cli.notices`  ``notices``: list, show (the whole timeline), resend, reopen
:mod:`~hotline.cli.stats`    ``stats``: time to removal by provider
:mod:`~hotline.cli.purge`    ``purge``: delete the records whose retention period is over
:mod:`~hotline.cli.serve`    ``serve``: the analyst console and HTTP API (:mod:`hotline.console`)
:mod:`~hotline.cli.check`    ``check``: the configuration, directory, Redis, lists and channels
                             before the daemons start; where a notice for a URL would go
:mod:`~hotline.cli.users`    ``users`` and ``tokens``: the analyst console's accounts and the
                             API tokens of scripts (add, list, disable, revoke, ...)
==========================  ===================================================================

:func:`main` is the console script and ``python -m hotline.cli``: it runs the app and maps
every package's errors to one line and an exit code (see :mod:`hotline.errors`).
Commands that crawl import Scrapy when they run, so every other command starts without it.
"""

from __future__ import annotations

import sys
from typing import Any

import redis

from hotline.cli import (
    check,
    crawl,
    hashes,
    notices,
    notifier,
    providers,
    purge,
    rdap,
    records,
    runs,
    schedule,
    serve,
    stats,
    users,
    worker,
)
from hotline.cli.app import app, err
from hotline.errors import HotlineError, InputError, ServiceError
from matchers.errors import MatcherError
from store.errors import EnvironmentVariableError, InvalidRedisUrl, ScheduleError, StoreError
from takedown.errors import DirectoryError, NoticeError, RdapUrlError, TakedownError
from takedown.notices import NoticeNotFound, NoticeStateError
from takedown.settings import SettingsError

__all__ = ["app", "main"]

# The commands, then the command groups, in the order --help lists them.
app.command()(crawl.crawl)
app.command()(crawl.demo)
app.command()(schedule.scheduler)
app.command()(worker.worker)
app.command()(notifier.notifier)
app.command()(notifier.recheck)
app.command()(stats.stats)
app.command()(purge.purge)
app.command()(serve.serve)
app.command()(check.check)
app.add_typer(hashes.hashes_app, name="hashes")
app.add_typer(records.hits_app, name="hits")
app.add_typer(records.review_app, name="review")
app.add_typer(runs.runs_app, name="runs")
app.add_typer(schedule.schedule_app, name="schedule")
app.add_typer(providers.providers_app, name="providers")
app.add_typer(notices.notices_app, name="notices")
app.add_typer(rdap.rdap_app, name="rdap")
app.add_typer(users.users_app, name="users")
app.add_typer(users.tokens_app, name="tokens")


def _fail(message: str, code: int) -> int:
    err.print(f"error: {message}", markup=False)
    return code


def main(argv: list[str] | None = None) -> None:
    """Console script ``hotline``: run the app, map errors to one line and an exit code."""
    code: Any = 0
    try:
        # Standalone mode: usage errors print themselves and exit 2, --help exits 0.
        app(args=argv)
    except HotlineError as exc:
        code = _fail(str(exc), exc.exit_code)
    except MatcherError as exc:
        code = _fail(str(exc), InputError.exit_code)
    except (
        SettingsError,
        DirectoryError,
        NoticeError,
        NoticeNotFound,
        NoticeStateError,
        ScheduleError,
        InvalidRedisUrl,
        EnvironmentVariableError,
        RdapUrlError,
    ) as exc:
        code = _fail(str(exc), InputError.exit_code)  # the configuration or the input is wrong
    except (TakedownError, StoreError) as exc:
        code = _fail(str(exc), ServiceError.exit_code)
    except redis.RedisError as exc:  # Redis went away in the middle of a command
        code = _fail(f"Redis failed: {' '.join(str(exc).split())}", ServiceError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
