"""The raw Kafka sink: every received frame becomes one Kafka message, nothing is dropped.

* idempotent producer, ``acks=all``: no duplicates from internal retries, no loss on leader change;
* ``message.timeout.ms=0`` (infinite): during a broker outage librdkafka keeps retrying instead of
  expiring queued frames — the outage is ridden out, bounded by the local queue;
* the local queue is bounded (``queue.buffering.max.*``); when it is full, :meth:`send` blocks the
  receiving thread while serving delivery reports, so back-pressure reaches the socket (the
  provider's frames wait in TCP buffers) instead of memory growing or frames being dropped. The
  time spent blocked is counted;
* every delivery failure is counted and logged; a fatal producer error stops the process (non-zero
  exit) — there is no silent drop anywhere.

The same producer writes the connection's lifecycle (``FeedStatus`` records: connected,
disconnected, reconnected, filled) to ``md.status``, Avro-encoded, keyed by provider; the raw topic
holds only what the provider sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.clients import durable_producer_config
from marketpipe.kafka.quietlog import rdkafka_logger
from marketpipe.kafka.topics import PRODUCER_MAX_MESSAGE_BYTES
from marketpipe.producers import metrics as m
from marketpipe.rawframe import RawMeta
from marketpipe.settings import Settings

log = logging.getLogger(__name__)


class SinkFatal(RuntimeError):
    pass


class RawSink:
    def __init__(self, settings: Settings, provider: str, topic: str, *, queue_messages: int = 200_000,
                 queue_kbytes: int = 262_144, extra: dict[str, Any] | None = None) -> None:
        from confluent_kafka import Producer

        self.provider = provider
        self.topic = topic
        self.settings = settings
        self.status_topic = settings.topic(topics.MD_STATUS)
        self._status_encoder: Any = None
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.fatal: Exception | None = None
        conf = durable_producer_config(settings.kafka.client_config(), {
            "compression.type": "lz4",
            "linger.ms": 5,
            "message.timeout.ms": 0,
            "queue.buffering.max.messages": queue_messages,
            "queue.buffering.max.kbytes": queue_kbytes,
            "error_cb": self._on_error,
            "message.max.bytes": PRODUCER_MAX_MESSAGE_BYTES,  # what raw topics accept
            **rdkafka_logger(),  # librdkafka's retry lines through the repeat filter, not raw stderr
            **(extra or {}),
        })
        self.producer = Producer(conf)

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            self.fatal = SinkFatal(f"Kafka producer fatal error: {err}")
            log.critical("%s", self.fatal)
        else:  # e.g. all brokers down: librdkafka keeps retrying, frames stay queued
            log.warning("Kafka: %s (frames stay queued and are retried)", err)
            m.ERRORS.labels(self.provider, "kafka").inc()

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        m.ERRORS.labels(self.provider, "delivery").inc()
        log.error("frame seq=%s NOT delivered to %s: %s", dict(msg.headers() or []).get("seq", b"?").decode(),
                  self.topic, err)
        if err.fatal():
            self.fatal = SinkFatal(f"delivery failed fatally: {err}")

    def send(self, value: bytes, meta: RawMeta) -> None:
        if self.fatal is not None:
            raise self.fatal
        self._produce(self.topic, value, meta.connection.encode(), on_delivery=self._on_delivery, headers=meta.headers())
        self.sent += 1
        m.QUEUE.labels(self.provider).set(len(self.producer))

    def _produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any, **kw: Any) -> None:
        """Produce, waiting (never dropping) while the local queue is full; the wait is logged and counted."""
        blocked_since = None
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=on_delivery, **kw)
                break
            except BufferError:
                if blocked_since is None:
                    blocked_since = time.monotonic()
                    log.warning("local Kafka queue full (%d frames waiting): holding the socket until it drains",
                                len(self.producer))
                self.producer.poll(0.1)
                if self.fatal is not None:
                    raise self.fatal from None
        if blocked_since is not None:
            m.BLOCKED.labels(self.provider).inc(time.monotonic() - blocked_since)
        self.producer.poll(0)

    def status(self, record: dict[str, Any]) -> None:
        """Write one FeedStatus record to md.status (same producer, same no-drop rules)."""
        if self._status_encoder is None:
            from marketpipe.schemas import codec as codec_mod

            self._status_encoder = codec_mod.from_settings(self.settings).encoder("FeedStatus", self.status_topic)
        self._produce(self.status_topic, self._status_encoder(record), record["provider"].encode(),
                      on_delivery=self._on_status_delivery, timestamp=record["event_time"])

    def _on_status_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            m.ERRORS.labels(self.provider, "delivery").inc()
            log.error("status record NOT delivered to %s: %s", self.status_topic, err)

    def close(self, timeout: float = 30.0) -> int:
        """Flush what is queued; returns (and logs) how many frames could not be delivered in time."""
        remaining = self.producer.flush(timeout)
        if remaining:
            log.error("%d frames still queued after %.0f s (Kafka unreachable?): they are lost when this "
                      "process exits", remaining, timeout)
        return int(remaining)
