"""The trader's writes to Kafka: ``OrderEvent`` records on order.events, and the one producer they share.

Every state change of a command is an event. Event ids are stable: ``<command id>:<n>`` for a
command with a ledger entry (n counts its events, kept in the entry), ``<topic>/<partition>/<offset>``
(or ``<command id>@<that>``) for a record without one (forged, poison), so a redelivery of the same
record yields the same event id.

The producer is shared with the ledger (:class:`marketpipe.trader.ledger.Ledger`) and the position
publisher (:mod:`marketpipe.trader.fills`), and so is one :class:`marketpipe.kafka.delivery.Deliveries`: a
record Kafka refused, of any kind, fails the next :meth:`EventWriter.flush` or ``Ledger.put``. Kafka
only being slow (a paused broker, a leader moving) is waited out and said every 30 s; a record it gave
up on raises :class:`marketpipe.trader.ledger.NotAcknowledged`, which stops the trader with nothing
committed past it.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any, Callable, Protocol

from marketpipe.kafka.delivery import Deliveries, wait_acknowledged
from marketpipe.trader import metrics, rules, signing
from marketpipe.trader.ledger import Entry, NotAcknowledged
from marketpipe.trader.order_command import RecordRef

log = logging.getLogger(__name__)


class Subject(Protocol):
    """What an event is about: a command as decoded, or as its ledger entry remembers it."""

    @property
    def command_id(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> str | None: ...
    @property
    def price(self) -> Decimal | str | None: ...
    @property
    def volume(self) -> int: ...


def _event_price(value: Any) -> Decimal | None:
    """A price an OrderEvent can carry; None for one outside decimal(18,3) (the reason says it)."""
    try:
        return signing.exact_price(value) if value is not None else None
    except ValueError:
        return None


def _volume(value: Any) -> int:
    try:
        volume = int(value or 0)
    except (TypeError, ValueError):
        return 0
    return volume if -2**63 <= volume < 2**63 else 0


class EventWriter:
    """Builds OrderEvent records and writes them; owns the failure count of the producer it writes with."""

    def __init__(self, producer: Any, topic: str, encode: Callable[[dict[str, Any]], bytes],
                 accounts: rules.Accounts, provider: str) -> None:
        self.producer = producer
        self.topic = topic
        self.encode = encode
        self.accounts = accounts
        self.provider = provider
        #: what Kafka did not take of the events, ledger entries and positions written with ``producer``
        self.deliveries = Deliveries(log)

    def emit(self, entry: Entry | None, cmd: Subject, state: str, *, rule: str | None = None,
             reason: str | None = None, broker_order_id: str | None = None, filled: int = 0,
             avg_price: Decimal | None = None, received_ns: int = 0, source: RecordRef | None = None) -> None:
        if entry is not None:
            entry.events += 1
            event_id = f"{cmd.command_id}:{entry.events}"
        elif source is not None:  # no ledger entry (forged, poison): one event per record, stable on redelivery
            event_id = str(source) if cmd.command_id == str(source) else f"{cmd.command_id}@{source}"
        else:
            event_id = f"{cmd.command_id}:{time.time_ns()}"
        event_time = int(time.time() * 1000)
        record = {
            "event_id": event_id, "command_id": str(cmd.command_id),
            # names reaching here are public already, but a ledger entry written before accounts were
            # resolved may still hold the number
            "account": self.accounts.resolve(str(cmd.account or "")) or str(cmd.account or ""),
            "provider": self.provider, "state": state,
            "rule": rule, "reason": reason, "broker_order_id": broker_order_id, "symbol": str(cmd.symbol or ""),
            "side": cmd.side if cmd.side in ("BUY", "SELL") else None,
            "price": _event_price(cmd.price), "volume": _volume(cmd.volume), "filled_volume": filled,
            "avg_fill_price": _event_price(avg_price),
            "event_time": event_time, "receive_time_ns": received_ns,
        }
        self.producer.produce(self.topic, key=cmd.command_id.encode(), value=self.encode(record),
                              timestamp=event_time, on_delivery=self.deliveries)
        metrics.EVENTS.labels(state).inc()
        if rule:
            metrics.REJECTIONS.labels(rule).inc()
        log.info("%s %s%s", cmd.command_id, state, f" ({rule}: {reason})" if rule else
                 f" ({reason})" if reason else "")

    def write(self, topic: str, key: bytes, value: bytes) -> None:
        """A record of another kind (a position) on the same producer: a failure to write it is counted
        like an event's, so the next flush reports it."""
        self.producer.produce(topic, key=key, value=value, on_delivery=self.deliveries)

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self.producer.poll(0)

    def flush(self) -> None:
        """Return once Kafka has every event written so far: a paused broker is waited out (logged every
        30 s); a record Kafka gave up on stops the trader (nothing is committed past it)."""
        unwritten = wait_acknowledged(self.producer.flush, self.deliveries, "order events", log)
        if unwritten:
            raise NotAcknowledged(f"order events not written by Kafka: {unwritten}")
