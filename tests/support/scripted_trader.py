"""The trader in-process on a scripted fake counter (``ScriptedCounter``, ``make_trader``), its events
recorded (``Recorder``), and order commands to feed it (``buy``, ``handle``): shared by the
trader's lifecycle, controls and delivery tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marketpipe import settings as settings_mod
from marketpipe.providers.jvquant.trade_api import parse_order
from marketpipe.schemas.codec import Codec
from marketpipe.trader import commands, consumer, rules
from marketpipe.trader.ledger import Entry
from marketpipe.trader.trade_api import BrokerOrder

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
        self.place_faults: list[Exception] = []  # raised by the next /buy calls, in order
        self.list_fault: Exception | None = None
        self.on_place: Any = None

    def orders(self) -> list[BrokerOrder]:
        if self.list_fault is not None:
            raise self.list_fault
        return [parse_order(r) for r in self.rows]

    def place(self, side: str, code: str, name: str, price: Any, volume: int) -> str:
        self.placed.append((side, code, name, price, volume))
        if self.on_place is not None:
            self.on_place()
        if self.place_faults:
            raise self.place_faults.pop(0)
        return f"9{len(self.placed):06d}"

    def positions(self) -> dict[str, Any]:
        return {"hold_list": []}


def row(status: str, deal: int = 0, order_id: str = "1334564", volume: int = 100) -> dict[str, Any]:
    """One /check_order row exactly as seed 004 lists its fields (every number a string)."""
    return {"order_id": order_id, "day": "20260401", "time": "142423", "code": "600519", "name": "贵州茅台",
            "type": "证券买入", "status": status, "order_price": "1500.00", "order_volume": str(volume),
            "deal_price": "1500.00" if deal else "0", "deal_volume": str(deal)}


def make_trader(counter: ScriptedCounter, reference: dict[str, rules.Reference] | None = None
                ) -> tuple[consumer.Trader, Recorder]:
    s = settings_mod.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "MARKETPIPE_ORDER_SIGNING_KEY": KEY,
                           "JVQUANT_TRADE_ACCOUNT": ACCOUNT, "MARKETPIPE_METRICS_PORT": "-1",
                           "MARKETPIPE_TRADER_POLL_SECONDS": "0.01", "MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL": "1000000"})
    trader = consumer.Trader(s, counter, reference or {}, consumer.limits_from(s))  # type: ignore[arg-type]
    trader.machine.settle_block_s = 0.1
    rec = Recorder()
    trader.events.producer = rec
    trader.ledger.producer = rec
    return trader, rec


def submitted(trader: consumer.Trader, command_id: str = "c1", order_id: str = "1334564") -> Entry:
    entry = Entry(command_id, trader.accounts.public, "PLACE", "600519.SH", "SUBMITTED", side="BUY", price="1500.00",
                  volume=100, intent_ms=1, expires_at=2, broker_order_id=order_id)
    trader.ledger.entries[command_id] = entry
    return entry


def events(trader: consumer.Trader, rec: Recorder, command_id: str | None = None) -> list[dict[str, Any]]:
    out = [trader.codec.decode(v, expect="OrderEvent").record for t, _, v in rec.records
           if v is not None and t.endswith("order.events")]
    return [e for e in out if command_id is None or e["command_id"] == command_id]


def states(trader: consumer.Trader, rec: Recorder) -> list[tuple[str, int]]:
    return [(e["state"], e["filled_volume"]) for e in events(trader, rec)]


MOUTAI = {"600519.SH": rules.Reference(Decimal("1500.00"), "贵州茅台")}


def handle(trader: consumer.Trader, cmd: dict[str, Any]) -> consumer.Outcome:
    return trader.handle(Codec().encode("OrderCommand", cmd), 0, consumer.RecordRef("order.commands", 0, 0))


def buy(price: str = "1500.00", volume: int = 100, **kw: Any) -> dict[str, Any]:
    return commands.place(ACCOUNT, "600519.SH", "buy", price, volume, KEY, **kw)
