"""The embedded redis-server the CLI starts under its data directory (hotline.redisserver):
its configuration and AOF, restarts, sharing one server between processes, stale files,
and clear errors. Readiness is polled with a deadline, never slept for."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from hotline.redisserver import (
    MAX_UNIX_SOCKET_PATH_BYTES,
    REDIS_SERVER_MISSING,
    EmbeddedRedis,
    EmbeddedRedisError,
)
from store.connection import embedded_url, redis_from_url
from tests.helpers import redis_answers, redis_server_binary

#: Seconds a server start may take.
READY_TIMEOUT = 15.0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
