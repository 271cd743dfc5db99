"""The trade consumer's durable memory: one entry per command id on a compacted topic.

The entry is written (and flushed, acks=all, idempotent producer) **before** the broker is
called, with state ``INTENT``. After a crash, an entry still in ``INTENT`` means "the order
may exist at the broker": it is resolved against the broker's order list, never resent
blindly. Values are JSON (internal state, not part of the Avro contract), keyed by command id.

States: INTENT → SUBMITTED → DONE; or REJECTED / FAILED (final, nothing at the broker).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"DONE", "REJECTED", "FAILED"})


class NotAcknowledged(RuntimeError):
    """Kafka did not acknowledge a write: the trader's infrastructure is failing, not one command."""


@dataclass
class Entry:
    command_id: str
    account: str
    action: str  # PLACE | CANCEL
    symbol: str
    state: str  # INTENT | SUBMITTED | DONE | REJECTED | FAILED
    side: str | None = None
    price: str | None = None  # exact decimal text
    volume: int = 0
    intent_ms: int = 0
    expires_at: int = 0
    broker_order_id: str | None = None
    filled_volume: int = 0
    broker_status: str = ""
    events: int = 0  # events published so far (event ids are command_id:n)
    notional: str = "0"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Entry":
        raw = json.loads(data)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


class Ledger:
    """In-memory view of the ledger topic plus the producer that extends it."""

    def __init__(self, producer: Any, topic: str, group_id: str = "marketpipe-trader-ledger-reader") -> None:
        self.producer = producer
        self.topic = topic
        self.group_id = group_id
        self.entries: dict[str, Entry] = {}

    def get(self, command_id: str) -> Entry | None:
        return self.entries.get(command_id)

    def claimed_order_ids(self) -> set[str]:
        return {e.broker_order_id for e in self.entries.values() if e.broker_order_id}

    def put(self, entry: Entry, flush: bool = True) -> None:
        """Record ``entry``; with ``flush`` it is durable on the broker when this returns."""
        self.entries[entry.command_id] = entry
        self.producer.produce(self.topic, key=entry.command_id.encode(), value=entry.to_bytes())
        if flush:
            remaining = self.producer.flush(30)
            if remaining:
                raise NotAcknowledged(f"ledger write for {entry.command_id} not acknowledged by Kafka "
                                    "(refusing to call the broker without a durable intent)")

    def load(self, consumer_config: dict[str, Any], timeout: float = 30.0) -> int:
        """Read the whole ledger topic (latest value per key). Returns the entry count."""
        import time

        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({**consumer_config, "group.id": self.group_id,
                             "enable.auto.commit": False, "enable.partition.eof": True})
        try:
            md = consumer.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
            if md is None or md.error is not None:
                raise RuntimeError(f"ledger topic {self.topic} is missing (marketpipe topics create)")
            parts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in md.partitions]
            ends = {p.partition: self._high_watermark(consumer, p, timeout) for p in parts}
            pending = {p for p, end in ends.items() if end > 0}
            consumer.assign(parts)
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == -191:  # _PARTITION_EOF
                        pending.discard(msg.partition())
                    continue
                if msg.value() is not None:
                    entry = Entry.from_bytes(msg.value())
                    self.entries[entry.command_id] = entry
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
            if pending:
                raise RuntimeError(f"ledger not fully read in {timeout:.0f}s (partitions {sorted(pending)})")
        finally:
            consumer.close()
        log.info("ledger loaded: %d commands, %d unresolved", len(self.entries), len(self.unresolved()))
        return len(self.entries)

    @staticmethod
    def _high_watermark(consumer: Any, partition: Any, timeout: float) -> int:
        """High watermark; a just-created topic may not have a leader yet, so retry briefly."""
        import time

        from confluent_kafka import KafkaException

        deadline = time.monotonic() + timeout
        while True:
            try:
                return int(consumer.get_watermark_offsets(partition, timeout=5)[1])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def unresolved(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.state == "INTENT"]

    def open_orders(self) -> Iterable[Entry]:
        return [e for e in self.entries.values() if e.state == "SUBMITTED" and e.action == "PLACE"]
