"""Redis plumbing against real redis-server processes: the client factory, the embedded server.

Every server here listens on loopback only (a unix socket, or 127.0.0.1) and is started by
the test itself; readiness is polled with a deadline, never slept for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from hotline.paths import ensure_data_dir
from hotline.redisserver import (
    MAX_UNIX_SOCKET_PATH_BYTES,
    REDIS_SERVER_MISSING,
    EmbeddedRedis,
    EmbeddedRedisError,
    resolve_redis_url,
)
from store.connection import (
    default_url,
    embedded_socket_path,
    embedded_url,
    mask_url,
    redis_from_url,
)
from store.environment import ENV_REDIS_URL, default_data_dir
from store.errors import RedisUnavailable, StoreError

READY_TIMEOUT = 15.0
POLL_INTERVAL = 0.02
REDIS_SERVER = shutil.which("redis-server")


# -- helpers -------------------------------------------------------------------------------


class ServerExited(Exception):
    """A test redis-server exited before it answered."""

    def __init__(self, code: int, log: str) -> None:
        super().__init__(f"redis-server exited with code {code}:\n{log}")
        self.log = log


def require_redis_server() -> str:
    if REDIS_SERVER is None:
        pytest.fail(REDIS_SERVER_MISSING, pytrace=False)
    return REDIS_SERVER


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    try:
        client = redis_from_url(url, timeout=1.0, retries=0)
    except RedisUnavailable:
        return False
    client.close()
    return True


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {READY_TIMEOUT}s waiting for {what}")
        time.sleep(POLL_INTERVAL)


@contextlib.contextmanager
def spawn_redis(workdir: Path, args: list[str], ready_url: str) -> Iterator[None]:
    """Run ``redis-server <args>`` in ``workdir`` until the block ends; ready when
    ``ready_url`` answers PING through :func:`redis_from_url`."""
    log_path = workdir / "server.log"
    base = ["--dir", str(workdir), "--appendonly", "yes", "--bind", "127.0.0.1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [require_redis_server(), *base, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not answers(ready_url):
            code = proc.poll()
            if code is not None:
                raise ServerExited(code, log_path.read_text(errors="replace"))
            if time.monotonic() >= deadline:
                raise AssertionError(f"redis-server did not answer within {READY_TIMEOUT}s")
            time.sleep(POLL_INTERVAL)
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- paths ---------------------------------------------------------------------------------


def test_default_data_dir_precedence(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    xdg = tmp_path / "xdg"
    assert default_data_dir({"HOTLINE_DATA_DIR": str(explicit), "XDG_DATA_HOME": str(xdg)}) == (
        explicit
    )
    assert default_data_dir({"XDG_DATA_HOME": str(xdg)}) == xdg / "hotline-crawler"
    assert default_data_dir({"HOTLINE_DATA_DIR": "", "XDG_DATA_HOME": ""}) == (
        Path.home() / ".local" / "share" / "hotline-crawler"
    )


def test_default_data_dir_reads_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "from-env"))
    assert default_data_dir() == tmp_path / "from-env"


def test_default_url_is_the_embedded_socket_of_the_default_data_dir(tmp_path: Path) -> None:
    env = {"HOTLINE_DATA_DIR": str(tmp_path)}
    assert default_url(env) == embedded_url(default_data_dir(env))
    assert default_url(env) == f"unix://{tmp_path}/redis/redis.sock"


def test_ensure_data_dir_is_private(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert ensure_data_dir(target) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    target.chmod(0o755)
    ensure_data_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


# -- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:s3cret@127.0.0.1:6379/0", "redis://user:***@127.0.0.1:6379/0"),
        ("redis://:s3cret@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
        (
            "rediss://u:p%40ss@h:1/2?ssl_cert_reqs=required",
            "rediss://u:***@h:1/2?ssl_cert_reqs=required",
        ),
        ("unix:///run/r.sock?db=3&password=s3cret", "unix:///run/r.sock?db=3&password=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("user:s3cret@host:6379", "user:***@host:6379"),
    ],
)
def test_mask_url_hides_passwords(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_embedded_url_and_resolution(tmp_path: Path) -> None:
    data_dir = tmp_path / "with space"
    assert embedded_socket_path(data_dir) == data_dir / "redis" / "redis.sock"
    url = embedded_url(data_dir)
    assert url == f"unix://{tmp_path}/with%20space/redis/redis.sock"
    assert resolve_redis_url({}, data_dir) == (url, True)
    assert resolve_redis_url({ENV_REDIS_URL: ""}, data_dir) == (url, True)
    assert resolve_redis_url({ENV_REDIS_URL: "redis://127.0.0.1:1/0"}, data_dir) == (
        "redis://127.0.0.1:1/0",
        False,
    )


def test_error_tree() -> None:
    assert issubclass(RedisUnavailable, StoreError)
    assert issubclass(EmbeddedRedisError, RedisUnavailable)


# -- the session fixtures ------------------------------------------------------------------


def test_session_server_fixtures(redis_client: redis.Redis, redis_prefix: str) -> None:
    assert redis_prefix.startswith("t")
    assert redis_prefix.endswith(":")
    key = f"{redis_prefix}k"
    redis_client.set(key, "v")
    assert redis_client.get(key) == b"v"  # bytes: decode_responses is off
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}


def test_unix_url_db_query_selects_database(redis_url: str, redis_prefix: str) -> None:
    key = f"{redis_prefix}db"
    db0 = redis_from_url(redis_url)
    db3 = redis_from_url(f"{redis_url}?db=3")
    try:
        db3.set(key, "three")
        assert db3.get(key) == b"three"
        assert db0.get(key) is None
    finally:
        db3.delete(key)
        db0.close()
        db3.close()


def test_unreachable_url_raises_redis_unavailable(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(RedisUnavailable, match=r"nothing\.sock") as info:
        redis_from_url(url, retries=0)
    assert "\n" not in str(info.value)


def test_malformed_url_raises_redis_unavailable() -> None:
    with pytest.raises(RedisUnavailable, match="invalid Redis URL http://"):
        redis_from_url("http://:pw@127.0.0.1/")


# -- password ------------------------------------------------------------------------------


def test_password_url(tmp_path: Path) -> None:
    port = free_loopback_port()
    good = f"redis://default:right-pass@127.0.0.1:{port}/2"
    with spawn_redis(tmp_path, ["--port", str(port), "--requirepass", "right-pass"], good):
        client = redis_from_url(good)
        try:
            assert client.ping() is True
            assert client.connection_pool.connection_kwargs["db"] == 2
        finally:
            client.close()

        with pytest.raises(RedisUnavailable) as wrong:
            redis_from_url(f"redis://default:wrong-pass@127.0.0.1:{port}/0")
        message = str(wrong.value)
        assert "wrong-pass" not in message
        assert f"redis://default:***@127.0.0.1:{port}/0" in message
        assert "\n" not in message

        with pytest.raises(RedisUnavailable, match=r"(?i)auth"):
            redis_from_url(f"redis://127.0.0.1:{port}/0")


# -- TLS -----------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / f"{name}.key", directory / f"{name}.crt"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", f"/CN=hotline-crawler test CA {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return ca_key, ca_crt


def make_server_cert(directory: Path, ca_key: Path, ca_crt: Path) -> tuple[Path, Path]:
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
        cwd=directory,
    )  # fmt: skip
    return key, crt


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server speaking only TLS on 127.0.0.1; yields (port, CA certificate)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to make the test certificates", pytrace=False)
    ca_key, ca_crt = make_ca(tmp_path / "pki", "ca")
    key, crt = make_server_cert(tmp_path / "pki", ca_key, ca_crt)
    port = free_loopback_port()
    args = [
        "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(crt), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca_crt), "--tls-auth-clients", "no",
    ]  # fmt: skip
    ready = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca_crt}&ssl_cert_reqs=required"
    try:
        with spawn_redis(tmp_path, args, ready):
            yield port, ca_crt
    except ServerExited as exc:
        # Debian builds redis-server with TLS; a build without it refuses the tls-* options.
        if "tls" in exc.log.lower():
            pytest.skip(f"this redis-server was built without TLS support: {exc.log.strip()}")
        raise


def test_tls_url_verifies_ca_and_hostname(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, ca_crt = tls_server
    query = f"ssl_ca_certs={ca_crt}&ssl_cert_reqs=required"
    client = redis_from_url(f"rediss://127.0.0.1:{port}/0?{query}")
    try:
        assert client.ping() is True
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()

    # The certificate names only IP:127.0.0.1, so "localhost" fails the hostname check.
    with pytest.raises(RedisUnavailable, match=r"(?i)certificate|hostname|match"):
        redis_from_url(f"rediss://localhost:{port}/0?{query}", retries=0)

    # A different CA does not vouch for the server.
    _, other_ca = make_ca(tmp_path / "other", "other")
    with pytest.raises(RedisUnavailable, match=r"(?i)certificate"):
        redis_from_url(
            f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={other_ca}&ssl_cert_reqs=required",
            retries=0,
        )


# -- the embedded server -------------------------------------------------------------------


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
            assert Path(config["dir"]) == data_dir / "redis"
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
    assert not answers(owner.url)


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
    assert not answers(embedded_url(tmp_path))

    with EmbeddedRedis(tmp_path) as server:
        assert not server.reused
        assert server.pid is not None
        assert answers(server.url)
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
    wrapper.write_text(f'#!/bin/sh\nexec {require_redis_server()} "$@" --no-such-directive 1\n')
    wrapper.chmod(0o755)
    data_dir = tmp_path / "data"
    with pytest.raises(EmbeddedRedisError) as info:
        EmbeddedRedis(data_dir, redis_server=str(wrapper)).start()
    message = str(info.value)
    assert "exited with code" in message
    assert "no-such-directive" in message  # quoted from redis-server's own output
    assert not (data_dir / "redis" / "redis.sock").exists()
