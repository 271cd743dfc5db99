"""The trade consumer's durable memory: one entry per command id on a compacted topic.

The entry is written (and flushed, acks=all, idempotent producer) **before** the broker is
called, with state ``INTENT``. After a crash, an entry still in ``INTENT`` means "the order
may exist at the broker": it is resolved against the broker's order list, never resent
blindly. Values are Avro ``LedgerEntry`` records (marketpipe/trader/ledger_codec.py; the JSON
of earlier versions is still read), keyed by command id.

States: INTENT → SUBMITTED → DONE; or REJECTED / FAILED (final, nothing at the broker).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from marketpipe.kafka.delivery import Deliveries, wait_acknowledged

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"DONE", "REJECTED", "FAILED"})
#: :attr:`Entry.extra` keys the trader keeps: the last (state, filled volume) emitted for the broker order;
#: why an unresolved command is parked (reconciled in the background); the last UNKNOWN reason emitted
REPORTED, PARKED, LAST_NOTE = "reported", "parked", "last_note"


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

    def __init__(self, producer: Any, topic: str, group_id: str = "marketpipe-trader-ledger-reader",
                 deliveries: Deliveries | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.group_id = group_id
        #: failures of this producer's records (the trader shares one with its event writes)
        self.deliveries = deliveries if deliveries is not None else Deliveries()
        self.entries: dict[str, Entry] = {}

    def get(self, command_id: str) -> Entry | None:
        return self.entries.get(command_id)

    def claimed_order_ids(self) -> set[str]:
        return {e.broker_order_id for e in self.entries.values() if e.broker_order_id}

    def put(self, entry: Entry, flush: bool = True) -> None:
        """Record ``entry``; with ``flush`` it is durable on the broker when this returns."""
        from marketpipe.trader.ledger_codec import encode_entry

        self.entries[entry.command_id] = entry
        self.producer.produce(self.topic, key=entry.command_id.encode(),
                              value=encode_entry(self._codec(), entry, self.topic), on_delivery=self.deliveries)
        if flush:
            # waits out a paused broker or a leader move; a record Kafka gave up on is a failure
            unwritten = wait_acknowledged(self.producer.flush, self.deliveries, f"ledger write for {entry.command_id}",
                                          log)
            if unwritten:
                raise NotAcknowledged(f"ledger write for {entry.command_id} not written by Kafka: {unwritten} "
                                      "(refusing to call the broker without a durable intent)")

    def load(self, consumer_config: dict[str, Any], timeout: float = 30.0) -> int:
        """Read the whole ledger topic (latest value per key). Returns the entry count."""
        from marketpipe.kafka.compacted import read_to_end
        from marketpipe.trader.ledger_codec import decode_entry

        codec = self._codec()

        def on_record(msg: Any) -> None:
            if msg.value() is None:  # a tombstone: the command is forgotten
                if msg.key() is not None:
                    self.entries.pop(msg.key().decode(), None)
                return
            entry = decode_entry(codec, msg.value())  # Avro, or the JSON of earlier versions
            self.entries[entry.command_id] = entry

        read_to_end(consumer_config, self.topic, self.group_id, on_record, timeout,
                    what=f"ledger topic {self.topic}")
        log.info("ledger loaded: %d commands, %d unresolved", len(self.entries), len(self.unresolved()))
        return len(self.entries)

    def _codec(self) -> Any:
        """The process's codec (its settings: a registry or none), made on first use."""
        if getattr(self, "codec", None) is None:
            from marketpipe import settings
            from marketpipe.schemas.codec import from_settings

            self.codec = from_settings(settings.load())
        return self.codec

    def unresolved(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.state == "INTENT"]

    def open_orders(self) -> Iterable[Entry]:
        return [e for e in self.entries.values() if e.state == "SUBMITTED" and e.action == "PLACE"]
