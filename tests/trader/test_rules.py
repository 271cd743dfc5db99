"""Signing, pre-trade rules and reconciliation: pure, table-tested."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketpipe.providers.jvquant.trade_api import parse_order
from marketpipe.trader import commands, rules, signing
from marketpipe.trader.ledger import Entry
from marketpipe.trader.reconcile import resolve
from marketpipe.trader.trade_api import BrokerOrder

KEY = "k3y"


def test_signature_covers_every_field_that_matters() -> None:
    cmd = commands.place("acc1", "600519.SH", "buy", "1500.5", 100, KEY, command_id="c1", now_ms=1_000)
    assert signing.verify(cmd, KEY)
    assert cmd["price"] == Decimal("1500.500")
    for field, value in (("price", Decimal("1500.6")), ("volume", 1000), ("side", "SELL"), ("account", "acc2"),
                         ("symbol", "600000.SH"), ("expires_at", 10**13), ("command_id", "c2")):
        assert not signing.verify({**cmd, field: value}, KEY), field
    assert not signing.verify(cmd, "other-key")
    assert not signing.verify({**cmd, "signature": ""}, KEY)
    # the same price with other trailing zeros signs the same (the schema's scale is 3)
    assert signing.verify({**cmd, "price": Decimal("1500.50")}, KEY)


def test_command_builder_rejects_sub_tick_precision() -> None:
    with pytest.raises(ValueError, match="at most 3 decimals"):
        commands.place("a", "600519.SH", "buy", "10.0001", 100, KEY)
    with pytest.raises(ValueError, match="not a decimal"):
        commands.place("a", "600519.SH", "buy", "ten", 100, KEY)


REF = {
    "600519.SH": rules.Reference(Decimal("1500.00"), "贵州茅台"),
    "600290.SH": rules.Reference(Decimal("4.00"), "*ST华仪", st=True),
    "300750.SZ": rules.Reference(Decimal("200.00"), "宁德时代"),
    "688981.SH": rules.Reference(Decimal("50.00"), "中芯国际"),
    "430047.BJ": rules.Reference(Decimal("10.00"), "诺思兰德"),
    "113050.SH": rules.Reference(Decimal("120.000"), "南银转债"),
    "159506.SZ": rules.Reference(Decimal("1.500"), "ETF"),
}


def check(symbol: str, side: str, price: str, volume: int, *, limits: rules.Limits | None = None,
          counters: rules.Counters | None = None, halted: bool = False, ref: bool = True) -> str | None:
    cmd = {"symbol": symbol, "side": side, "price": Decimal(price), "volume": volume, "account": "a"}
    result = rules.check_place(cmd, limits or rules.Limits(), REF.get(symbol) if ref else None,
                               counters or rules.Counters(), day=1, now=100.0, halted=halted)
    return result.rule if result else None


@pytest.mark.parametrize("symbol,side,price,volume,rule", [
    ("600519.SH", "BUY", "1500.00", 100, None),
    ("600519.SH", "BUY", "1500.00", 150, "lot_size"),      # main board buys in 100s
    ("600519.SH", "SELL", "1500.00", 150, None),           # odd-lot sells are allowed
    ("600519.SH", "BUY", "1500.005", 100, "price_tick"),   # 0.01 tick for stocks
    ("600519.SH", "BUY", "1650.00", 100, None),            # +10% exactly is the limit
    ("600519.SH", "BUY", "1650.01", 100, "price_band"),
    ("600519.SH", "BUY", "1349.99", 100, "price_band"),
    ("600290.SH", "BUY", "4.20", 100, None),               # ST: ±5%
    ("600290.SH", "BUY", "4.21", 100, "price_band"),
    ("300750.SZ", "BUY", "240.00", 100, None),             # ChiNext ±20%
    ("300750.SZ", "BUY", "240.01", 100, "price_band"),
    ("688981.SH", "BUY", "50.00", 199, "lot_size"),        # STAR: at least 200 ...
    ("688981.SH", "BUY", "50.00", 201, None),              # ... then steps of 1
    ("430047.BJ", "BUY", "13.00", 101, None),              # BJ ±30%, >=100 then 1
    ("430047.BJ", "BUY", "10.00", 99, "lot_size"),
    ("113050.SH", "BUY", "120.001", 10, None),             # bonds: 0.001 tick, multiples of 10
    ("113050.SH", "BUY", "120.000", 15, "lot_size"),
    ("113050.SH", "BUY", "144.001", 10, "price_band"),     # ±20%
    ("159506.SZ", "BUY", "1.501", 100, None),              # funds: 0.001 tick
    ("159506.SZ", "BUY", "1.6505", 100, "price_tick"),
    ("AMZN.US", "BUY", "100", 1, "symbol"),
])
def test_a_share_rules(symbol: str, side: str, price: str, volume: int, rule: str | None) -> None:
    assert check(symbol, side, price, volume) == rule


def test_unknown_previous_close_fails_the_band_rule() -> None:
    assert check("600519.SH", "BUY", "1500.00", 100, ref=False) == "price_band"


def test_limits_kill_switch_and_allow_list() -> None:
    assert check("600519.SH", "BUY", "1500.00", 100, halted=True) == "kill_switch"
    assert check("600519.SH", "BUY", "1500.00", 100,
                 limits=rules.Limits(allow=frozenset({"000001.SZ"}))) == "allow_list"
    assert check("600519.SH", "BUY", "1500.00", 1000,
                 limits=rules.Limits(max_order_notional=Decimal("1000000"))) == "max_order_notional"
    counters = rules.Counters()
    counters.record("a", 1, Decimal("4900000"), 0.0)
    assert check("600519.SH", "BUY", "1500.00", 100, counters=counters) == "max_daily_notional"
    busy = rules.Counters()
    for t in (99.5, 99.6, 99.7):
        busy.record("a", 1, Decimal(0), t)
    assert check("600519.SH", "BUY", "1500.00", 100, counters=busy,
                 limits=rules.Limits(max_orders_per_second=3)) == "max_orders_per_second"
    old = rules.Counters()
    for t in (90.0, 91.0, 92.0):
        old.record("a", 1, Decimal(0), t)
    assert check("600519.SH", "BUY", "1500.00", 100, counters=old,
                 limits=rules.Limits(max_orders_per_second=3)) is None


def test_price_limits_round_half_up_to_the_tick() -> None:
    board = rules.board_of("600519.SH")
    assert rules.price_limits(Decimal("10.05"), board) == (Decimal("9.05"), Decimal("11.06"))


def order(order_id: str, hms: str, price: str = "1500.00", volume: int = 100, side: str = "证券买入") -> BrokerOrder:
    return parse_order({"order_id": order_id, "day": "20261124", "time": hms, "code": "600519", "name": "x",
                        "type": side, "status": "已报", "order_price": price, "order_volume": str(volume),
                        "deal_price": "0", "deal_volume": "0"})


def test_reconcile_matches_on_what_the_order_looks_like() -> None:
    # intent at 2026-11-24 10:00:00 China time = 02:00:00 UTC
    intent_ms = 1795485600000
    entry = Entry("c1", "a", "PLACE", "600519.SH", "INTENT", side="BUY", price="1500.000", volume=100,
                  intent_ms=intent_ms)
    assert order("1", "100001").epoch_s * 1000 == intent_ms + 1000
    assert resolve(entry, [order("1", "100001")], set()).outcome == "found"
    assert resolve(entry, [order("1", "100001")], {"1"}).outcome == "absent"  # owned by another command
    assert resolve(entry, [order("1", "095000")], set()).outcome == "absent"  # older than the intent
    assert resolve(entry, [order("1", "100001", price="1500.01")], set()).outcome == "absent"
    assert resolve(entry, [order("1", "100001", volume=200)], set()).outcome == "absent"
    assert resolve(entry, [order("1", "100001", side="证券卖出")], set()).outcome == "absent"
    two = resolve(entry, [order("2", "100005"), order("1", "100001")], set())
    assert two.outcome == "ambiguous" and [o.order_id for o in two.candidates] == ["1", "2"]
