"""marketpipe.testing, the pytest plugin downstream services use (and these tests run on): broker
choice, a running pipeline, and the example downstream project whose test the README shows."""

from __future__ import annotations

import re
import tomllib

import pytest

from marketpipe import testing
from tests.support.paths import ROOT

EXAMPLE = ROOT / "examples" / "downstream"


def no_docker() -> bool:
    return False


def docker() -> bool:
    return True


@pytest.mark.parametrize("env,docker_up,expected", [
    ({}, False, "local"),
    ({}, True, "docker"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"}, True, "external"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "MARKETPIPE_TEST_BROKER": "local"}, True, "local"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "MARKETPIPE_TEST_BROKER": "docker"}, True, "docker"),
    ({"MARKETPIPE_TEST_BROKER": "AUTO"}, False, "local"),
])
def test_broker_choice(env: dict[str, str], docker_up: bool, expected: str) -> None:
    assert testing.choose_broker(env, docker if docker_up else no_docker) == expected


def test_forcing_docker_without_an_engine_or_an_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match="no Docker engine answers"):
        testing.choose_broker({"MARKETPIPE_TEST_BROKER": "docker"}, no_docker)
    with pytest.raises(pytest.UsageError, match="use one of auto, docker, local"):
        testing.choose_broker({"MARKETPIPE_TEST_BROKER": "podman"}, docker)


def test_auto_falls_back_to_the_local_launcher_when_the_docker_broker_fails(monkeypatch, tmp_path) -> None:
    def failing() -> testing.Broker:
        raise RuntimeError("pull access denied\nfor cp-kafka")

    monkeypatch.setattr(testing, "start_docker_broker", failing)
    monkeypatch.setattr(testing, "start_local_broker", lambda home: testing.Broker("127.0.0.1:1", "local"))
    broker = testing.start_broker({}, tmp_path, docker)
    assert (broker.bootstrap, broker.kind) == ("127.0.0.1:1", "local (docker failed)")
    with pytest.raises(pytest.UsageError, match="the Docker broker cannot start: RuntimeError: pull access denied for"):
        testing.start_broker({"MARKETPIPE_TEST_BROKER": "docker"}, tmp_path, docker)


def test_the_local_image_is_told_to_advertise_the_mapped_host_port() -> None:
    env = testing.kafka_image_env(49153)
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://localhost:49153"
    assert env["KAFKA_LISTENERS"].startswith("PLAINTEXT://:9092")
    assert env["KAFKA_NODE_ID"] == "1" and env["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_the_plugin_is_registered_under_its_module_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {"marketpipe.testing": "marketpipe.testing"}
    assert "marketpipe" in tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["dependencies"]


def readme_downstream_test() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## For downstream services", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's downstream section shows a test"
    return blocks[0]


def test_the_readme_shows_the_example_test_verbatim() -> None:
    assert readme_downstream_test() == (EXAMPLE / "tests" / "test_vwap.py").read_text()
