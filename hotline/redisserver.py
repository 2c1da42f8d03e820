"""The embedded Redis: a private ``redis-server`` under the user's data directory.

With no ``HOTLINE_REDIS_URL`` configured, hotline commands share one ``redis-server`` that
listens only on a unix socket in ``<data_dir>/redis/`` (no TCP), with AOF on. The server is
shared, not owned: it runs while any command of that data directory uses it, and the last
one to exit stops it, whichever command started it.

Its lifetime is lock-counted with ``flock``, on two files:

* ``redis.lock``, the start lock, held exclusively while a command joins (reuses the server
  that answers on the socket, or spawns one and waits until it answers) and while a command
  that is done checks whether it was the last user (and if so shuts the server down). The two
  never interleave: a command starting while the last user exits either joins before the
  check (which then finds a user and leaves the server running) or starts a fresh server
  after the shutdown, never joins a server about to stop.
* ``redis.users``, held *shared* by every command for as long as it uses the server. A
  command that is done releases its shared lock, takes the start lock and tries a
  non-blocking *exclusive* lock on it: only the last user gets it.

The kernel drops a process's locks when it dies, so a killed command (even ``kill -9``) never
keeps the server up; a server left running by a killed last user is joined by the next
command and stopped by the next last user.

Layout of ``<data_dir>/redis/``: ``redis.sock``, ``redis.conf`` (generated), ``redis.pid``,
``redis.log``, ``redis.lock``, ``redis.users``, ``appendonlydir/`` and ``dump.rdb``.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import redis

from hotline.paths import ensure_data_dir
from store.connection import embedded_socket_path, embedded_url, redis_from_url
from store.environment import ENV_REDIS_URL, redis_url
from store.errors import RedisUnavailable

__all__ = [
    "MAX_UNIX_SOCKET_PATH_BYTES",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "resolve_redis_url",
]

#: ``sizeof(sockaddr_un.sun_path) - 1`` on Linux: the longest path redis-server accepts.
MAX_UNIX_SOCKET_PATH_BYTES = 107
#: Seconds to wait for a started server to answer PING.
START_TIMEOUT = 15.0
#: Seconds to wait for SHUTDOWN before the process is killed.
STOP_TIMEOUT = 15.0
#: Seconds to wait for the start lock held by another hotline command.
LOCK_TIMEOUT = 30.0
#: Seconds between readiness checks while polling.
POLL_INTERVAL = 0.02
#: Socket timeout of one readiness PING.
PROBE_TIMEOUT = 1.0
#: Lines of redis.log quoted when the server fails to start.
LOG_TAIL_LINES = 20

SOCKET_PERM = "700"
CONF_NAME = "redis.conf"
PID_NAME = "redis.pid"
LOG_NAME = "redis.log"
LOCK_NAME = "redis.lock"
USERS_NAME = "redis.users"
PRIVATE_FILE_MODE = 0o600

REDIS_SERVER_MISSING = (
    f"redis-server not found: install it (apt-get install redis-server) or set {ENV_REDIS_URL}"
)


class EmbeddedRedisError(RedisUnavailable):
    """The embedded redis-server could not be started, reached or stopped."""


#: Servers this process spawned whose object stopped while other commands still used them,
#: by pid: kept so that whoever stops the server here reaps the child (no zombie, no warning).
_HANDED_OVER: dict[int, subprocess.Popen[bytes]] = {}


def _reap_handed_over() -> None:
    """Reap and forget the handed-over servers that have exited since (stopped elsewhere)."""
    for pid, proc in list(_HANDED_OVER.items()):
        if proc.poll() is not None:
            _HANDED_OVER.pop(pid, None)


class _Probe(enum.Enum):
    UP = "up"
    LOADING = "loading"
    DOWN = "down"


def resolve_redis_url(env: Mapping[str, str], data_dir: Path) -> tuple[str, bool]:
    """Return ``(url, needs_embedded)``: ``$HOTLINE_REDIS_URL`` if set, else the embedded URL."""
    configured = redis_url(env)
    if configured:
        return configured, False
    return embedded_url(data_dir), True


def _quote_conf(value: str) -> str:
    """Quote a value for redis.conf (sdssplitargs syntax)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _is_redis_process(pid: int) -> bool:
    """True if ``pid`` is alive and (where /proc tells us) is a redis-server.

    A zombie (a server that exited, not yet reaped by its parent) has an empty command line,
    so it counts as gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not our server
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: alive is the best we know
    # redis-server rewrites its title to "redis-server <addr>", so look at the first word only.
    argv0 = os.fsdecode(cmdline.split(b"\0", 1)[0].split(b" ", 1)[0])
    return Path(argv0).name.startswith("redis-server")


class EmbeddedRedis:
    """A private ``redis-server`` on a unix socket under ``data_dir``; a context manager.

    ``start()`` joins the server that already answers on the socket, or spawns one and waits
    until it answers PING; ``stop()`` leaves and, if no other user is left, shuts the server
    down (see the module docstring). Each object is one user, also within one process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        redis_server: str = "redis-server",
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.redis_server = redis_server
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.socket_path = embedded_socket_path(self.data_dir)
        self.redis_dir = self.socket_path.parent
        self.conf_path = self.redis_dir / CONF_NAME
        self.pid_path = self.redis_dir / PID_NAME
        self.log_path = self.redis_dir / LOG_NAME
        self.lock_path = self.redis_dir / LOCK_NAME
        self.users_path = self.redis_dir / USERS_NAME
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._users_fd: int | None = None
        self._started = False
        self._reused = False

    # -- public API -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``unix://`` URL of the server (valid once started)."""
        return embedded_url(self.data_dir)

    @property
    def reused(self) -> bool:
        """True if ``start()`` found a server already running and reused it."""
        return self._reused

    @property
    def pid(self) -> int | None:
        """Pid of the redis-server this object started, or None (not started, or reused)."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Join the running embedded server or start one; return once it answers PING."""
        if self._started:
            return
        self._check_socket_path()
        ensure_data_dir(self.data_dir)
        ensure_data_dir(self.redis_dir)
        with self._start_lock():
            # Shared, so never contended here: exclusive holders hold the start lock too.
            users_fd = self._lock_users(fcntl.LOCK_SH)
            if users_fd is None:
                raise EmbeddedRedisError(f"{self.users_path} is locked exclusively (a bug)")
            try:
                self._reused = self._await_existing()
                if not self._reused:
                    self._spawn()
            except BaseException:
                self._unlock_users(users_fd)
                raise
        self._users_fd = users_fd
        self._started = True

    def stop(self) -> None:
        """Leave the server; if no other command uses it, SHUTDOWN it (AOF is flushed)."""
        users_fd = self._users_fd
        self._users_fd = None
        self._started = False
        if users_fd is None:
            return
        self._unlock_users(users_fd)
        _reap_handed_over()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # Whoever turns out to be the last user in this process reaps it, this one included.
            _HANDED_OVER[proc.pid] = proc
        try:
            with self._start_lock():
                last_fd = self._lock_users(fcntl.LOCK_EX)
                if last_fd is None:
                    return  # others still use it: the last of them stops it
                try:
                    pid = self._read_pid() if proc is None else proc.pid
                    if pid is not None:
                        self._stop_server(pid)
                finally:
                    self._unlock_users(last_fd)
        finally:
            self._close_log()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start ----------------------------------------------------------------------------

    def _check_socket_path(self) -> None:
        size = len(os.fsencode(self.socket_path))
        if size > MAX_UNIX_SOCKET_PATH_BYTES:
            raise EmbeddedRedisError(
                f"embedded Redis socket path is too long ({size} bytes, the limit is "
                f"{MAX_UNIX_SOCKET_PATH_BYTES}): {self.socket_path}; set HOTLINE_DATA_DIR "
                f"to a shorter directory or set {ENV_REDIS_URL}"
            )

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EmbeddedRedisError(
                            f"timed out after {LOCK_TIMEOUT:g}s waiting for {self.lock_path} "
                            "(another hotline command is starting the embedded Redis)"
                        ) from None
                    time.sleep(POLL_INTERVAL)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock_users(self, operation: int) -> int | None:
        """Open ``redis.users`` and flock it without blocking; its fd, or None if contended."""
        fd = os.open(self.users_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _unlock_users(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _probe(self) -> _Probe:
        try:
            client = redis_from_url(self.url, timeout=PROBE_TIMEOUT, retries=0)
        except RedisUnavailable as exc:
            if isinstance(exc.__cause__, redis.BusyLoadingError):
                return _Probe.LOADING
            return _Probe.DOWN
        client.close()
        return _Probe.UP

    def _await_existing(self) -> bool:
        """True if a server already serves the socket (waits out AOF loading); else clean up."""
        state = self._probe()
        if state is _Probe.DOWN:
            old_pid = self._read_pid()
            if old_pid is None or not _is_redis_process(old_pid):
                self._remove_stale_files()
                return False
        # A server is loading its data, or its pid file names a live redis-server that does
        # not answer yet: give it the start deadline to come up.
        deadline = time.monotonic() + self.start_timeout
        while state is not _Probe.UP:
            if time.monotonic() >= deadline:
                raise EmbeddedRedisError(
                    f"a redis-server (pid file {self.pid_path}) owns {self.redis_dir} but does "
                    f"not answer on {self.socket_path} after {self.start_timeout:g}s; stop it"
                )
            time.sleep(POLL_INTERVAL)
            state = self._probe()
        return True

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None

    def _remove_stale_files(self) -> None:
        for stale in (self.socket_path, self.pid_path):
            stale.unlink(missing_ok=True)

    def _config(self) -> str:
        lines = [
            ("daemonize", "no"),
            ("port", "0"),
            ("protected-mode", "yes"),
            ("unixsocket", _quote_conf(str(self.socket_path))),
            ("unixsocketperm", SOCKET_PERM),
            ("dir", _quote_conf(str(self.redis_dir))),
            ("pidfile", _quote_conf(str(self.pid_path))),
            ("logfile", _quote_conf(str(self.log_path))),
            ("appendonly", "yes"),
            ("appendfsync", "everysec"),
            ("always-show-logo", "no"),
        ]
        header = "# Generated by hotline-crawler for its embedded Redis; rewritten on each start.\n"
        return header + "".join(f"{key} {value}\n" for key, value in lines)

    def _spawn(self) -> None:
        binary = shutil.which(self.redis_server)
        if binary is None:
            raise EmbeddedRedisError(f"{REDIS_SERVER_MISSING} (looked for {self.redis_server!r})")
        self.conf_path.write_text(self._config(), encoding="utf-8")
        self.conf_path.chmod(PRIVATE_FILE_MODE)
        # stdout/stderr share redis.log, so a fatal config error (printed before redis opens
        # its log file) shows up in the startup error below.
        log = self.log_path.open("ab")
        log_offset = log.tell()
        try:
            proc = subprocess.Popen(
                [binary, str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.redis_dir,
                start_new_session=True,  # Ctrl-C reaches us; we SHUTDOWN it in order
            )
        except OSError as exc:
            log.close()
            raise EmbeddedRedisError(f"{REDIS_SERVER_MISSING} ({binary}: {exc})") from exc
        self._log_handle = log
        self._proc = proc
        try:
            self._wait_ready(proc, log_offset)
        except BaseException:
            self._kill(proc)
            self._proc = None
            self._close_log()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes], log_offset: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {code} during startup; "
                    f"last lines of {self.log_path}:\n{self._log_tail(log_offset)}"
                )
            if self._probe() is _Probe.UP:
                return
            if time.monotonic() >= deadline:
                raise EmbeddedRedisError(
                    f"redis-server (pid {proc.pid}) did not answer on {self.socket_path} "
                    f"within {self.start_timeout:g}s; last lines of {self.log_path}:\n"
                    f"{self._log_tail(log_offset)}"
                )
            time.sleep(POLL_INTERVAL)

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read log: {exc})"
        lines = text.strip().splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(lines) if lines else "(log is empty)"

    # -- stop -----------------------------------------------------------------------------

    def _stop_server(self, pid: int) -> None:
        """Shut down the server ``pid`` as its last user, whichever object or command (maybe
        one since killed) spawned it; return once it has exited."""
        proc = _HANDED_OVER.pop(pid, None)
        if proc is not None:
            if proc.poll() is not None:
                return
            self._request_shutdown(pid)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                self._killed(pid)
            return
        if not _is_redis_process(pid):
            return  # already gone (stopped by hand, or crashed)
        self._request_shutdown(pid)
        deadline = time.monotonic() + self.stop_timeout
        while _is_redis_process(pid):
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._killed(pid)
            time.sleep(POLL_INTERVAL)

    def _request_shutdown(self, pid: int) -> None:
        """SHUTDOWN over the socket; SIGTERM (redis' graceful shutdown too) if that fails."""
        with contextlib.suppress(RedisUnavailable):
            client = redis_from_url(self.url, timeout=self.stop_timeout, retries=0)
            try:
                client.shutdown()
            except redis.RedisError:
                pass
            else:
                return
            finally:
                client.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def _killed(self, pid: int) -> NoReturn:
        raise EmbeddedRedisError(
            f"redis-server (pid {pid}) did not stop within {self.stop_timeout:g}s "
            "and was killed; the last second of writes may be lost"
        )

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
