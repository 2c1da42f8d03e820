"""Small helpers the tests share: the two test hosts, the CLI as a subprocess and the
environment it runs in, one-line error checks, a clock the test moves, polling with a deadline.

Fixtures live in the ``conftest.py`` files (the ``env`` of CLI tests in ``tests/cli``); this
module holds plain values and functions, so any test module may import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families

from hotline.loopback import DEFAULT_HOST, SECOND_HOST
from hotline.redisserver import REDIS_SERVER_MISSING
from store.connection import redis_from_url
from store.errors import RedisUnavailable

#: The repository's root (``scrapy.cfg``, ``examples/``).
ROOT = Path(__file__).resolve().parent.parent

#: Two distinct "hosting providers" on loopback (Linux routes all of 127.0.0.0/8 to lo): the
#: loopback server's own two hosts.
HOST_A = DEFAULT_HOST  # the reported site; the provider that is noticed
HOST_B = SECOND_HOST  # another provider: an image host, a redirect target, or "internal"

#: The CLI as an analyst runs it, in a subprocess.
HOTLINE = [sys.executable, "-m", "hotline.cli"]

#: Hypothesis settings of the parsers' property tests (a result or the documented one-line
#: error, within a time): generous, since a parser that hangs or backtracks blows far past
#: them and a busy machine does not.
PARSER_BOUND = settings(
    max_examples=400,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Seconds a CLI command may take before the test fails (a safety net, not a synchronisation).
CLI_TIMEOUT = 120.0
#: Seconds :func:`wait_for` polls before it fails the test.
WAIT_TIMEOUT = 60.0
#: A fixed instant (2030-03-17 UTC) where test clocks start unless told otherwise.
CLOCK_START = 1_900_000_000.0

T = TypeVar("T")


def hotline_env(**values: str) -> dict[str, str]:
    """This process's environment without any ``HOTLINE_*`` variable, plus ``values``.

    The CLI reads only what the test sets, whatever the developer's shell exports.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOTLINE_")}
    env.update(values)
    return env


def run_cli(
    args: list[str],
    env: dict[str, str],
    *,
    timeout: float = CLI_TIMEOUT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``hotline <args>`` in a subprocess with ``env`` (and ``stdin`` as its standard input,
    when given); output captured as text, never raises for an exit code (the test checks it)."""
    return subprocess.run(
        [*HOTLINE, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant (through ``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # gone meanwhile
            continue
    return found


@contextlib.contextmanager
def deaf_server() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never answers; its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.2:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for connection in held:
            connection.close()


def listening_sockets(root: int) -> list[str]:
    """The TCP sockets in LISTEN state held by ``root`` or any of its descendants, as
    ``pid:local-address`` (hex, as ``/proc/net/tcp`` shows it)."""
    listening: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening[fields[9]] = fields[1]
    found = []
    for pid in process_tree(root):
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # gone meanwhile
            continue
        for descriptor in descriptors:
            try:
                link = os.readlink(descriptor)
            except OSError:  # closed meanwhile
                continue
            if link.startswith("socket:[") and link[8:-1] in listening:
                found.append(f"{pid}:{listening[link[8:-1]]}")
    return found


def _peak_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_cli_measured(
    args: list[str], env: dict[str, str], *, timeout: float = CLI_TIMEOUT
) -> tuple[subprocess.CompletedProcess[str], int]:
    """:func:`run_cli`, and the largest peak RSS in bytes of the command or any process it
    started (``VmHWM``, read while they run; it only grows, so the last reading holds all
    but the final moments). ``ru_maxrss`` of children would not do: a child starts from
    the peak of the process it was forked from, here this test process's."""
    proc = subprocess.Popen(
        [*HOTLINE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    outputs: list[tuple[str, str]] = []
    reader = threading.Thread(target=lambda: outputs.append(proc.communicate()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    peak = 0
    while reader.is_alive():
        for pid in process_tree(proc.pid):
            peak = max(peak, _peak_kib(pid))
        reader.join(timeout=0.1)
        if time.monotonic() > deadline and reader.is_alive():
            proc.kill()
            reader.join()
            raise subprocess.TimeoutExpired(proc.args, timeout)
    stdout, stderr = outputs[0]
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return result, peak * 1024


def ok_json(args: list[str], env: dict[str, str], *, timeout: float = CLI_TIMEOUT) -> Any:
    """``hotline <args> --json``, which must succeed; its output parsed."""
    result = run_cli([*args, "--json"], env, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


#: Prometheus samples by name: each its labels and value.
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape_metrics(host: str, port: int) -> Samples:
    """A daemon's ``/metrics``, parsed by prometheus_client's own parser."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(f"http://{host}:{port}/metrics", timeout=10) as answer:
        body = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def metric_value(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` with those labels (an assertion error if there
    is none, or more than one)."""
    matching = [
        v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())
    ]
    assert len(matching) == 1, f"{name}{labels}: {samples.get(name)}"
    return matching[0]


def one_line_error(result: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """The single ``error: ...`` line a failed command wrote to stderr, and nothing else.

    With ``code``, the exit code must be that too.
    """
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


class Clock:
    """A clock the test sets and moves (``clock=`` of the stores and the scheduler).

    Shared by threads: reads and writes of a float attribute are atomic.
    """

    def __init__(self, now: float = CLOCK_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(condition: Callable[[], T | None], what: str, *, timeout: float = WAIT_TIMEOUT) -> T:
    """Poll ``condition`` until it returns a true value (returned), or fail after ``timeout``.

    For state another process writes (Redis, files) that no event announces; the condition is
    what synchronises, the short pause only spares the CPU.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def free_port(host: str) -> int:
    """A port on ``host`` that nothing listens on (bound, then released): for a server to be
    started on, or for a request that must find it closed."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The path of ``redis-server``; its absence fails the test with the reason."""
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(REDIS_SERVER_MISSING, pytrace=False)
    return found


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers at ``url`` now (one quick try, no retries)."""
    try:
        client = redis_from_url(url, timeout=1.0, retries=0)
    except RedisUnavailable:
        return False
    client.close()
    return True


#: ``python -c KILL_AT_MAIN ARGS`` runs the real CLI with one method wrapped so that the process
#: sends itself SIGKILL before or after that method's n-th call: kill -9 (no handler, no
#: ``finally``) at a point no outside observer could hit reliably. ``FAULT_KILL_AT`` (in the
#: environment) is ``module:Class.method:before|after:n``; a method that does not exist fails at
#: start.
KILL_AT_MAIN = """
import functools, importlib, os, signal, sys, threading
target, method, when, nth = os.environ.pop("FAULT_KILL_AT").rsplit(":", 3)
owner = importlib.import_module(target)
path = method.split(".")
for name in path[:-1]:
    owner = getattr(owner, name)
original = getattr(owner, path[-1])
calls = [0]
lock = threading.Lock()

@functools.wraps(original)
def faulty(*args, **kwargs):
    with lock:
        calls[0] += 1
        due = calls[0] == int(nth)
    if due and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if due and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, path[-1], faulty)
from hotline.cli import main
main(sys.argv[1:])
"""
