"""The trade consumer under test on a real broker: its environment, a jvQuant trade simulator with a
counter (the module fixture ``stack``), one trader process per module (``trader``), and the
order.events reader (``Events``). Shared by the integration tests of the trader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.schemas.codec import Codec
from marketpipe.simulators.runner import run as run_sim
from marketpipe.testing import wait_for

KEY = "test-signing-key"
ACCOUNT = "000000000042"
REFERENCE = {"600519.SH": {"prev_close": "1500.00", "name": "贵州茅台"},
             "000001.SZ": {"prev_close": "11.00", "name": "平安银行"},
             "300750.SZ": {"prev_close": "200.00", "name": "宁德时代"}}


class Events:
    """Reads order.events from the beginning and waits for conditions."""

    def __init__(self, settings: settings_mod.Settings) -> None:
        self.consumer = Consumer({**settings.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False})
        topic = settings.topic(topics.ORDER_EVENTS)
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.seen: list[dict[str, Any]] = []
        self.codec = Codec()

    def of(self, command_id: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["command_id"] == command_id]

    def wait(self, cond: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(500, timeout=0.2):
                if not msg.error():
                    self.seen.append(self.codec.decode(msg.value(), expect="OrderEvent").record)
            if cond():
                return
        raise AssertionError(f"condition not met in {timeout}s; events: "
                             + json.dumps([(e["command_id"][-6:], e["state"], e["rule"]) for e in self.seen]))

    def states(self, command_id: str) -> list[str]:
        return [e["state"] for e in self.of(command_id)]

    def close(self) -> None:
        self.consumer.close()


def trader_env(kafka_bootstrap: str, tmp: Path, base_url: str, *, account: str = ACCOUNT, key: str = KEY,
               **extra: str) -> dict[str, str]:
    """The environment of a trader under test: a private topic prefix and home, the jvQuant trade API
    at ``base_url``, a broker account and signing key, the reference names (``REFERENCE``, written to
    ``tmp``), fast polling; ``extra`` adds or overrides."""
    reference = tmp / "reference.json"
    reference.write_text(json.dumps(REFERENCE, ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "JVQUANT_"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MARKETPIPE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
        "MARKETPIPE_HOME": str(tmp / "home"), "MARKETPIPE_METRICS_PORT": "-1", "PYTHONUNBUFFERED": "1",
        "JVQUANT_BASE_URL": base_url, "JVQUANT_TOKEN": "tok", "JVQUANT_TRADE_ACCOUNT": account,
        "JVQUANT_TRADE_PASSWORD": "pw", "MARKETPIPE_ORDER_SIGNING_KEY": key,
        "MARKETPIPE_TRADER_REFERENCE": str(reference), "MARKETPIPE_TRADER_POLL_SECONDS": "0.3", **extra,
    })
    return env


def with_topics(env: dict[str, str]) -> settings_mod.Settings:
    """The settings of a trader environment, its topics created on the broker."""
    s = settings_mod.load(env)
    topics.create_topics(s.kafka.client_config(), prefix=s.topic_prefix)
    return s


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("trade")
    counter = TradeCounter(fill_seconds=1.0)
    with run_sim("jvquant", rate=1, extra_routes=counter.add_routes) as sim:
        env = trader_env(kafka_bootstrap, tmp, sim.base_url, MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL="1000000")
        s = with_topics(env)
        yield {"env": env, "settings": s, "counter": counter, "tmp": tmp}


def start_trader(env: dict[str, str], log: Path, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "marketpipe", "trade"], env={**env, **(extra or {})},
                            stdout=out, stderr=subprocess.STDOUT)


def wait_log(log: Path, text: str, count: int, timeout: float = 30.0) -> None:
    """Wait until the trader has logged ``text`` ``count`` times (it applied a control record)."""
    wait_for(lambda: log.read_text(errors="replace").count(text) >= count, timeout, step=0.05,
             what=lambda: f"{text!r} logged {count} times; log: " + log.read_text(errors="replace")[-2000:])


@pytest.fixture(scope="module")
def trader(stack: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_trader(stack["env"], stack["tmp"] / "marketpipe.trader.log")
    yield proc
    proc.terminate()
    proc.wait(30)
