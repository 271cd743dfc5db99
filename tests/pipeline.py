"""Shared by the integration tests that run pipeline processes on the session broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from marketpipe import settings as settings_mod
from schemas.codec import Codec


def read_topic(s: settings_mod.Settings, logical: str, idle: float = 3.0, until: int | None = None,
               timeout: float = 60.0) -> list[dict[str, Any]]:
    topic = s.topic(logical)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    codec, out = Codec(), []
    start = last = time.monotonic()
    while time.monotonic() - last < idle and time.monotonic() - start < timeout:
        for msg in consumer.consume(1000, timeout=0.3):
            if not msg.error():
                out.append(codec.decode(msg.value()).record)
                last = time.monotonic()
        if until is not None and len(out) >= until:
            break
    consumer.close()
    return out


def source_key(r: dict[str, Any]) -> tuple[Any, ...]:
    src = r["source"]
    return src["topic"], src["partition"], src["offset"], src["index"]


def final_bars(bars: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for b in bars:
        key = (b["provider"], b["symbol"], b["window_start"])
        if key not in latest or b["revision"] > latest[key]["revision"]:
            latest[key] = b
    return latest


def bar_differences(got: dict[tuple[str, str, int], dict[str, Any]],
                    expected: dict[tuple[str, str, int], dict[str, Any]]) -> list[str]:
    """Readable field-by-field differences between final bars and offline bars (revision ignored)."""
    out = [f"missing bar {k}" for k in expected.keys() - got.keys()]
    out += [f"unexpected bar {k}" for k in got.keys() - expected.keys()]
    for k in expected.keys() & got.keys():
        for field, want in expected[k].items():
            if field != "revision" and got[k].get(field) != want:
                out.append(f"{k} {field}: got {got[k].get(field)!r}, expected {want!r}")
    return sorted(out)


def wait_for_bars(s: settings_mod.Settings, expected: dict[tuple[str, str, int], dict[str, Any]],
                  timeout: float = 90.0) -> list[str]:
    """Poll md.bar until its final bars equal ``expected``; the remaining differences otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        diff = bar_differences(final_bars(read_topic(s, "md.bar", idle=1)), expected)
        if not diff or time.monotonic() > deadline:
            return diff
        time.sleep(1)


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "marketpipe", "process", "--bar-interval", "1s",
                             "--bar-grace", "300ms", *args], env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def start_producer(env: dict[str, str], provider: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "marketpipe", "produce", provider, *args], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(cond, timeout: float = 30.0, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError("condition not met in time")


def quiesce(sim: Any) -> dict[str, Any]:
    """Stop the simulator's pushes (socket kept open), let in-flight frames arrive, return its counters."""
    sim.sim.fault("stall", 600)
    time.sleep(1.5)
    return sim.stats()


def sent_trade_ids(record: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in record.read_text().splitlines():
        for row in json.loads(line).get("rows", []):
            for tid in row.get("trade_ids", []):
                ids[f"{row.get('code', '')}:{tid}"] += 1
    return ids
