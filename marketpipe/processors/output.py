"""Where the processor's records go: Avro encoders and one confluent-kafka producer.

The agents write through :class:`Output` (measured much faster than Faust's own send path) and
make each batch durable (:func:`durable`) **before** Faust acknowledges its offsets, so a crash
can never commit a frame whose records were not written: delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.clients import durable_producer_config
from marketpipe.kafka.delivery import Deliveries, wait_acknowledged
from marketpipe.kafka.quietlog import rdkafka_logger
from marketpipe.processors import metrics
from marketpipe.processors.deadletter import omit_raw
from marketpipe.processors.profile import profile
from marketpipe.schemas import codec as codec_mod
from marketpipe.settings import Settings

log = logging.getLogger("processors")

#: Kafka 4 refuses record timestamps more than 1 h ahead (log.message.timestamp.after.max.ms)
FUTURE_LIMIT_MS = 30 * 60 * 1000
#: a record this close to falling out of its topic's retention is stamped "now" (the broker checks
#: retention every few minutes; a record of a day's retention stamped 23 h ago would soon be gone)
RETENTION_MARGIN_MS = 3600 * 1000


def retention_ms(logical_topic: str) -> int:
    """The declared time retention of a topic (marketpipe/kafka/topics.py); 0 for a compacted one or
    one not declared."""
    try:
        spec = topics.by_name(logical_topic)
    except KeyError:
        return 0
    if "delete" not in spec.config.get("cleanup.policy", "delete"):
        return 0
    return int(spec.config.get("retention.ms", 0))


def fail_stop(what: str) -> None:
    """Exit at once, without acknowledging anything.

    Faust acknowledges a ``take_events`` batch when the batch loop is left, even by an exception,
    and commits acknowledged offsets in the background. A batch whose records were not written
    must therefore never raise out of the loop: the process ends here instead, its offsets stay
    uncommitted, and the restarted worker (supervisor, Kubernetes, ``marketpipe demo``) reads the
    batch again. At-least-once beats a silent gap.
    """
    log.critical("%s: stopping this worker without committing; its frames will be read again on restart", what)
    logging.shutdown()
    os._exit(70)


class Output:
    """Avro encoders and the confluent-kafka producer the agents write through."""

    def __init__(self, s: Settings, producer: Any = None) -> None:
        self.settings = s
        self.codec = codec_mod.from_settings(s)
        self.encoders: dict[str, Any] = {}
        self.deliveries = Deliveries(log)  # the producer's failed records (flush() alone reads them as written)
        self.retention_ms: dict[str, int] = {}  # logical topic -> its declared retention (0: none by time)
        self.producer = producer if producer is not None else self._producer(s)
        self.counts: dict[str, int] = {}
        self.reported: dict[str, int] = {}

    def _producer(self, s: Settings) -> Any:
        from confluent_kafka import Producer

        return Producer(durable_producer_config(s.kafka.client_config(), {
                         "linger.ms": profile(s.processor.profile).linger_ms, "compression.type": "lz4",
                         "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 500000,
                         # a dead letter may carry a raw frame as large as raw topics take
                         "message.max.bytes": topics.PRODUCER_MAX_MESSAGE_BYTES,
                         **rdkafka_logger(),
                         # a Python callback per record costs GIL time on the hot path; only
                         # failures need one (flush() still counts what was not written)
                         "delivery.report.only.error": True,
                         # set once here, not per produce() call (0.8 µs less per record)
                         "on_delivery": self.deliveries}))

    def report(self) -> None:
        """Advance the Prometheus counters by what was written since the last report."""
        for topic, n in self.counts.items():
            delta = n - self.reported.get(topic, 0)
            if delta:
                metrics.RECORDS.labels(topic).inc(delta)
                self.reported[topic] = n

    def encode(self, logical_topic: str, schema: str, key: str, record: dict[str, Any],
               timestamp: int) -> tuple[str, bytes, bytes, int, str]:
        """Everything ``produce`` needs; raises if the record does not fit its schema."""
        topic = self.settings.topic(logical_topic)
        enc = self.encoders.get(topic)
        if enc is None:
            enc = self.encoders[topic] = self.codec.encoder(schema, topic)
        return topic, key.encode(), enc(record), self.stamp(logical_topic, timestamp, int(time.time() * 1000)), \
            logical_topic

    def stamp(self, logical_topic: str, event_ms: int, now_ms: int) -> int:
        """The Kafka timestamp of a record: its event time, or ``now_ms`` where the broker would not keep
        that. Brokers refuse timestamps too far in the future (Kafka 4: log.message.timestamp.after.max.ms
        = 1 h: a provider clock ahead, a time misdated by a day), and delete at their next retention check
        a record older than its topic's retention (a redriven or replayed record of long ago). Either keeps
        its exact ``event_time`` field."""
        if event_ms > now_ms + FUTURE_LIMIT_MS:
            return now_ms
        keep = self.retention_ms.get(logical_topic)
        if keep is None:
            keep = self.retention_ms[logical_topic] = retention_ms(logical_topic)
        if keep and event_ms < now_ms - keep + RETENTION_MARGIN_MS:
            return now_ms
        return event_ms

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int = 0, logical: str = "") -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, timestamp=timestamp)
                break
            except BufferError:  # local queue full: let deliveries drain, never drop
                self.producer.poll(0.05)
        if logical:
            self.counts[logical] = self.counts.get(logical, 0) + 1

    def send(self, logical_topic: str, schema: str, key: str, record: dict[str, Any], timestamp: int) -> None:
        self.produce(*self.encode(logical_topic, schema, key, record, timestamp))

    def dead_letter(self, letter: dict[str, Any], key: str) -> None:
        """Write a dead letter; one too large to carry its frame carries the frame's digest instead."""
        letter.setdefault("raw_length", len(letter["raw"]))
        item = self.encode(topics.MD_DLQ, "DeadLetter", key, letter, letter["event_time"])
        if len(item[2]) > topics.DEAD_LETTER_SAFE_BYTES:
            item = self.encode(topics.MD_DLQ, "DeadLetter", key, omit_raw(letter), letter["event_time"])
        src = letter["source"]
        log.warning("dead-lettered %s[%d]@%d: %s", src["topic"], src["partition"], src["offset"], letter["reason"])
        self.produce(*item)

    def _wait(self, limit: float | None) -> str | None:
        unwritten = wait_acknowledged(self.producer.flush, self.deliveries, "processor output", log, limit=limit)
        return None if unwritten is None else str(unwritten)

    async def flush(self) -> str | None:
        """Wait until every record sent so far is written, however long Kafka takes to acknowledge them
        (a paused or restarting broker); a description of what failed, else None."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._wait, None)

    def flush_now(self, limit: float = 60.0) -> str | None:
        """The same, giving up after ``limit`` seconds (the worker is stopping)."""
        return self._wait(limit)


async def durable(out: Output) -> None:
    """Return once every record of the batch is written. A broker that is only slow (paused, electing a
    leader) is waited for, logged every 30 s; a batch with a record Kafka gave up on ends the worker
    (see :func:`fail_stop`) instead of being acknowledged."""
    try:
        problem = await out.flush()
    except asyncio.CancelledError:
        # The worker is stopping and Faust acknowledges this batch as the loop unwinds: its records
        # must be written before that, so finish the flush here, synchronously.
        problem = out.flush_now()
        if problem:
            fail_stop(problem)
        raise
    if problem:
        fail_stop(problem)


def refused(exc: Exception) -> bool:
    """A record Kafka refuses for what it is (too large ...), not because the producer is broken."""
    err: Any = exc.args[0] if exc.args else None
    return not (hasattr(err, "fatal") and err.fatal())
