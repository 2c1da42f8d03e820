"""Redis plumbing against real redis-server processes: the data directory, the client factory
(URLs, passwords, TLS). The embedded server itself: ``tests/hotline/test_redisserver.py``.

Every server here listens on loopback only (a unix socket, or 127.0.0.1) and is started by
the test itself; readiness is polled with a deadline, never slept for.
"""

from __future__ import annotations

import contextlib
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline.paths import ensure_data_dir
from hotline.redisserver import (
    EmbeddedRedisError,
    resolve_redis_url,
)
from store.connection import (
    PROBE_TIMEOUT,
    default_url,
    embedded_socket_path,
    embedded_url,
    mask_url,
    redis_from_url,
)
from store.environment import ENV_REDIS_URL, default_data_dir
from store.errors import RedisUnavailable, StoreError
from tests.helpers import deaf_server, free_port, redis_answers, redis_server_binary

READY_TIMEOUT = 15.0
# -- helpers -------------------------------------------------------------------------------


class ServerExited(Exception):
    """A test redis-server exited before it answered."""

    def __init__(self, code: int, log: str) -> None:
        super().__init__(f"redis-server exited with code {code}:\n{log}")
        self.log = log


@contextlib.contextmanager
def spawn_redis(workdir: Path, args: list[str], ready_url: str) -> Iterator[None]:
    """Run ``redis-server <args>`` in ``workdir`` until the block ends; ready when
    ``ready_url`` answers PING through :func:`redis_from_url`."""
    log_path = workdir / "server.log"
    base = ["--dir", str(workdir), "--appendonly", "yes", "--bind", "127.0.0.1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [redis_server_binary(), *base, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not redis_answers(ready_url):
            code = proc.poll()
            if code is not None:
                raise ServerExited(code, log_path.read_text(errors="replace"))
            if time.monotonic() >= deadline:
                raise AssertionError(f"redis-server did not answer within {READY_TIMEOUT}s")
            time.sleep(0.02)  # spare the CPU; the loop ends on an answer or the deadline
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def test_a_server_that_never_answers_is_unavailable_within_seconds() -> None:
    """It took 162 s (timeouts retried by every layer); now the first PING is one try within
    PROBE_TIMEOUT. The bound leaves room for a busy machine."""
    with deaf_server() as url:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match="Timeout"):
            redis_from_url(url)
        elapsed = time.monotonic() - started
    assert elapsed < 4 * PROBE_TIMEOUT, elapsed


def test_malformed_url_raises_redis_unavailable() -> None:
    with pytest.raises(RedisUnavailable, match="invalid Redis URL http://"):
        redis_from_url("http://:pw@127.0.0.1/")


# -- password ------------------------------------------------------------------------------


def test_password_url(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
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
    port = free_port("127.0.0.1")
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
