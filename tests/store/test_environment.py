"""Every HOTLINE_* variable is read in one module: values, defaults, one error naming the
variable; the one yes/no parser the crawler, the CLI and the provider directory share."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.config import Config
from hotline.errors import UsageError
from store import environment
from store.environment import (
    ENV_ALLOW_PRIVATE,
    ENV_CONFIG,
    ENV_KEY_PREFIX,
    ENV_REDIS_URL,
    ENV_SCHEDULE_MIN_INTERVAL,
    FALSE_SPELLINGS,
    TRUE_SPELLINGS,
    parse_bool,
)
from store.errors import EnvironmentVariableError, StoreError
from takedown.directory import ProviderDirectory
from takedown.errors import DirectoryError


@pytest.mark.parametrize("text", ["1", "true", "TRUE", " yes ", "y", "On"])
def test_true_spellings(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "No", "n", "OFF", "", "  "])
def test_false_spellings(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["maybe", "2", "enabled", "tru"])
def test_anything_else_is_not_a_yes_or_no(text: str) -> None:
    with pytest.raises(ValueError, match="is not true or false"):
        parse_bool(text)


def test_the_spellings_do_not_overlap() -> None:
    assert not TRUE_SPELLINGS & FALSE_SPELLINGS


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False)])
def test_allow_private_networks(value: str, expected: bool) -> None:
    assert environment.allow_private_networks({ENV_ALLOW_PRIVATE: value}) is expected
    assert environment.allow_private_networks({}) is False


def test_a_bad_value_is_an_error_naming_the_variable() -> None:
    with pytest.raises(EnvironmentVariableError) as caught:
        environment.allow_private_networks({ENV_ALLOW_PRIVATE: "Maybe"})
    assert str(caught.value) == "HOTLINE_ALLOW_PRIVATE_NETWORKS: expected 1 or 0, got 'maybe'"
    assert caught.value.variable == ENV_ALLOW_PRIVATE
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value, ValueError)


def test_allow_private_networks_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "on")
    assert environment.allow_private_networks() is True
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "perhaps")
    with pytest.raises(EnvironmentVariableError, match=ENV_ALLOW_PRIVATE):
        environment.allow_private_networks()


def test_redis_url_blank_means_the_embedded_server() -> None:
    assert environment.redis_url({}) is None
    assert environment.redis_url({ENV_REDIS_URL: "  "}) is None
    assert environment.redis_url({ENV_REDIS_URL: "redis://h:1/0"}) == "redis://h:1/0"


def test_key_prefix() -> None:
    assert environment.key_prefix({}) == "hotline:"
    assert environment.key_prefix({ENV_KEY_PREFIX: "lab:"}) == "lab:"
    with pytest.raises(EnvironmentVariableError, match=f"^{ENV_KEY_PREFIX}: "):
        environment.key_prefix({ENV_KEY_PREFIX: "no spaces here"})


def test_config_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert environment.config_path({"HOTLINE_DATA_DIR": str(data)}) is None
    data.mkdir()
    (data / "hotline.toml").write_text("", encoding="utf-8")
    assert environment.config_path({"HOTLINE_DATA_DIR": str(data)}) == data / "hotline.toml"
    explicit = tmp_path / "other.toml"
    explicit.write_text("", encoding="utf-8")
    env = {"HOTLINE_DATA_DIR": str(data), ENV_CONFIG: str(explicit)}
    assert environment.config_path(env) == explicit
    with pytest.raises(EnvironmentVariableError, match=f"^{ENV_CONFIG}: .*: no such file$"):
        environment.config_path({ENV_CONFIG: str(tmp_path / "missing.toml")})


def test_schedule_min_interval() -> None:
    assert environment.schedule_min_interval({}) is None
    assert environment.schedule_min_interval({ENV_SCHEDULE_MIN_INTERVAL: "1s"}) == 1.0
    with pytest.raises(EnvironmentVariableError, match=f"^{ENV_SCHEDULE_MIN_INTERVAL}: "):
        environment.schedule_min_interval({ENV_SCHEDULE_MIN_INTERVAL: "never"})


def test_config_turns_a_bad_value_into_a_usage_error(tmp_path: Path) -> None:
    env = {"HOTLINE_DATA_DIR": str(tmp_path), ENV_ALLOW_PRIVATE: "sometimes"}
    with pytest.raises(UsageError, match=r"^HOTLINE_ALLOW_PRIVATE_NETWORKS: expected 1 or 0"):
        Config.from_env(env)
    config = Config.from_env({"HOTLINE_DATA_DIR": str(tmp_path), ENV_ALLOW_PRIVATE: "yes"})
    assert config.allow_private_networks is True
    assert config.data_dir == tmp_path
    assert config.redis_url is None


def test_the_provider_directory_reads_yes_and_no_alike() -> None:
    values = ["1", "yes", "Y", "on", "0", "no", "n", "off", ""]
    rows = "".join(f"P{i},a@p{i}.example,{value}\n" for i, value in enumerate(values))
    directory = ProviderDirectory.from_csv("name,abuse,cdn\n" + rows, source="test")
    assert [p.cdn for p in directory.providers] == [parse_bool(v) for v in values]
    assert [p.cdn for p in directory.providers] == [True] * 4 + [False] * 5
    with pytest.raises(DirectoryError, match="'maybe' is not true or false"):
        ProviderDirectory.from_csv("name,abuse,cdn\nP,a@p.example,maybe\n", source="test")
