"""The local launcher: `kafka up` gives a real broker, twice gives the same one, `down` stops it.

This test owns a second broker on purpose: it exercises start and stop, which the
session broker other tests share must not undergo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer

from marketpipe.runtime.localhost import free_port


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", "kafka", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_up_produce_consume_up_again_down(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    port = free_port()
    env.update(MARKETPIPE_HOME=str(tmp_path), MARKETPIPE_KAFKA_PORT=str(port))
    bootstrap = f"127.0.0.1:{port}"
    try:
        first = cli(env, "up", "--local")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == bootstrap
        pid = (tmp_path / "kafka" / "broker.pid").read_text()

        topic = f"lifecycle-{uuid.uuid4().hex[:6]}"
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=b"k", value=b"\x00binary\xff")
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lc", "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        msg = None
        for _ in range(60):
            msg = consumer.poll(1)
            if msg is not None and not msg.error():
                break
        consumer.close()
        assert msg is not None and msg.value() == b"\x00binary\xff" and msg.key() == b"k"

        second = cli(env, "up", "--local")
        assert second.returncode == 0
        assert "already running" in second.stderr
        assert (tmp_path / "kafka" / "broker.pid").read_text() == pid

        assert cli(env, "status").returncode == 0
    finally:
        down = cli(env, "down", "--local")
    assert down.returncode == 0 and "stopped" in down.stderr
    status = cli(env, "status")
    assert status.returncode == 1 and status.stdout.startswith("stopped")


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # a PATH with python but neither java nor mvn
    (bindir / "python").symlink_to(sys.executable)
    env.update(MARKETPIPE_HOME=str(tmp_path), MARKETPIPE_KAFKA_PORT=str(free_port()), PATH=str(bindir))
    run = cli(env, "up", "--local")
    assert run.returncode == 1
    assert "Java is not installed" in run.stderr and "openjdk-17" in run.stderr
