"""The embedded redis-server the CLI starts under its data directory (hotline.redisserver):
its configuration and AOF, restarts, sharing one server between processes (the last user
out stops it, a killed user never keeps it up), stale files, and clear errors. Readiness is
polled with a deadline, never slept for; concurrent steps are ordered by events."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotline.redisserver import (
    MAX_UNIX_SOCKET_PATH_BYTES,
    REDIS_SERVER_MISSING,
    EmbeddedRedis,
    EmbeddedRedisError,
)
from store.connection import embedded_url, redis_from_url
from tests.helpers import ROOT, redis_answers, redis_server_binary, wait_for

#: Seconds a server start may take.
READY_TIMEOUT = 15.0
#: Seconds a paused thread waits for the test's go-ahead (a safety net, not a synchronisation).
STEP_TIMEOUT = 60.0

#: Another hotline command of the data directory ``argv[1]``: joins (or starts) the embedded
#: server, prints the pid it spawned (0 if it joined one) and uses it until killed.
OTHER_COMMAND = """
import sys
from pathlib import Path
from hotline.redisserver import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
print(server.pid or 0, flush=True)
sys.stdin.read()
"""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited: a zombie that no parent reaped yet counts as gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory; a redis-server that a failing test leaves running there is stopped."""
    yield tmp_path
    with contextlib.suppress(OSError, ValueError):
        pid = server_pid(tmp_path)
        if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: process_gone(pid), f"left-over redis-server {pid} to exit")


def server_pid(data_dir: Path) -> int:
    return int((data_dir / "redis" / "redis.pid").read_text().strip())


def assert_usable(url: str) -> None:
    """The server at ``url`` answers and stores a key."""
    client = redis_from_url(url, retries=0)
    try:
        client.set("still-usable", "yes")
        assert client.get("still-usable") == b"yes"
    finally:
        client.close()


def assert_stopped(data_dir: Path, pid: int) -> None:
    wait_for(lambda: process_gone(pid), f"redis-server {pid} to exit")
    assert not redis_answers(embedded_url(data_dir))
    assert not (data_dir / "redis" / "redis.sock").exists()


