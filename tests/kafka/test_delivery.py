"""Writes that must be durable: a record Kafka gave up on is never read as written, and a broker that
is only slow is waited out instead of ending the process (issue 23, item 4).

The real confluent-kafka producer is used where its behaviour is the point: pointed at a port where
no broker listens, with a short ``message.timeout.ms``, librdkafka drops the record from its queue
and ``flush()`` returns 0, exactly as for a written record."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from marketpipe import settings as settings_mod
from marketpipe.kafka.delivery import Deliveries, Unwritten, wait_acknowledged, write_one
from marketpipe.runtime.localhost import free_port

log = logging.getLogger("test")


def dead_producer(timeout_ms: int = 1500) -> Any:
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "enable.idempotence": True, "acks": "all",
                     "message.timeout.ms": timeout_ms, "log_level": 0})


class SlowProducer:
    """Acknowledges its records only after ``slow`` flush calls: a paused broker, a leader moving."""

    def __init__(self, slow: int, fail: bool = False) -> None:
        self.slow, self.fail, self.flushes = slow, fail, 0
        self.pending: list[tuple[Any, Any]] = []

    def produce(self, topic: str, key: Any = None, value: Any = None, on_delivery: Any = None, **_: Any) -> None:
        self.pending.append((on_delivery, (topic, key)))

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        if self.flushes <= self.slow:
            return len(self.pending)
        for callback, (topic, key) in self.pending:
            if callback is not None:
                callback("KafkaError{MSG_TIMED_OUT}" if self.fail else None, Msg(topic, key))
        self.pending.clear()
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0


class Msg:
    def __init__(self, topic: str, key: Any) -> None:
        self._topic, self._key = topic, key

    def topic(self) -> str:
        return self._topic

    def key(self) -> Any:
        return self._key


def test_librdkafka_drops_a_timed_out_record_and_flush_reads_it_as_written() -> None:
    """The library fact everything below rests on (if it changes, the waits may be simplified)."""
    producer, deliveries = dead_producer(), Deliveries()
    producer.produce("t", key=b"k", value=b"v", on_delivery=deliveries)
    assert producer.flush(20) == 0
    failed, error = deliveries.take()
    assert failed == 1 and "timed out" in error.lower()


def test_wait_acknowledged_waits_out_slow_records_and_stops_on_a_failed_one(caplog) -> None:
    caplog.set_level(logging.WARNING)
    slow = SlowProducer(slow=3)
    d = Deliveries()
    slow.produce("t", b"k", b"v", on_delivery=d)
    assert wait_acknowledged(slow.flush, d, "test writes", log, step=0.01) is None
    assert slow.flushes == 4 and sum("has not acknowledged 1 records" in r.message for r in caplog.records) == 3
    failing = SlowProducer(slow=1, fail=True)
    failing.produce("t", b"k", b"v", on_delivery=d)
    assert wait_acknowledged(failing.flush, d, "test writes", log, step=0.01) == Unwritten(0, 1, "KafkaError{MSG_TIMED_OUT}")
    stuck = SlowProducer(slow=10**6)
    stuck.produce("t", b"k", b"v", on_delivery=d)
    assert wait_acknowledged(stuck.flush, d, "test writes", log, step=0.01, limit=0.05) == Unwritten(1, 0)


def test_a_one_shot_write_kafka_gave_up_on_is_an_error_not_a_success() -> None:
    with pytest.raises(RuntimeError, match="kill switch not written by Kafka: 0 records unacknowledged and 1 refused"):
        write_one(dead_producer(), "order.control", b"k", b"v", "kill switch", log)


def test_a_ledger_intent_kafka_gave_up_on_is_never_read_as_durable() -> None:
    from marketpipe.trader.ledger import Entry, Ledger, NotAcknowledged

    ledger = Ledger(dead_producer(), "order.ledger")
    with pytest.raises(NotAcknowledged, match="refusing to call the broker without a durable intent"):
        ledger.put(Entry("c1", "acct", "PLACE", "600519.SH", "INTENT"))


def test_the_trader_never_calls_the_counter_when_kafka_gave_up_on_the_intent() -> None:
    """The money case: before, flush() returned 0 for the dropped INTENT and /buy went out."""
    from decimal import Decimal

    from marketpipe.trader import commands, consumer, rules
    from marketpipe.trader.ledger import NotAcknowledged
    from tests.support.scripted_trader import ACCOUNT, KEY, ScriptedCounter, handle

    s = settings_mod.load({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "MARKETPIPE_ORDER_SIGNING_KEY": KEY,
                           "JVQUANT_TRADE_ACCOUNT": ACCOUNT, "MARKETPIPE_METRICS_PORT": "-1",
                           "KAFKA_OPT_MESSAGE_TIMEOUT_MS": "1500"})
    counter = ScriptedCounter()
    trader = consumer.Trader(s, counter, {"600519.SH": rules.Reference(Decimal("1500.00"), "贵州茅台")},  # type: ignore[arg-type]
                             consumer.limits_from(s))
    with pytest.raises(NotAcknowledged):
        handle(trader, commands.place(ACCOUNT, "600519.SH", "buy", "1500.00", 100, KEY))
    assert counter.placed == []


def test_the_trader_waits_for_a_slow_broker_instead_of_stopping() -> None:
    """A broker paused longer than one flush step: the trader used to raise after 30 s and exit."""
    from tests.support.scripted_trader import MOUTAI, ScriptedCounter, buy, handle, make_trader

    counter = ScriptedCounter()
    trader, _ = make_trader(counter, MOUTAI)
    slow = SlowProducer(slow=2)
    trader.events.producer = trader.ledger.producer = slow
    handle(trader, buy())
    assert len(counter.placed) == 1 and slow.flushes > 2


def test_the_processor_waits_for_a_slow_broker_and_stops_only_on_a_failed_record(monkeypatch) -> None:
    from marketpipe.processors import output

    stops: list[str] = []
    monkeypatch.setattr(output, "fail_stop", stops.append)
    s = settings_mod.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    slow = SlowProducer(slow=2)
    out = output.Output(s, producer=slow)
    out.produce("md.tick", b"k", b"v")
    asyncio.run(output.durable(out))
    assert stops == [] and slow.flushes == 3
    failing = SlowProducer(slow=0, fail=True)
    out = output.Output(s, producer=failing)
    failing.produce("md.tick", b"k", b"v", on_delivery=out.deliveries)
    asyncio.run(output.durable(out))
    assert stops == ["0 records unacknowledged and 1 refused by Kafka (KafkaError{MSG_TIMED_OUT})"]
