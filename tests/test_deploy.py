"""The deployment files: ``compose.yaml``, ``.env.example`` and the systemd units under
``deploy/systemd/``.

``docker compose config`` checks the compose file when Docker Compose is installed; without
it the file is validated against the Compose Specification's JSON schema (vendored in
``tests/data``, see its NOTICE). What no schema knows is checked here too: every command is a
``hotline`` command with options that exist, every ``HOTLINE_*`` variable is one the project
reads, workers can be scaled, Redis keeps its data and never evicts it.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.core
import typer.main
import yaml

# typer (pinned) carries its own copy of click: its groups, contexts and errors are that copy's.
from typer import _click as click

from hotline.cli import app
from store import environment

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
SYSTEMD_DIR = ROOT / "deploy" / "systemd"
SYSTEMD_ENV_EXAMPLE = SYSTEMD_DIR / "hotline.env.example"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

#: The daemons compose and systemd run, by the ``hotline`` command each service starts.
DAEMONS = {"scheduler", "worker", "notifier", "recheck", "serve"}
#: Compose's variable references: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``...
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_HOTLINE_VARIABLE = re.compile(r"\bHOTLINE_[A-Z0-9_]+\b")
#: The value the test gives each variable Compose requires.
TEST_SECRET = "0123456789abcdef0123456789abcdef"
#: What every unit must say to keep a daemon in its place.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
}


# -- reading the files ---------------------------------------------------------------------


def known_variables() -> set[str]:
    """The ``HOTLINE_*`` variables ``store/environment.py`` names."""
    return {
        value
        for name, value in vars(environment).items()
        if name.startswith("ENV_") and isinstance(value, str) and value.startswith("HOTLINE_")
    }


def example_variables(path: Path) -> dict[str, bool]:
    """Each variable an env file example names, and whether its line is set (not commented)."""
    named: dict[str, bool] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=.*", line.strip())
        if match:
            name = match.group(2)
            named[name] = named.get(name, False) or match.group(1) is None
    return named


def references(text: str) -> dict[str, str | None]:
    """Each variable ``text`` references, with its operator (``:?`` for a required one)."""
    found: dict[str, str | None] = {}
    for match in _REFERENCE.finditer(text.replace("$$", "")):
        op = match.group("op")
        if found.get(match.group("name")) not in {":?", "?"}:
            found[match.group("name")] = op
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of the forms the compose file uses, with ``env``."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op in {":-", "-"}:
            return value if value or (op == "-" and value is not None) else arg
        if op in {":?", "?"}:
            if not value:
                raise AssertionError(f"{name} is required: {arg}")
            return value
        if op is not None:
            raise AssertionError(f"${{{name}{op}...}}: not a form this test interpolates")
        return value or ""

    parts = text.split("$$")
    return "$".join(_REFERENCE.sub(substitute, part) for part in parts)


def compose_env() -> dict[str, str]:
    """The environment the compose file is read with: the example, required values filled."""
    env = {name: "" for name, is_set in example_variables(ENV_EXAMPLE).items() if is_set}
    for name, op in references(COMPOSE_FILE.read_text(encoding="utf-8")).items():
        if op in {":?", "?"}:
            env[name] = TEST_SECRET
    return env


def compose_model() -> dict[str, Any]:
    """compose.yaml as Compose reads it: parsed (YAML merge keys resolved), then every string
    value interpolated with :func:`compose_env`."""
    env = compose_env()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    model = walk(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert isinstance(model, dict)
    return model


def services(model: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(model["services"])


def hotline_services(model: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the project's image (all but Redis)."""
    return {name: s for name, s in services(model).items() if not s["image"].startswith("redis")}


