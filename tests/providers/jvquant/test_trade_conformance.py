"""The trade client against a stub counter answering with the conformance corpus, byte for byte
in shape (tests/data/conformance/jvquant_trade/*.json): every documented answer, then the ways an
order's fate can hide (timeout after the order landed, late listing, refusals, unfamiliar order
types, expiry). The stub counts calls: one /buy (or /sale) per command, in every case.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from marketpipe.providers.jvquant.trade_api import JvQuantBroker
from marketpipe.runtime.localhost import free_port
from marketpipe.trader.ledger import Entry
from marketpipe.trader.reconcile import SETTLE_MS, Hooks, Settled, settle
from marketpipe.trader.trade_api import BrokerRejected
from tests.support.trade_stub import PLACEHOLDER_ADDRESS, StubConfig, TradeStub, case, cases

ACCOUNT = "000000000042"


def broker(stub: TradeStub, timeout: float = 2.0) -> JvQuantBroker:
    return JvQuantBroker(stub.url, "tok", ACCOUNT, "pw", timeout=timeout)


class Recorder:
    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.records: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def hooks(self) -> Hooks:
        return Hooks(record=lambda: self.records.append(dict(self.entry.extra)), note=self.notes.append)


class FakeClock:
    """Virtual time for the reconcile loop: sleeping advances it, the broker calls stay real."""

    def __init__(self) -> None:
        self.t = time.time()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def command(side: str = "BUY", symbol: str = "600519.SH", price: str = "1500.00", volume: int = 100,
            ttl_s: float = 30.0, now: float | None = None) -> Entry:
    t = time.time() if now is None else now
    return Entry("cmd-" + str(time.monotonic_ns()), ACCOUNT, "PLACE", symbol, "INTENT", side=side, price=price,
                 volume=volume, intent_ms=int(t * 1000), expires_at=int((t + ttl_s) * 1000))


def run(stub: TradeStub, entry: Entry, *, timeout: float = 2.0, clock: FakeClock | None = None,
        block_s: float = 600.0, b: JvQuantBroker | None = None) -> tuple[Settled, Recorder]:
    rec = Recorder(entry)
    kw: dict[str, Any] = {"now": clock.now, "sleep": clock.sleep} if clock else {}
    settled = settle(b or broker(stub, timeout), entry, "贵州茅台", rec.hooks(), set, send_first=True,
                     poll_s=0.05 if clock is None else 1.0, block_s=block_s, **kw)
    return settled, rec


# ---- every documented answer --------------------------------------------------------------------
@pytest.mark.parametrize("name", cases())
def test_documented_answer(name: str) -> None:
    c = case(name)
    path, expect = c["endpoint"], c["expect"]
    if path in ("/server", "/query/server"):
        with TradeStub(StubConfig(allocation=name, allocation_paths=(path,))) as stub:
            b = broker(stub)
            assert b.allocate() == expect["server"].replace(PLACEHOLDER_ADDRESS, stub.address)
            assert stub.count(path) == 1
    elif path == "/login":
        with TradeStub(StubConfig(login=name)) as stub:
            b = broker(stub)
            if expect["outcome"] == "ok":
                assert b.ticket() == expect["ticket"]
            else:
                with pytest.raises(BrokerRejected, match=expect["message"]):
                    b.ticket()
            assert stub.count("/login") == 1
    elif path in ("/buy", "/sale"):
        side = "BUY" if path == "/buy" else "SELL"
        refused = expect["outcome"] == "refused"
        with TradeStub(StubConfig(place=name, place_lands=not refused)) as stub:
            settled, rec = run(stub, command(side=side))
            assert stub.count(path) == 1 and stub.count("/buy") + stub.count("/sale") == 1
            assert stub.count("/login") == 1  # a missing code is no reason to log in again
            if expect["outcome"] == "placed":
                assert (settled.state, settled.order_id, settled.answered) == \
                    ("SUBMITTED", stub.placed[0].row["order_id"], True)
                assert rec.notes == []
            elif refused:
                assert settled.state == "FAILED" and expect["message"] in settled.reason
                assert rec.notes == [] and stub.count("/check_order") == 0
            else:  # unknown: the order list decides (the stub let the order land)
                assert settled.state == "SUBMITTED" and settled.order_id == stub.placed[0].row["order_id"]
                assert "reconciled" in settled.reason and len(rec.notes) == 1
    elif path == "/check_order":
        with TradeStub(StubConfig(check_order=name)) as stub:
            b = broker(stub)
            stub.answers["/check_order"] = lambda q: case(name)["body"]  # the corpus row, verbatim
            if expect["outcome"] == "ok":
                orders = b.orders()
                assert len(orders) == expect["orders"]
                if orders:
                    assert orders[0].side == expect["side"] and orders[0].price == Decimal("151.885")
                assert stub.count("/login") == 1
            else:
                with pytest.raises(BrokerRejected, match=expect["message"]):
                    b.orders()  # never read as "no orders"
                # a read: one re-login, then (refused twice) one more try on a newly allocated counter
                assert stub.count("/check_order") == 3 and stub.count("/login") == 3
    elif path == "/check_hold":
        with TradeStub(StubConfig(check_hold=name)) as stub:
            hold = broker(stub).positions()
            assert len(hold["hold_list"]) == expect["holds"] and stub.count("/login") == 1
    elif path == "/cancel":
        with TradeStub(StubConfig(cancel=name)) as stub:
            b = broker(stub)
            if expect["outcome"] == "ok":
                assert b.cancel("1334564") == expect["message"]
            else:
                with pytest.raises(BrokerRejected, match=expect["message"]):
                    b.cancel("1334564")
            assert stub.count("/cancel") == 1  # a cancel is never repeated, not even after a re-login
    else:
        pytest.fail(f"corpus case {name}: no test for endpoint {path}")


# ---- how an order's fate can hide ------------------------------------------------------------------
@pytest.mark.parametrize("answer", ["buy_documented_placed", "buy_documented_neither"])
def test_timeout_after_the_order_landed_is_reconciled_not_resent(answer: str) -> None:
    # the counter records the order, then answers after the client gave up
    with TradeStub(StubConfig(place=answer, place_delay=1.0)) as stub:
        settled, rec = run(stub, command(), timeout=0.3)
        assert settled.state == "SUBMITTED" and settled.order_id == stub.placed[0].row["order_id"]
        assert "reconciled" in settled.reason and not settled.answered
        assert stub.count("/buy") == 1
        assert any("no answer" in n for n in rec.notes)


@pytest.mark.parametrize("answer", ["buy_documented_neither", "buy_notes_success_without_id", "buy_empty_object"])
def test_order_listed_only_on_a_later_poll_is_adopted(answer: str) -> None:
    with TradeStub(StubConfig(place=answer, hidden_polls=3, check_order="check_order_documented")) as stub:
        settled, _ = run(stub, command())
        assert settled.state == "SUBMITTED" and settled.order_id == stub.placed[0].row["order_id"]
        assert stub.count("/buy") == 1 and stub.count("/check_order") == 4


@pytest.mark.parametrize("type_text", ["普通委托", "担保品买入", "B", "0"])
def test_unfamiliar_order_type_is_matched_by_code_price_volume_and_time(type_text: str) -> None:
    with TradeStub(StubConfig(place="buy_documented_neither", order_type=type_text)) as stub:
        settled, _ = run(stub, command())
        assert settled.state == "SUBMITTED" and settled.order_id == stub.placed[0].row["order_id"]
        assert stub.count("/buy") == 1


def test_a_listed_order_of_the_other_side_is_not_ours() -> None:
    with TradeStub(StubConfig(place="buy_documented_neither", order_type="证券卖出")) as stub:
        clock = FakeClock()
        settled, _ = run(stub, command(ttl_s=5, now=clock.now()), clock=clock)
        assert settled.state == "FAILED" and stub.count("/buy") == 1


@pytest.mark.parametrize("answer", ["buy_documented_refused", "buy_notes_refused", "sale_documented_refused_no_id_field"])
def test_refusal_fails_with_the_brokers_message_after_one_send(answer: str) -> None:
    with TradeStub(StubConfig(place=answer, place_lands=False)) as stub:
        settled, rec = run(stub, command())
        assert settled.state == "FAILED" and case(answer)["expect"]["message"] in settled.reason
        assert stub.count("/buy") == 1 and stub.count("/login") == 1 and rec.notes == []


@pytest.mark.parametrize("answer", ["buy_documented_neither", "buy_notes_success_without_id"])
def test_an_order_that_never_shows_is_given_up_at_expiry_without_a_resend(answer: str) -> None:
    """The 189-/buy RecursionError: an answer without an id, and an order list that never shows it."""
    clock = FakeClock()
    with TradeStub(StubConfig(place=answer, place_lands=False)) as stub:
        entry = command(ttl_s=20, now=clock.now())
        settled, rec = run(stub, entry, clock=clock)
        assert settled.state == "FAILED" and "expiry" in settled.reason
        assert stub.count("/buy") == 1
        assert clock.now() * 1000 <= entry.expires_at + SETTLE_MS + 1000  # bounded by expires_at
        assert stub.count("/check_order") <= 20 + 2
        assert rec.records and all(r["unsent"] is False for r in rec.records)


def test_a_long_wait_hands_back_pending_and_the_next_round_still_does_not_resend() -> None:
    clock = FakeClock()
    with TradeStub(StubConfig(place="buy_documented_neither", place_lands=False)) as stub:
        entry = command(ttl_s=60, now=clock.now())
        b = broker(stub)
        first, _ = run(stub, entry, clock=clock, block_s=5, b=b)
        assert first.state == "PENDING"
        rec = Recorder(entry)
        again = settle(b, entry, "贵州茅台", rec.hooks(), set, send_first=False, may_send=True, poll_s=1.0,
                       block_s=600, now=clock.now, sleep=clock.sleep)
        assert again.state == "FAILED" and stub.count("/buy") == 1


def dead_address() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_counter_is_allocated_again_after_a_connection_failure() -> None:
    with TradeStub() as stub:
        served = [dead_address(), stub.url]
        stub.answers["/server"] = lambda q: {"code": "0", "server": served.pop(0) if len(served) > 1 else served[0]}
        stub.config.allocation_paths = ("/server",)
        b = broker(stub)
        assert b.orders() == []
        assert stub.count("/server") == 2 and b.counter == stub.url


def test_a_send_that_never_reached_the_counter_is_sent_once_it_can_be() -> None:
    with TradeStub() as stub:
        b = broker(stub)
        dead = dead_address()
        flipped: list[bool] = []

        def check_hold(q: dict[str, str]) -> dict[str, Any]:
            if not flipped:  # the counter goes away between the session check and the /buy
                flipped.append(True)
                b.counter = dead
            return case("check_hold_documented")["body"]

        stub.answers["/check_hold"] = check_hold
        settled, rec = run(stub, command(), b=b)
        assert settled.state == "SUBMITTED" and settled.answered
        assert stub.count("/buy") == 1  # the first one never arrived anywhere
        assert [r["unsent"] for r in rec.records] == [False, True, False]
        assert any("not reached" in n for n in rec.notes)


def test_expired_command_that_never_reached_the_counter_fails_without_sending() -> None:
    clock = FakeClock()
    with TradeStub() as stub:
        entry = command(ttl_s=-1, now=clock.now())
        entry.extra["unsent"] = True
        rec = Recorder(entry)
        settled = settle(broker(stub), entry, "贵州茅台", rec.hooks(), set, send_first=False, may_send=False,
                         now=clock.now, sleep=clock.sleep)
        assert settled.state == "FAILED" and "never reached" in settled.reason
        assert stub.count("/buy") == 0


def test_order_already_claimed_by_another_command_is_not_adopted() -> None:
    clock = FakeClock()
    with TradeStub(StubConfig(place="buy_documented_neither")) as stub:
        b = broker(stub)
        first, _ = run(stub, command(now=clock.now(), ttl_s=5), clock=clock, b=b)
        assert first.state == "SUBMITTED"
        entry = command(now=clock.now(), ttl_s=5)
        rec = Recorder(entry)
        second = settle(b, entry, "贵州茅台", rec.hooks(), lambda: {first.order_id or ""}, send_first=True,
                        poll_s=1.0, now=clock.now, sleep=clock.sleep)
        # the second identical order got no id either; the list shows it as a new order: adopted
        assert second.state == "SUBMITTED" and second.order_id != first.order_id
        assert stub.count("/buy") == 2  # one per command
