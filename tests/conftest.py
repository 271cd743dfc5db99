"""Shared fixtures. Integration tests get ONE real Kafka broker per test session:

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set (a broker someone already runs);
2. else testcontainers' Kafka module (KRaft) when a Docker engine answers;
3. else the project's local launcher: Apache Kafka jars from Maven Central, run on Java 17.

Each test gets its own topic prefix, so tests never see each other's records.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from marketpipe.kafka_local import LocalKafka

    home = tmp_path_factory.mktemp("kafka-home")
    broker = LocalKafka(home=home, port=free_port(), progress=lambda msg: print(msg, file=sys.stderr))
    address = broker.up()
    try:
        yield address
    finally:
        broker.down()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def mp_env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for marketpipe code or subprocesses under test: the session broker, a
    private topic prefix, a private home, no metrics port conflicts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MARKETPIPE_TOPIC_PREFIX": topic_prefix,
        "MARKETPIPE_HOME": str(tmp_path / "home"),
        "MARKETPIPE_METRICS_PORT": "-1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def mp_settings(mp_env: dict[str, str]):
    """Settings for the test's private namespace, with every declared topic created."""
    from marketpipe import settings, topics

    s = settings.load(mp_env)
    topics.create_topics(s.kafka.client_config(), prefix=s.topic_prefix)
    return s
