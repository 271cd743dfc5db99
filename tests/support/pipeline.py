"""Shared by the integration tests that run pipeline processes on the session broker: bar and
trade-id bookkeeping here; starting, stopping and reading processes in ``marketpipe.testing``."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from marketpipe import settings as settings_mod

# the process helpers live once, in the pytest plugin downstream services use too
from marketpipe.testing import read_topic, start_producer, start_worker, stop_worker, wait_for  # noqa: F401


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
    while True:  # each read lasts at least its idle second: that paces the polling
        diff = bar_differences(final_bars(read_topic(s, "md.bar", idle=1)), expected)
        if not diff or time.monotonic() > deadline:
            return diff


def _passing() -> frozenset[int]:
    from confluent_kafka import KafkaError

    return frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TRANSPORT,
                      KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN, KafkaError.UNKNOWN_TOPIC_OR_PART})


@contextmanager
def raw_counter(s: settings_mod.Settings, provider: str) -> Iterator[Callable[[], int]]:
    """A function counting the records on ``raw.<provider>``: the sum of its high watermarks (the
    producer is idempotent, not transactional, so every offset is one frame); -1 while a broker
    cannot say yet."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    passing = _passing()
    topic = s.topic(f"raw.{provider}")
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}"})

    def count() -> int:
        try:
            return sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if err is not None and (err.retriable() or err.code() in passing):
                return -1  # a broker just back or a leader moving (NOT_LEADER_FOR_PARTITION): ask again
            raise

    try:
        parts = [TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        yield count
    finally:
        consumer.close()


def quiesce(sim: Any, s: settings_mod.Settings, exact: bool = True, timeout: float = 60.0) -> dict[str, Any]:
    """Stop the simulator's pushes (socket kept open) and wait until its producer has put every
    frame the simulator sent on the raw topic; the simulator's counters then.

    ``exact=False`` for Jin10: the simulator counts a long-poll body as one frame, the producer
    writes each packet in it, so the topic holds at least (not exactly) what was sent."""
    sim.sim.fault("stall", 600)
    polls: list[tuple[dict[str, Any], int]] = []
    with raw_counter(s, sim.stats()["provider"]) as on_topic:
        def landed() -> bool:
            polls.append((sim.stats(), on_topic()))
            sent, got = polls[-1][0]["totals"].get("frames", 0), polls[-1][1]
            # the same counts twice in a row: a frame the simulator was still writing is counted too
            return (got == sent if exact else got >= sent) and len(polls) > 1 and polls[-2] == polls[-1]

        wait_for(landed, timeout, what=lambda: "the raw topic holding every frame the simulator sent: "
                 f"sent {polls[-1][0]['totals'].get('frames', 0)}, on the topic {polls[-1][1]}")
    return polls[-1][0]


def sent_trade_ids(record: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in record.read_text().splitlines():
        for row in json.loads(line).get("rows", []):
            for tid in row.get("trade_ids", []):
                ids[f"{row.get('code', '')}:{tid}"] += 1
    return ids
