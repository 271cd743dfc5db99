"""docker-compose.yml really runs: the whole stack comes up with one `up -d`, market data reaches
md.tick, a signed order produces order events, and `down -v` leaves nothing behind.

Needs a Docker engine (skipped, saying so, when none answers) and the images of `make images`.
Compose v1 (Debian's docker-compose) is used when installed, else `docker compose` (v2).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import uuid
from typing import Callable, Iterator

import pytest

from marketpipe.runtime.localhost import free_port
from tests.support.paths import ROOT

IMAGES = ("marketpipe/marketpipe:local", "marketpipe/kafka:local")
ACCOUNT = "000000000001"  # the compose file's default JVQUANT_TRADE_ACCOUNT (the demo's)

def _run(cmd: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return _run(["docker", "info"], timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if _run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    return None


def leftovers(project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes Compose labelled with this project name."""
    label = f"label=com.docker.compose.project={project}"
    found = {}
    for kind, cmd in (("containers", ["docker", "ps", "-a", "-q"]), ("networks", ["docker", "network", "ls", "-q"]),
                      ("volumes", ["docker", "volume", "ls", "-q"])):
        found[kind] = _run([*cmd, "--filter", label]).stdout.split()
    return found


def wait_for(cond: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
    raise AssertionError(f"{what} not seen in {timeout:.0f} s\n{logs()}")


class Stack:
    """One compose project under a unique name, on a free host port for the broker."""

    def __init__(self, compose: list[str]) -> None:
        self.project = f"mpsmoke{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.key = secrets.token_hex(16)
        self.base = [*compose, "-p", self.project, "-f", str(ROOT / "docker-compose.yml")]
        # only this test's settings reach the compose file: no token or broker of the caller's
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("KAFKA_", "MARKETPIPE_", "JVQUANT_", "INFOWAY_", "JIN10_",
                                         "SCHEMA_REGISTRY", "PROCESSOR_", "COMPOSE_"))}
        self.env.update({"KAFKA_HOST_PORT": str(self.port), "MARKETPIPE_ORDER_SIGNING_KEY": self.key})

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run([*self.base, *args], timeout=timeout, env=self.env, cwd=ROOT)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "30").stdout[-6000:]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not docker_answers():
        pytest.skip("no Docker engine answers (`docker info` failed): the compose smoke test needs one; "
                    ".ci/run installs and starts it where it can")
    compose = compose_command()
    assert compose, "a Docker engine answers but neither docker-compose nor `docker compose` is installed"
    missing = [image for image in IMAGES if _run(["docker", "image", "inspect", image]).returncode != 0]
    assert not missing, f"images {missing} are not built: run `make images`"
    s = Stack(compose)
    try:
        up = s.compose("up", "-d", timeout=300)
        assert up.returncode == 0, f"docker-compose up failed:\n{up.stderr[-3000:]}\n{s.logs()}"
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)


def consumer(stack: Stack, topic: str):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": f"smoke-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    return c


def test_every_service_runs_and_ticks_reach_md_tick(stack: Stack) -> None:
    from marketpipe.schemas.codec import Codec

    ps = stack.compose("ps").stdout
    for service in ("kafka", "sim-jvquant", "sim-infoway", "sim-jin10", "producer-jvquant", "producer-infoway",
                    "producer-jin10", "processor", "trader"):
        assert f"{stack.project}_{service}_1" in ps or f"{stack.project}-{service}-1" in ps, ps
    ticks: list[dict] = []
    c = consumer(stack, "md.tick")
    codec = Codec()

    def seen() -> bool:
        for msg in c.consume(500, timeout=0.5):
            if not msg.error():
                ticks.append(codec.decode(msg.value(), expect="Tick").record)
        return {"jvquant", "infoway"} <= {t["provider"] for t in ticks}

    try:
        # each producer -> raw topic -> processor -> md.tick, all inside the compose network
        wait_for(seen, 180, "jvquant and infoway ticks on md.tick", stack.logs)
    finally:
        c.close()
    assert all(t["symbol"] and t["price"] for t in ticks), ticks[:3]


def test_signed_orders_produce_order_events(stack: Stack) -> None:
    from marketpipe.schemas.codec import Codec

    def place(volume: int) -> str:
        run = stack.compose("exec", "-T", "trader", "marketpipe", "order", "place", "--account", ACCOUNT,
                            "--symbol", "600519.SH", "--side", "buy", "--price", "1500.00", "--volume", str(volume))
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.strip().splitlines()[-1]

    good, odd_lot = place(100), place(150)
    events: list[dict] = []
    c = consumer(stack, "order.events")
    codec = Codec()

    def states(command_id: str) -> list[str]:
        return [e["state"] for e in events if e["command_id"] == command_id]

    def seen() -> bool:
        for msg in c.consume(500, timeout=0.5):
            if not msg.error():
                events.append(codec.decode(msg.value(), expect="OrderEvent").record)
        return "SUBMITTED" in states(good) and "REJECTED" in states(odd_lot)

    try:
        wait_for(seen, 120, "SUBMITTED and REJECTED order events", stack.logs)
    finally:
        c.close()
    assert states(good)[0] == "ACCEPTED", events
    rejected = next(e for e in events if e["command_id"] == odd_lot and e["state"] == "REJECTED")
    assert rejected["rule"] == "lot_size", rejected


def test_down_removes_containers_networks_and_volumes(stack: Stack) -> None:
    assert any(leftovers(stack.project).values())  # the stack is up: the check can see it
    down = stack.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=180)
    assert down.returncode == 0, down.stderr[-2000:]
    assert leftovers(stack.project) == {"containers": [], "networks": [], "volumes": []}
