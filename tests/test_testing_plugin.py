"""marketpipe.testing, the pytest plugin downstream services use (and these tests run on): broker
choice, a running pipeline, and the example downstream project whose test the README shows."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
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


@pytest.mark.integration
def test_pipeline_fixture_delivers_typed_ticks_and_quotes(mp_pipeline) -> None:
    from marketpipe.client import Quote, Tick

    mp_pipeline.start(jvquant=["600519"], infoway=["BTCUSDT"])
    ticks = mp_pipeline.wait_for_ticks(symbol="BTCUSDT", n=5, timeout=120)
    assert len(ticks) == 5 and all(isinstance(t, Tick) and t.provider == "infoway" for t in ticks)
    quotes = mp_pipeline.wait_for_quotes(symbol="600519.SH", n=2, timeout=60)
    assert all(isinstance(q, Quote) and q.last > 0 for q in quotes)
    with pytest.raises(AssertionError, match="0 of 1 md.tick records for NOPE.SH"):
        mp_pipeline.wait_for_ticks(symbol="NOPE.SH", n=1, timeout=2)


def readme_downstream_test() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## For downstream services", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's downstream section shows a test"
    return blocks[0]


def test_the_readme_shows_the_example_test_verbatim() -> None:
    assert readme_downstream_test() == (EXAMPLE / "tests" / "test_vwap.py").read_text()


def _entry_point_installed() -> bool:
    return any(ep.name == "marketpipe.testing" for ep in importlib.metadata.entry_points(group="pytest11"))


@pytest.mark.integration
def test_the_example_downstream_project_passes_on_the_session_broker(kafka_bootstrap: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    # An install made before the entry point existed (an old editable install) does not load the
    # plugin by itself; name it then. `-p` and the entry point share a name: never loaded twice.
    load = [] if _entry_point_installed() else ["-p", "marketpipe.testing"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *load],
                            cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "1 passed" in result.stdout
    assert f"marketpipe.testing: Kafka broker external at {kafka_bootstrap}" in output