def daemon_services(model: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services ``docker compose up`` starts (one-off services sit in a profile)."""
    return {name: s for name, s in hotline_services(model).items() if not s.get("profiles")}


def unit_files() -> list[Path]:
    return sorted(SYSTEMD_DIR.glob("*.service"))


def unit_directives(path: Path) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) of each directive of a unit file, in order."""
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a directive: {line!r}"
        yield section, key.strip(), value.strip()


def unit_values(path: Path, key: str) -> list[str]:
    return [value for _, k, value in unit_directives(path) if k == key]


# -- parsing hotline commands --------------------------------------------------------------


def parse_hotline(argv: list[str]) -> click.Context:
    """Parse ``hotline ARGV`` as the CLI would, without running it: an unknown command or
    option, or a value of the wrong type, raises click's error."""
    command: click.Command = typer.main.get_command(app)
    parent: click.Context | None = None
    name, args = "hotline", list(argv)
    while isinstance(command, typer.core.TyperGroup):
        group_ctx = click.Context(command, info_name=name, parent=parent)
        if not args:
            raise click.exceptions.UsageError(f"{name}: no command given", group_ctx)
        name = args.pop(0)
        sub = command.get_command(group_ctx, name)
        if sub is None:
            raise click.exceptions.UsageError(f"no such command {name!r}", group_ctx)
        command, parent = sub, group_ctx
    return command.make_context(name, args, parent=parent, resilient_parsing=False)


def shell_words(script: str) -> list[str]:
    """The words of a one-command shell line, up to its first redirection, pipe or list."""
    words: list[str] = []
    for word in shlex.split(script):
        if word[:1] in {">", "<", "|", "&", ";"} or word[:2] in {"2>", "1>"}:
            break
        words.append(word)
    return words


def test_parse_hotline_refuses_what_the_cli_refuses() -> None:
    assert parse_hotline(["worker", "--stop-timeout", "20"]).params["stop_timeout"] == 20.0
    assert parse_hotline(["runs", "list", "--limit", "1", "--json"]).params["limit"] == 1
    with pytest.raises(click.exceptions.NoSuchOption):
        parse_hotline(["worker", "--no-such-option"])
    with pytest.raises(click.exceptions.BadParameter):
        parse_hotline(["worker", "--stop-timeout", "soon"])
    with pytest.raises(click.exceptions.UsageError, match="no such command"):
        parse_hotline(["workers"])
    with pytest.raises(click.exceptions.UsageError, match="no command given"):
        parse_hotline(["runs"])


def test_interpolate_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    text = "${SET} ${EMPTY:-d} ${EMPTY-d} ${UNSET:-d} $${SET} ${SET:?no}"
    assert interpolate(text, env) == "x d  d ${SET} x"
    with pytest.raises(AssertionError, match="UNSET is required"):
        interpolate("${UNSET:?set it}", env)


# -- compose.yaml --------------------------------------------------------------------------


def _docker_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False, timeout=60
    )
    return probe.returncode == 0


def test_compose_file_is_valid(tmp_path: Path) -> None:
    """``docker compose config -q`` when Compose is installed, else the specification's schema."""
    if _docker_compose():
        shutil.copy(COMPOSE_FILE, tmp_path / "compose.yaml")
        env = "".join(f"{name}={value}\n" for name, value in compose_env().items())
        (tmp_path / ".env").write_text(env, encoding="utf-8")
        result = subprocess.run(
            ["docker", "compose", "--project-directory", str(tmp_path), "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose_model())
    ]
    assert not errors, "\n".join(errors)


def test_the_schema_catches_a_bad_compose_file() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    bad = compose_model()
    bad["services"]["worker"]["restart_policy"] = "always"  # not a service key
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)


def test_every_daemon_is_a_service() -> None:
    model = compose_model()
    started = {s["command"][0] for s in daemon_services(model).values()}
    assert started == DAEMONS
    assert "redis" in services(model)


def test_service_commands_parse() -> None:
    model = compose_model()
    assert services(model)["cli"]["command"] == ["--help"]
    for name, service in daemon_services(model).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: give the command as a list"
        try:
            parse_hotline([str(word) for word in command])
        except click.ClickException as exc:
            pytest.fail(f"service {name}: hotline {' '.join(command)}: {exc.format_message()}")


def test_hotline_healthchecks_parse() -> None:
    """Each healthcheck runs a command that needs Redis (and so fails when it is down), or asks
    the console's readiness endpoint, which answers 503 then."""
    for name, service in daemon_services(compose_model()).items():
        test = service["healthcheck"]["test"]
        if service["command"][0] == "serve":
            port = service["command"][service["command"].index("--port") + 1]
            assert test[0] == "CMD"
            assert f"http://127.0.0.1:{port}/readyz" in " ".join(test), name
            continue
        assert test[0] == "CMD-SHELL", name
        words = shell_words(test[1])
        assert words[0] == "hotline", name
        context = parse_hotline(words[1:])
        assert context.command_path == "hotline runs list", f"{name}: {test[1]} needs no Redis"


def test_services_restart_wait_for_redis_and_stop_in_time() -> None:
    model = compose_model()
    for name, service in daemon_services(model).items():
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert "healthcheck" in service, name
        assert any(str(v).endswith(":/etc/hotline:ro") for v in service["volumes"]), name
        assert any(str(v).endswith(":/srv/hotline/lists:ro") for v in service["volumes"]), name
        assert "hotline-data:/home/hotline/data" in service["volumes"], name
        assert service["environment"]["HOTLINE_DATA_DIR"] == "/home/hotline/data", name
        assert service["environment"]["HOTLINE_CONFIG"] == "/etc/hotline/hotline.toml", name
        env_files = service["env_file"]
        assert [f["path"] for f in env_files] == [".env"], name
    assert services(model)["redis"]["restart"] == "unless-stopped"
    assert "hotline-data" in model["volumes"]


