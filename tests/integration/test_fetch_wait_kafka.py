"""The worker's Kafka consumer on a real broker: a worker that was briefly busy does not leave its
busy partition waiting behind a fetch of quiet ones.

Faust's consumer thread keeps fetching while the agents are busy. Records it fetched but the
worker has not yet taken for more than aiokafka's prefetch backoff (100 ms) make it fetch the
other, quiet partitions alone; with Faust's fixed 1,500 ms broker wait that request holds the
busy partition back for 1.5 s. The consumer here is the one the worker builds, from the profile
(marketpipe/processors/faust_consumer.py, fetch_wait)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from marketpipe.processors.app import build_app


def make_topics(s: Any) -> tuple[str, str]:
    busy, quiet = s.topic("fw.busy"), s.topic("fw.quiet")
    admin = AdminClient(s.kafka.client_config())
    for future in admin.create_topics([NewTopic(busy, 1, 1), NewTopic(quiet, 3, 1)]).values():
        future.result(30)
    return busy, quiet


async def ages_after_a_busy_moment(s: Any, busy: str, quiet: str, hold: float) -> list[float]:
    """Take records for 1.5 s, take none for ``hold`` seconds (the fetcher goes on), then take
    them for 2 s: the age of each record taken after the hold, in seconds."""
    app = build_app(s)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    consumer.subscribe([busy, quiet])
    await consumer.start()
    try:
        ages: list[float] = []
        await consumer.getmany(timeout_ms=10_000)  # joined and fetching
        start = time.time()
        while time.time() - start < 1.5:
            await consumer.getmany(timeout_ms=100)
        await asyncio.sleep(hold)
        resumed = time.time()
        while time.time() - resumed < 2.0:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                ages += [now - float(r.value) for r in records]
        return ages
    finally:
        await consumer.stop()


@pytest.mark.parametrize("profile", ["latency", "throughput"])
def test_a_busy_partition_is_not_held_behind_a_fetch_of_quiet_ones(mp_env: dict[str, str], mp_settings: Any,
                                                                   profile: str) -> None:
    s = mp_settings.with_env(MARKETPIPE_PROCESSOR_PROFILE=profile, MARKETPIPE_PROCESSOR_AGENTS="normalize")
    busy, quiet = make_topics(s)
    stop = threading.Event()

    def write() -> None:  # ~500 records a second, each holding its send time
        producer = Producer({**s.kafka.client_config(), "linger.ms": 1})
        while not stop.is_set():
            producer.produce(busy, str(time.time()).encode())
            producer.poll(0)
            time.sleep(0.002)
        producer.flush(10)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        ages = asyncio.run(ages_after_a_busy_moment(s, busy, quiet, hold=0.3))
    finally:
        stop.set()
        writer.join(15)
    assert len(ages) > 200
    # the backlog of the hold (0.3 s) plus at most the profile's wait, not Faust's 1.5 s on top
    assert max(ages) < 1.0, f"a record waited {max(ages) * 1000:.0f} ms"
