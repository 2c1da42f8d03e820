"""Errors the CLI turns into a one-line message and an exit code.

::

    HotlineError                  exit 1
    ├── UsageError                exit 2   bad arguments, no valid seed
    ├── InputError                exit 2   a malformed file (seeds, hash list, image dir)
    └── ServiceError              exit 3   Redis missing or unreachable, redis-server absent

Errors of the other packages are mapped in :func:`hotline.cli.main`:
``matchers.errors.MatcherError`` -> InputError; a bad configuration, provider directory,
notice, unknown notice or schedule request (``takedown.settings.SettingsError``,
``DirectoryError``, ``NoticeError``, ``NoticeNotFound``, ``store.errors.ScheduleError``) ->
InputError; any other ``takedown.errors.TakedownError`` or ``store.errors.StoreError`` ->
ServiceError.
"""

from __future__ import annotations


class HotlineError(Exception):
    exit_code = 1


class UsageError(HotlineError):
    exit_code = 2


class InputError(HotlineError):
    exit_code = 2


class ServiceError(HotlineError):
    exit_code = 3
