"""The trade client against a stub counter answering exactly as the jvQuant trade document prints the trade API.

Each test names the defect it guards; the stub counts every HTTP call, so "sent once" is a
count at the server, not a belief of the client.
"""

from __future__ import annotations

import urllib.parse
from decimal import Decimal

import pytest

from marketpipe.providers.jvquant.trade_api import JvQuantBroker, parse_order
from marketpipe.trader.ledger import Entry
from marketpipe.trader.reconcile import resolve
from marketpipe.trader.trade_api import BrokerRejected, OutcomeUnknown
from tests.support.trade_stub import StubConfig, TradeStub


def broker(stub: TradeStub, timeout: float = 2.0) -> JvQuantBroker:
    return JvQuantBroker(stub.url, "tok", "000000000042", "pw", timeout=timeout)


def test_documented_buy_answer_without_code_is_one_placed_order() -> None:
    with TradeStub() as stub:
        b = broker(stub)
        order_id = b.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        assert order_id == stub.placed[0].row["order_id"]
        assert stub.count("/buy") == 1
        assert stub.count("/login") == 1


def test_documented_sale_answer_without_code_is_one_placed_order() -> None:
    with TradeStub(StubConfig(place="sale_documented_placed")) as stub:
        order_id = broker(stub).place("SELL", "110074", "精达转债", Decimal("151.885"), 10)
        assert order_id and stub.count("/sale") == 1 and stub.count("/buy") == 0


def test_documented_refusal_is_sent_once_and_carries_the_brokers_message() -> None:
    with TradeStub(StubConfig(place="buy_documented_refused", place_lands=False)) as stub:
        with pytest.raises(BrokerRejected, match="可用资金不足"):
            broker(stub).place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        assert stub.count("/buy") == 1
        assert stub.count("/login") == 1


def test_code_refusal_is_sent_once_too() -> None:
    with TradeStub(StubConfig(place="buy_notes_refused", place_lands=False)) as stub:
        with pytest.raises(BrokerRejected, match="涨跌停"):
            broker(stub).place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        assert stub.count("/buy") == 1


def test_answer_with_neither_id_nor_message_is_unknown_and_not_resent() -> None:
    with TradeStub(StubConfig(place="buy_documented_neither")) as stub:
        with pytest.raises(OutcomeUnknown):
            broker(stub).place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        assert stub.count("/buy") == 1


def test_documented_order_list_without_code_is_read_without_a_relogin() -> None:
    with TradeStub(StubConfig(check_order="check_order_documented")) as stub:
        b = broker(stub)
        b.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        [order] = b.orders()
        assert (order.code, order.side, order.price, order.volume) == ("600519", "BUY", Decimal("1500.00"), 100)
        assert stub.count("/login") == 1


def test_documented_positions_without_code_are_read_without_a_relogin() -> None:
    with TradeStub() as stub:
        hold = broker(stub).positions()
        assert hold["hold_list"][0]["code"] == "128079"
        assert stub.count("/login") == 1 and stub.count("/check_hold") == 1


def test_allocation_by_the_documented_path_only() -> None:
    """The jvQuant documents allocate at /server; this counter answers 404 on /query/server."""
    with TradeStub(StubConfig(allocation_paths=("/server",))) as stub:
        broker(stub).positions()
        assert stub.count("/server") == 1


def test_allocation_by_the_sdk_path_only_with_a_scheme() -> None:
    with TradeStub(StubConfig(allocation="server_notes_with_scheme", allocation_paths=("/query/server",))) as stub:
        broker(stub).positions()
        assert stub.count("/query/server") == 1


@pytest.mark.parametrize("type_text", ["证券买入", "买入", "担保品买入", "融资买入", "B", "buy"])
def test_buy_spellings_are_read_as_buy(type_text: str) -> None:
    assert parse_order({"type": type_text, "code": "600519"}).side == "BUY"


@pytest.mark.parametrize("type_text", ["证券卖出", "卖出", "担保品卖出", "融券卖出", "S", "sale", "sell"])
def test_sell_spellings_are_read_as_sell(type_text: str) -> None:
    assert parse_order({"type": type_text, "code": "600519"}).side == "SELL"


def test_an_unfamiliar_type_still_matches_on_code_price_volume_and_time() -> None:
    row = {"order_id": "77", "day": "20260815", "time": "100000", "code": "600519", "name": "贵州茅台",
           "type": "普通委托", "status": "已报", "order_price": "1500.00", "order_volume": "100",
           "deal_price": "0", "deal_volume": "0"}
    intent_ms = (1786759200 - 3) * 1000  # 2026-08-15 10:00:00 China time, minus 3 s
    entry = Entry("c1", "acc", "PLACE", "600519.SH", "INTENT", side="BUY", price="1500.00", volume=100,
                  intent_ms=intent_ms)
    verdict = resolve(entry, [parse_order(row)], set())
    assert verdict.outcome == "found" and verdict.order is not None and verdict.order.order_id == "77"
    # a different volume is not our order, whatever the type
    assert resolve(entry, [parse_order({**row, "order_volume": "200"})], set()).outcome == "absent"


def test_quote_producer_shares_the_allocation_paths_and_scheme_rule() -> None:
    from marketpipe.providers.jvquant.feed import JvQuantFeed

    with TradeStub(StubConfig(allocation_paths=("/server",))) as stub:
        feed = JvQuantFeed(stub.url, "tok", ["600519"])
        assert feed.allocate() == f"ws://{stub.address}"
        assert stub.queries("/server")[0]["type"] == "websocket"


def test_a_redirected_buy_is_not_followed() -> None:
    """urllib follows redirects by default: a 302 on /buy would send the same order again."""
    from tests.support.trade_stub import Redirect

    with TradeStub() as stub:
        stub.answers["/buy"] = lambda q: Redirect(f"{stub.url}/buy?{urllib.parse.urlencode(q)}")
        with pytest.raises(OutcomeUnknown):
            broker(stub).place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
        assert stub.count("/buy") == 1
