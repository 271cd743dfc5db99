"""How `marketpipe kafka up` picks its broker when a Docker engine answers: Compose v2 or v1, and only
with the broker image built; otherwise the local launcher."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from marketpipe.kafka import broker


class Docker:
    """Answers the docker commands `marketpipe kafka up` runs, as a machine with the given tools would."""

    def __init__(self, plugin: bool, image: bool) -> None:
        self.plugin, self.image = plugin, image

    def __call__(self, cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        ok = {("docker", "compose", "version"): self.plugin, ("docker", "image", "inspect"): self.image}
        return subprocess.CompletedProcess(cmd, 0 if ok.get(tuple(cmd[:3]), False) else 1)


@pytest.mark.parametrize("plugin,v1,image,expected", [
    (True, True, True, ["docker", "compose"]),
    (False, True, True, ["docker-compose"]),  # Debian's docker-compose package (Compose v1)
    (False, False, True, None),  # no Compose at all: the local launcher
    (True, True, False, None),  # Compose, but marketpipe/kafka:local is not built (make images)
])
def test_compose_only_with_a_compose_command_and_the_broker_image(monkeypatch: pytest.MonkeyPatch, plugin: bool,
                                                                  v1: bool, image: bool,
                                                                  expected: list[str] | None) -> None:
    monkeypatch.setattr(broker, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(broker.subprocess, "run", Docker(plugin, image))
    monkeypatch.setattr(broker.shutil, "which", lambda name: "/usr/bin/docker-compose" if v1 else None)
    assert broker.compose_kafka_ready() == expected


def test_no_engine_means_the_local_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker, "docker_engine_answers", lambda: False)
    assert broker.compose_kafka_ready() is None
