"""`marketpipe trade` on a real broker against a counter that rejects one order at the exchange
(废单) and then moves: the allocated counter answers HTTP 503 with an HTML page and allocation
names another one. No restart: every command must end correctly on the running trader."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.simulators.runner import run as run_sim
from marketpipe.trader import commands
from tests.support.trader_stack import ACCOUNT, KEY, Events, start_trader, trader_env, with_topics


def buy(symbol: str, price: str, volume: int = 100) -> dict[str, Any]:
    return commands.place(ACCOUNT, symbol, "buy", price, volume, KEY, ttl_s=120)


def test_a_rejected_order_and_a_counter_that_moves_end_every_command_without_a_restart(kafka_bootstrap,
                                                                                          tmp_path) -> None:
    old, new = TradeCounter(fill_seconds=1.0), TradeCounter(fill_seconds=1.0)
    with run_sim("jvquant", rate=1, extra_routes=old.add_routes) as allocating, \
            run_sim("jvquant", rate=1, extra_routes=new.add_routes) as elsewhere:
        env = trader_env(kafka_bootstrap, tmp_path, allocating.base_url, MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL="1000000")
        s = with_topics(env)
        log = tmp_path / "trader.log"
        trader = start_trader(env, log)
        events = Events(s)
        try:
            first = buy("600519.SH", "1500.00")
            commands.send(s, first)
            events.wait(lambda: "FILLED" in events.states(first["command_id"]), timeout=90)

            old.fault("exchange_reject")  # accepted with an order id, then 废单
            rejected = buy("000001.SZ", "11.00", 200)
            commands.send(s, rejected)
            events.wait(lambda: "REJECTED" in events.states(rejected["command_id"]), timeout=60)

            old.fault("unavailable")  # 503 + HTML from here on ...
            allocating.sim.trade_server = elsewhere.base_url  # ... and allocation names the new counter
            later = [buy("300750.SZ", "200.00"), buy("600519.SH", "1501.00")]
            for cmd in later:
                commands.send(s, cmd)
            events.wait(lambda: all("FILLED" in events.states(c["command_id"]) for c in later), timeout=90)
            assert trader.poll() is None, "the trader exited: " + log.read_text(errors="replace")[-3000:]
        finally:
            trader.terminate()
            trader.wait(30)
            events.close()

    # exactly one /buy per placed command, each on the counter allocated at the time
    assert [(o.code, o.price) for o in old.placed_orders()] == [("600519", Decimal("1500")), ("000001", Decimal("11"))]
    assert [(o.code, o.price) for o in new.placed_orders()] == [("300750", Decimal("200")), ("600519", Decimal("1501"))]
    assert old.unavailable_answers > 0  # the old counter was asked, answered 503, and was left
    # the exchange rejection is terminal, keeps the counter's status text, and nothing follows it
    states = events.states(rejected["command_id"])
    assert states[:2] == ["ACCEPTED", "SUBMITTED"] and states[-1] == "REJECTED", states
    final = events.of(rejected["command_id"])[-1]
    assert "废单" in (final["reason"] or ""), final
    assert final["broker_order_id"] == old.placed_orders()[1].order_id
    for cmd in (first, *later):
        got = events.states(cmd["command_id"])
        assert got.count("SUBMITTED") == 1 and got[-1] == "FILLED" and "REJECTED" not in got, got
    submitted = {e["command_id"]: e["broker_order_id"] for e in events.seen if e["state"] == "SUBMITTED"}
    assert [submitted[c["command_id"]] for c in later] == [o.order_id for o in new.placed_orders()]


def test_a_parked_command_blocks_its_symbol_until_an_operator_resolves_it(kafka_bootstrap, tmp_path) -> None:
    """A counter that answers nothing usable: the command is parked UNKNOWN (the partition moves on),
    the next command for its symbol is refused (unresolved_order), a signed `order resolve` settles it,
    and then the symbol trades again: one /buy in all."""
    import subprocess
    import sys

    counter = TradeCounter(fill_seconds=1.0)
    with run_sim("jvquant", rate=1, extra_routes=counter.add_routes) as sim:
        env = trader_env(kafka_bootstrap, tmp_path, sim.base_url, MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL="1000000")
        s = with_topics(env)
        log = tmp_path / "trader.log"
        trader = start_trader(env, log)
        events = Events(s)
        try:
            counter.fault("unavailable")
            stuck = buy("600519.SH", "1500.00")
            commands.send(s, stuck)
            events.wait(lambda: any("parked" in (e["reason"] or "") for e in events.of(stuck["command_id"])))
            blocked = buy("600519.SH", "1499.00")
            other = buy("000001.SZ", "11.00", 200)  # another symbol is not held up by the parked one
            commands.send(s, blocked)
            commands.send(s, other)
            events.wait(lambda: "REJECTED" in events.states(blocked["command_id"])
                        and "UNKNOWN" in events.states(other["command_id"]))
            assert events.of(blocked["command_id"])[-1]["rule"] == "unresolved_order"

            resolved = subprocess.run([sys.executable, "-m", "marketpipe", "order", "resolve", stuck["command_id"],
                                       "--not-placed"], env=env, capture_output=True, text=True, timeout=60)
            assert resolved.returncode == 0, resolved.stderr
            events.wait(lambda: "FAILED" in events.states(stuck["command_id"]))
            assert "operator" in (events.of(stuck["command_id"])[-1]["reason"] or "")

            counter.fault("clear")
            after = buy("600519.SH", "1501.00")
            commands.send(s, after)
            events.wait(lambda: "FILLED" in events.states(after["command_id"]), timeout=90)
            assert trader.poll() is None, log.read_text(errors="replace")[-3000:]
        finally:
            trader.terminate()
            trader.wait(30)
            events.close()
    # the parked and the refused commands never reached the counter; the later ones did, once each
    assert sorted((o.code, o.price) for o in counter.placed_orders()) == \
        [("000001", Decimal("11")), ("600519", Decimal("1501"))]
