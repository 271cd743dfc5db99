"""Issue 18 (trader): an order's whole life at the counter, on answers in the documents' shapes
(seed 004 ``/check_order`` rows, protocols.md §1.5 statuses). No broker: the trader's producer is
a recorder, the counter a scripted fake."""

from __future__ import annotations

from typing import Any

import pytest

from marketpipe import settings as settings_mod
from marketpipe.trader import consumer, statuses
from marketpipe.trader.broker import BrokerOrder, parse_order
from marketpipe.trader.ledger import Entry

KEY = "k3y"
ACCOUNT = "000000000042"


class Recorder:
    """Stands in for the Kafka producer: keeps what was produced, acknowledges everything."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None]] = []

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, **_: Any) -> None:
        self.records.append((topic, key, value))

    def flush(self, *_: Any) -> int:
        return 0

    def poll(self, *_: Any) -> int:
        return 0


class ScriptedCounter:
    """A counter whose ``/check_order`` list is whatever the test says it is now."""

    account = ACCOUNT

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.placed: list[tuple[Any, ...]] = []

    def orders(self) -> list[BrokerOrder]:
        return [parse_order(r) for r in self.rows]

    def positions(self) -> dict[str, Any]:
        return {"hold_list": []}


def row(status: str, deal: int = 0, order_id: str = "1334564", volume: int = 100) -> dict[str, Any]:
    """One /check_order row exactly as seed 004 lists its fields (every number a string)."""
    return {"order_id": order_id, "day": "20260401", "time": "142423", "code": "600519", "name": "贵州茅台",
            "type": "证券买入", "status": status, "order_price": "1500.00", "order_volume": str(volume),
            "deal_price": "1500.00" if deal else "0", "deal_volume": str(deal)}


def make_trader(counter: ScriptedCounter) -> tuple[consumer.Trader, Recorder]:
    s = settings_mod.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "MARKETPIPE_ORDER_SIGNING_KEY": KEY,
                           "JVQUANT_TRADE_ACCOUNT": ACCOUNT, "MARKETPIPE_METRICS_PORT": "-1"})
    trader = consumer.Trader(s, counter, {}, consumer.limits_from(s))  # type: ignore[arg-type]
    rec = Recorder()
    trader.producer = rec  # type: ignore[assignment]
    trader.ledger.producer = rec
    return trader, rec


def submitted(trader: consumer.Trader, command_id: str = "c1", order_id: str = "1334564") -> Entry:
    entry = Entry(command_id, trader.accounts.public, "PLACE", "600519.SH", "SUBMITTED", side="BUY", price="1500.00",
                  volume=100, intent_ms=1, expires_at=2, broker_order_id=order_id)
    trader.ledger.entries[command_id] = entry
    return entry


def states(trader: consumer.Trader, rec: Recorder) -> list[tuple[str, int]]:
    events = [trader.codec.decode(v, expect="OrderEvent").record for t, _, v in rec.records
              if v is not None and t.endswith("order.events")]
    return [(e["state"], e["filled_volume"]) for e in events]


def test_an_order_the_counter_lists_as_fei_dan_ends_rejected_with_its_reason() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    counter.rows = [row("已报")]
    trader.poll_broker()
    counter.rows = [row("废单")]
    trader.poll_broker()
    trader.poll_broker()  # polled again: nothing new
    assert states(trader, rec) == [("REJECTED", 0)]
    assert entry.final and entry.state == "DONE"
    assert "废单" in (entry.broker_status or "")
    assert trader.ledger.open_orders() == []


def test_states_never_go_backwards_and_each_is_emitted_once() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    submitted(trader)
    for status, deal in [("已报", 0), ("部成", 50), ("已报", 0), ("部成", 40), ("部成", 50), ("已成", 100),
                         ("部成", 50)]:
        counter.rows = [row(status, deal)]
        trader.poll_broker()
    assert states(trader, rec) == [("PARTIALLY_FILLED", 50), ("FILLED", 100)]


def test_what_was_emitted_survives_a_restart() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    counter.rows = [row("部成", 50)]
    trader.poll_broker()
    # a new process reads the entry back from the ledger
    again, rec2 = make_trader(counter)
    again.ledger.entries[entry.command_id] = Entry.from_bytes(entry.to_bytes())
    trader.poll_broker()
    again.poll_broker()
    assert states(again, rec2) == []
    counter.rows = [row("部撤", 50)]
    again.poll_broker()
    assert states(again, rec2) == [("CANCELLED", 50)]


def test_an_unknown_status_is_counted_and_changes_nothing() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    before = statuses.UNKNOWN_STATUS.labels("状态X")._value.get()
    counter.rows = [row("状态X")]
    trader.poll_broker()
    assert states(trader, rec) == [] and entry.state == "SUBMITTED"
    assert statuses.UNKNOWN_STATUS.labels("状态X")._value.get() == before + 1


@pytest.mark.parametrize("status,state", [
    ("未报", statuses.PENDING), ("待报", statuses.PENDING), ("正报", statuses.PENDING), ("已报", statuses.PENDING),
    ("已报待撤", statuses.PENDING), ("部成待撤", statuses.PARTIAL), ("部成", statuses.PARTIAL),
    ("已成", statuses.FILLED), ("已撤", statuses.CANCELLED), ("部撤", statuses.CANCELLED),
    ("废单", statuses.REJECTED), (" 已成 ", statuses.FILLED),
])
def test_status_table(status: str, state: str) -> None:
    assert statuses.classify(status).state == state


def test_a_pending_status_with_a_fill_reads_as_partial_and_a_full_fill_as_filled() -> None:
    assert statuses.observe(row("已报", 50)["status"], 50, 100).state == statuses.PARTIAL
    assert statuses.observe("部成", 100, 100).state == statuses.FILLED
    assert statuses.observe("已撤", 0, 100).state == statuses.CANCELLED