@contextlib.contextmanager
def other_command(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run :data:`OTHER_COMMAND` until it uses the server; yield it and the pid it spawned."""
    with subprocess.Popen(
        [sys.executable, "-c", OTHER_COMMAND, str(data_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the command uses the server
        if not line:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"the other command failed: {err}")
        try:
            yield child, int(line)
        finally:
            child.kill()


def in_thread(action: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    """Start ``action`` in a thread; what it raises goes to ``errors``."""

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported by the test's assertion
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_embedded_server_config_and_aof_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedRedis(data_dir) as server:
        assert not server.reused
        pid = server.pid
        assert pid is not None
        assert process_alive(pid)
        assert server.url == embedded_url(data_dir)
        sock = data_dir / "redis" / "redis.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        client = redis_from_url(server.url)
        try:
            config = client.config_get("*")
            assert config["appendonly"] == "yes"
            assert config["appendfsync"] == "everysec"
            assert config["port"] == "0"  # no TCP listener
            assert config["protected-mode"] == "yes"
            assert Path(str(config["dir"])) == data_dir / "redis"
            client.set("aof-probe", "1")
        finally:
            client.close()
    assert not process_alive(pid)
    assert not sock.exists()
    aof_dir = data_dir / "redis" / "appendonlydir"
    incr = list(aof_dir.glob("*.incr.aof"))
    assert incr, f"no AOF increment file in {sorted(aof_dir.iterdir())}"
    assert b"aof-probe" in b"".join(path.read_bytes() for path in incr)
    assert (data_dir / "redis" / "redis.log").stat().st_size > 0


def test_embedded_data_survives_restart_from_aof(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        client = redis_from_url(first.url)
        client.set("kept", "across restarts")
        client.close()
    # Without the RDB snapshot, only the AOF can bring the key back.
    (tmp_path / "redis" / "dump.rdb").unlink(missing_ok=True)
    with EmbeddedRedis(tmp_path) as second:
        assert not second.reused
        client = redis_from_url(second.url)
        try:
            assert client.get("kept") == b"across restarts"
        finally:
            client.close()


def test_second_instance_reuses_running_server(tmp_path: Path) -> None:
    owner = EmbeddedRedis(tmp_path)
    owner.start()
    try:
        owner_pid = owner.pid
        assert owner_pid is not None
        with EmbeddedRedis(tmp_path) as guest:
            assert guest.reused
            assert guest.pid is None
            client = redis_from_url(guest.url)
            client.set("shared", "yes")
            client.close()
        # The guest left the owner's server running.
        assert process_alive(owner_pid)
        client = redis_from_url(owner.url)
        try:
            assert client.get("shared") == b"yes"
        finally:
            client.close()
    finally:
        owner.stop()
    assert not redis_answers(owner.url)


def test_concurrent_starts_spawn_one_server(tmp_path: Path) -> None:
    servers = [EmbeddedRedis(tmp_path), EmbeddedRedis(tmp_path)]
    barrier = threading.Barrier(len(servers))
    errors: list[BaseException] = []

    def start(server: EmbeddedRedis) -> None:
        barrier.wait()
        try:
            server.start()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(READY_TIMEOUT * 2)
    try:
        assert not errors
        assert sorted(server.reused for server in servers) == [False, True]
    finally:
        for server in sorted(servers, key=lambda s: not s.reused):  # guests first
            server.stop()


@pytest.mark.parametrize("first_out", ["starter", "joiner"])
def test_server_lives_until_its_last_user_exits(data_dir: Path, first_out: str) -> None:
    starter = EmbeddedRedis(data_dir)
    starter.start()
    joiner = EmbeddedRedis(data_dir)
    try:
        pid = starter.pid
        assert pid is not None
        joiner.start()
        assert joiner.reused
        first, last = (starter, joiner) if first_out == "starter" else (joiner, starter)
        first.stop()
        # The other user's server is untouched by the first one's exit.
        assert process_alive(pid)
        assert_usable(last.url)
        last.stop()
        assert_stopped(data_dir, pid)
    finally:
        joiner.stop()
        starter.stop()


@pytest.mark.parametrize("killed", ["joiner", "starter", "sole user"])
def test_killed_user_does_not_keep_the_server_up(data_dir: Path, killed: str) -> None:
    survivor = EmbeddedRedis(data_dir)
    try:
        if killed == "joiner":
            survivor.start()
        with other_command(data_dir) as (child, spawned):
            assert (spawned == 0) is (killed == "joiner")
            if killed == "starter":
                survivor.start()
                assert survivor.reused
            child.kill()  # SIGKILL: no stop(), the kernel drops its locks
            child.wait()
        pid = server_pid(data_dir)
        # A killed sole user leaves its server running: the next command joins it.
        survivor.start()
        assert survivor.reused is (killed != "joiner")
        assert_usable(survivor.url)
        survivor.stop()
        assert_stopped(data_dir, pid)
    finally:
        survivor.stop()


def test_start_during_last_users_check_joins_and_keeps_the_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that found the server up (under the start lock) joins before the exiting
    last user may check for users: that one then leaves the server running."""
    leaving, coming = EmbeddedRedis(data_dir), EmbeddedRedis(data_dir)
    leaving.start()
    pid = leaving.pid
    assert pid is not None
    found_it, leaving_waits, go_on = threading.Event(), threading.Event(), threading.Event()
    await_existing, start_lock = coming._await_existing, leaving._start_lock

    def pause_after_probe() -> bool:
        up = await_existing()
        found_it.set()
        assert go_on.wait(STEP_TIMEOUT)
        return up

    @contextlib.contextmanager
    def announced_start_lock() -> Iterator[None]:
        leaving_waits.set()
        with start_lock():
            yield

    errors: list[BaseException] = []
    try:
        monkeypatch.setattr(coming, "_await_existing", pause_after_probe)
        monkeypatch.setattr(leaving, "_start_lock", announced_start_lock)
        starting = in_thread(coming.start, errors)
        assert found_it.wait(STEP_TIMEOUT)
        # The leaving user asks for the start lock while the coming one holds it, paused.
        exiting = in_thread(leaving.stop, errors)
        assert leaving_waits.wait(STEP_TIMEOUT)
        go_on.set()
        starting.join(STEP_TIMEOUT)
        exiting.join(STEP_TIMEOUT)
        assert not errors
        assert coming.reused
        assert process_alive(pid)
        assert_usable(coming.url)
        coming.stop()
        assert_stopped(data_dir, pid)
    finally:
        go_on.set()
        coming.stop()
        leaving.stop()


def test_start_during_last_users_shutdown_starts_a_new_server(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command starting while the last user shuts the server down waits for the start lock,
    then starts a server of its own instead of joining the one that is stopping."""
    leaving, coming = EmbeddedRedis(data_dir), EmbeddedRedis(data_dir)
    leaving.start()
    old_pid = leaving.pid
    assert old_pid is not None
    stopping, coming_waits, go_on = threading.Event(), threading.Event(), threading.Event()
    stop_server, start_lock = leaving._stop_server, coming._start_lock

    def pause_before_shutdown(pid: int) -> None:
        stopping.set()
        assert go_on.wait(STEP_TIMEOUT)
        stop_server(pid)

    @contextlib.contextmanager
    def announced_start_lock() -> Iterator[None]:
        coming_waits.set()
        with start_lock():
            yield

    errors: list[BaseException] = []
    try:
        monkeypatch.setattr(leaving, "_stop_server", pause_before_shutdown)
        monkeypatch.setattr(coming, "_start_lock", announced_start_lock)
        exiting = in_thread(leaving.stop, errors)
        assert stopping.wait(STEP_TIMEOUT)
        # The server still answers here; the coming user must not join it.
        starting = in_thread(coming.start, errors)
        assert coming_waits.wait(STEP_TIMEOUT)
        go_on.set()
        exiting.join(STEP_TIMEOUT)
        starting.join(STEP_TIMEOUT)
        assert not errors
        assert process_gone(old_pid)
        assert not coming.reused
        assert coming.pid not in {None, old_pid}
        assert_usable(coming.url)
    finally:
        go_on.set()
        leaving.stop()
        coming.stop()


def test_stale_socket_and_pid_file_are_replaced(tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir(parents=True)
    sock_path = redis_dir / "redis.sock"
    # A socket file nobody listens on, as a crashed server leaves it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock_path))
    assert stat.S_ISSOCK(sock_path.stat().st_mode)
    # A pid that is not a redis-server (our own test process).
    (redis_dir / "redis.pid").write_text(f"{os.getpid()}\n")
    assert not redis_answers(embedded_url(tmp_path))

    with EmbeddedRedis(tmp_path) as server:
        assert not server.reused
        assert server.pid is not None
        assert redis_answers(server.url)
        assert (redis_dir / "redis.pid").read_text().strip() == str(server.pid)


def test_too_long_socket_path_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * MAX_UNIX_SOCKET_PATH_BYTES)
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis(data_dir).start()
    message = str(info.value)
    assert str(data_dir / "redis" / "redis.sock") in message
    assert "too long" in message
    assert "HOTLINE_DATA_DIR" in message
    assert not data_dir.exists()


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis(tmp_path, redis_server=str(tmp_path / "no-such-redis-server")).start()
    assert str(info.value).startswith(REDIS_SERVER_MISSING)
    assert "apt-get install redis-server" in str(info.value)
    assert "HOTLINE_REDIS_URL" in str(info.value)


def test_server_exiting_at_startup_reports_its_log(tmp_path: Path) -> None:
    # A real redis-server handed one bad directive after the generated config.
    wrapper = tmp_path / "bad-redis-server"
    wrapper.write_text(f'#!/bin/sh\nexec {redis_server_binary()} "$@" --no-such-directive 1\n')
    wrapper.chmod(0o755)
    data_dir = tmp_path / "data"
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis(data_dir, redis_server=str(wrapper)).start()
    message = str(info.value)
    assert "exited with code" in message
    assert "no-such-directive" in message  # quoted from redis-server's own output
    assert not (data_dir / "redis" / "redis.sock").exists()