def test_workers_scale() -> None:
    model = compose_model()
    worker = services(model)["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    command = worker["command"]
    stop_timeout = float(command[command.index("--stop-timeout") + 1])
    grace = worker["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace), grace
    assert int(grace[:-1]) > stop_timeout, "Docker would kill a worker still handing work back"


def test_console_listens_on_loopback_only() -> None:
    console = services(compose_model())["console"]
    assert console["ports"] == ["127.0.0.1:8080:8080"]
    assert "--distributed" in console["command"]


def test_redis_keeps_its_data_and_never_evicts() -> None:
    model = compose_model()
    redis = services(model)["redis"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-[a-z0-9]+)?", redis["image"]), redis["image"]
    config = " ".join(redis["command"])
    for line in ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction"):
        assert re.search(rf"^{line}$", config, re.MULTILINE), line
    assert re.search(r"^requirepass \$REDIS_PASSWORD$", config, re.MULTILINE)
    assert redis["environment"]["REDIS_PASSWORD"] == TEST_SECRET
    volume, target = redis["volumes"][0].split(":")
    assert target == "/data"
    assert volume in model["volumes"], "Redis keeps its data in a named volume"
    assert "ports" not in redis, "Redis is reached on the project's network only"
    assert "REDISCLI_AUTH" in redis["healthcheck"]["test"][1]


def test_redis_url_carries_the_password() -> None:
    for name, service in hotline_services(compose_model()).items():
        url = service["environment"]["HOTLINE_REDIS_URL"]
        assert url == f"redis://:{TEST_SECRET}@redis:6379/0", name


def test_hotline_variables_exist() -> None:
    known = known_variables()
    for path in (COMPOSE_FILE, ENV_EXAMPLE, SYSTEMD_ENV_EXAMPLE, *unit_files()):
        used = set(_HOTLINE_VARIABLE.findall(path.read_text(encoding="utf-8")))
        assert used <= known, f"{path.name}: {sorted(used - known)} not in store/environment.py"


def test_env_example_names_every_variable_compose_reads() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    named = example_variables(ENV_EXAMPLE)
    for name, op in references(text).items():
        assert name in named, f"compose.yaml reads {name}; .env.example does not name it"
        if op in {":?", "?"}:
            assert named[name], f"{name} is required: .env.example sets it (empty)"
    assert not set(named) & {"HOTLINE_REDIS_URL", "HOTLINE_CONFIG", "HOTLINE_DATA_DIR"}, (
        "compose.yaml sets these; a value in .env would be ignored"
    )


def test_env_file_stays_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/.env" in ignored or ".env" in ignored


# -- systemd units -------------------------------------------------------------------------


def test_one_unit_per_daemon() -> None:
    names = {path.name for path in unit_files()}
    assert names == {
        "hotline-scheduler.service",
        "hotline-worker@.service",
        "hotline-notifier.service",
        "hotline-recheck.service",
        "hotline-console.service",
    }
    started = set()
    for path in unit_files():
        (exec_start,) = unit_values(path, "ExecStart")
        started.add(shlex.split(exec_start)[1])
    assert started == DAEMONS


def test_unit_commands_parse() -> None:
    for path in unit_files():
        (exec_start,) = unit_values(path, "ExecStart")
        argv = shlex.split(exec_start)
        assert Path(argv[0]).name == "hotline", path.name
        try:
            parse_hotline(argv[1:])
        except click.ClickException as exc:
            pytest.fail(f"{path.name}: {exec_start}: {exc.format_message()}")


def test_units_are_hardened() -> None:
    for path in unit_files():
        for key, value in HARDENING.items():
            assert unit_values(path, key) == [value], f"{path.name}: {key}={value}"
        (state,) = unit_values(path, "StateDirectory")
        data_dir = f"/var/lib/{state}"
        assert unit_values(path, "ReadWritePaths") == [data_dir], path.name
        assert f"HOTLINE_DATA_DIR={data_dir}" in unit_values(path, "Environment")[0], path.name
        assert unit_values(path, "EnvironmentFile") == ["/etc/hotline/hotline.env"], path.name
        assert unit_values(path, "Restart") == ["always"], path.name


def test_worker_unit_stops_in_time() -> None:
    path = SYSTEMD_DIR / "hotline-worker@.service"
    argv = shlex.split(unit_values(path, "ExecStart")[0])
    stop_timeout = float(argv[argv.index("--stop-timeout") + 1])
    assert float(unit_values(path, "TimeoutStopSec")[0]) > stop_timeout


def test_systemd_env_example_sets_the_redis_url() -> None:
    named = example_variables(SYSTEMD_ENV_EXAMPLE)
    assert named.get("HOTLINE_REDIS_URL"), "without it every command starts its own Redis"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on each unit (the worker as instance 1), with ExecStart
    pointed at this environment's ``hotline`` so the command exists."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    hotline = Path(sys.executable).parent / "hotline"
    if not hotline.exists():
        pytest.skip("no hotline script next to the interpreter")
    copies = []
    for path in unit_files():
        (exec_start,) = unit_values(path, "ExecStart")
        installed = shlex.split(exec_start)[0]
        name = path.name.replace("@.service", "@1.service")
        copy = tmp_path / name
        copy.write_text(path.read_text(encoding="utf-8").replace(installed, str(hotline)))
        copies.append(str(copy))
    result = subprocess.run(
        ["systemd-analyze", "verify", *copies],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "hotline-" in line
    ]
    assert result.returncode == 0, result.stderr
    assert not complaints, "\n".join(complaints)
