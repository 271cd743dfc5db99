"""marketpipe.client on the session's real broker: start positions, symbol filter, dedupe on
``source``, consumer groups with the user's commits, and order commands and their events."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from marketpipe import client
from marketpipe.schemas.codec import Codec
from marketpipe.trader import signing


def tick_record(offset: int, symbol: str, event_time: int) -> dict[str, Any]:
    return {"provider": "jvquant", "symbol": symbol, "venue_symbol": symbol[:6], "event_time": event_time,
            "receive_time_ns": event_time * 1_000_000, "price": 10.0 + offset / 100, "size": 100.0, "amount": None,
            "side": "BUY", "trade_id": str(offset), "session": None, "parser_version": "test",
            "source": {"topic": "raw.jvquant", "partition": 0, "offset": offset, "index": 0}}


class Writer:
    """Writes records the way the processor does: Avro value, symbol key, event-time timestamp."""

    def __init__(self, settings: Any) -> None:
        self.s = settings
        self.producer = Producer(settings.kafka.client_config())
        self.codec = Codec()

    def tick(self, record: dict[str, Any]) -> None:
        self.producer.produce(self.s.topic("md.tick"), key=record["symbol"].encode(),
                              value=self.codec.encode("Tick", record), timestamp=record["event_time"])

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


def read_all(consumer: client.TopicConsumer[Any], n: int, timeout: float = 30.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += consumer.consume(n - len(out), timeout=0.5)
    return out


def test_from_earliest_with_symbol_filter_and_dedupe_on_source(mp_settings) -> None:
    w = Writer(mp_settings)
    base = int(time.time() * 1000) - 60_000
    for i in range(20):
        w.tick(tick_record(i, "600519.SH" if i % 2 == 0 else "000001.SZ", base + i))
    for i in range(0, 10, 2):  # the processor's at-least-once replay: byte-identical copies
        w.tick(tick_record(i, "600519.SH", base + i))
    w.tick(tick_record(100, "600519.SH", base + 100))  # a marker: everything before it was read
    w.flush()
    with client.MarketDataConsumer(["md.tick"], start="earliest", symbols=["600519.SH"],
                                   settings=mp_settings) as consumer:
        got = read_all(consumer, 11)
        assert consumer.poll(1.0) is None  # the replayed copies were dropped, not merely late
    assert all(isinstance(t, client.Tick) and t.symbol == "600519.SH" for t in got)
    assert sorted(t.source.offset for t in got) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 100]
    with client.MarketDataConsumer(["md.tick"], start="earliest", symbols=["600519.SH"], dedupe_seconds=0,
                                   settings=mp_settings) as consumer:
        assert len(read_all(consumer, 16)) == 16  # dedupe off: every copy


def test_from_a_time_and_from_latest(mp_settings) -> None:
    w = Writer(mp_settings)
    t0 = int(time.time() * 1000) - 3_600_000
    for i in range(10):
        w.tick(tick_record(i, "600519.SH", t0 + i * 60_000))  # one a minute
    w.flush()
    with client.MarketDataConsumer(["md.tick"], start=t0 + 5 * 60_000, settings=mp_settings) as consumer:
        got = read_all(consumer, 5)
        assert consumer.poll(0.5) is None
    assert sorted(t.event_time for t in got) == [t0 + i * 60_000 for i in range(5, 10)]
    with client.MarketDataConsumer(["md.tick"], start="latest", settings=mp_settings) as consumer:
        assert consumer.poll(1.0) is None  # history is skipped ...
        w.tick(tick_record(50, "600519.SH", int(time.time() * 1000)))
        w.flush()
        fresh = read_all(consumer, 1)
    assert [t.source.offset for t in fresh] == [50]  # ... what comes next is read
    later = int(time.time() * 1000) + 3_600_000
    with client.MarketDataConsumer(["md.tick"], start=later, settings=mp_settings) as consumer:
        assert consumer.poll(1.0) is None  # a time after the last record: wait for new ones


def test_a_group_resumes_from_what_the_user_committed(mp_settings) -> None:
    w = Writer(mp_settings)
    base = int(time.time() * 1000)
    for i in range(6):
        w.tick(tick_record(i, "600519.SH", base + i))
    w.flush()
    group = f"svc-{uuid.uuid4().hex[:8]}"
    with client.MarketDataConsumer(["md.tick"], group_id=group, start="earliest", settings=mp_settings) as consumer:
        first = read_all(consumer, 6, timeout=60)
        consumer.commit()
    assert len(first) == 6
    for i in range(6, 9):
        w.tick(tick_record(i, "600519.SH", base + i))
    w.flush()
    # default start with a group: the committed offsets
    with client.MarketDataConsumer(["md.tick"], group_id=group, settings=mp_settings) as consumer:
        rest = read_all(consumer, 3, timeout=60)
        assert consumer.poll(1.0) is None
    assert sorted(t.source.offset for t in rest) == [6, 7, 8]


def test_commit_without_a_group_is_refused(mp_settings) -> None:
    with client.MarketDataConsumer(["md.tick"], settings=mp_settings) as consumer:
        with pytest.raises(RuntimeError, match="needs a group_id"):
            consumer.commit()


def test_a_missing_topic_is_a_one_line_error(mp_env) -> None:
    from marketpipe import settings

    s = settings.load({**mp_env, "MARKETPIPE_TOPIC_PREFIX": f"absent{uuid.uuid4().hex[:6]}."})
    with pytest.raises(LookupError, match="md.tick does not exist"):
        client.MarketDataConsumer(["md.tick"], settings=s)


def test_order_client_signs_sends_and_follows_events(mp_settings) -> None:
    """The trader's side is played by hand here (test_trade_consumer covers the real trader)."""
    orders = client.OrderClient(signing_key="k", account="000000000042", settings=mp_settings)
    command_id = orders.place("600519.SH", "buy", "1500.5", 100)
    codec = Codec()
    raw = Consumer({**mp_settings.kafka.client_config(), "group.id": uuid.uuid4().hex})
    topic = mp_settings.topic("order.commands")
    raw.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(6)])
    msgs: list[Any] = []
    deadline = time.monotonic() + 30
    while not msgs and time.monotonic() < deadline:
        msgs = [m for m in raw.consume(10, 0.5) if not m.error()]
    raw.close()
    cmd = codec.decode(msgs[0].value(), expect="OrderCommand").record
    assert cmd["command_id"] == command_id and cmd["price"] == Decimal("1500.500") and cmd["side"] == "BUY"
    assert msgs[0].key() == b"000000000042"
    assert signing.verify(cmd, "k") and not signing.verify(cmd, "other")

    producer = Producer(mp_settings.kafka.client_config())
    now = int(time.time() * 1000)
    for seq, state in enumerate(("ACCEPTED", "SUBMITTED", "FILLED"), 1):
        event = {"event_id": f"{command_id}:{seq}", "command_id": command_id, "account": "000000000042",
                 "provider": "jvquant", "state": state, "rule": None, "reason": None, "broker_order_id": "B1",
                 "symbol": "600519.SH", "side": "BUY", "price": Decimal("1500.500"), "volume": 100,
                 "filled_volume": 100 if state == "FILLED" else 0, "avg_fill_price": None,
                 "event_time": now + seq, "receive_time_ns": 0}
        producer.produce(mp_settings.topic("order.events"), key=command_id.encode(),
                         value=codec.encode("OrderEvent", event))
        if state == "SUBMITTED":  # the first events are on the topic before wait_for is called
            assert producer.flush(30) == 0
            submitted = orders.wait_for(command_id, states={"SUBMITTED"}, timeout=30)
            assert submitted.broker_order_id == "B1"
    assert producer.flush(30) == 0
    filled = orders.wait_for(command_id, timeout=30)  # default: any final state
    assert isinstance(filled, client.OrderEvent) and filled.state == "FILLED" and filled.filled_volume == 100
    assert [e.state for e in orders.events(command_id)] == ["ACCEPTED", "SUBMITTED", "FILLED"]
    with pytest.raises(TimeoutError, match="no CANCELLED event in 1 s \\(seen: ACCEPTED, SUBMITTED, FILLED\\)"):
        orders.wait_for(command_id, states="CANCELLED", timeout=1)
    orders.close()


def test_order_client_needs_a_key_and_an_account(mp_settings) -> None:
    with pytest.raises(ValueError, match="no signing key"):
        client.OrderClient(signing_key="", account="a", settings=mp_settings).place("600519.SH", "buy", "1", 100)
    with pytest.raises(ValueError, match="no account"):
        client.OrderClient(signing_key="k", settings=mp_settings).place("600519.SH", "buy", "1", 100)
