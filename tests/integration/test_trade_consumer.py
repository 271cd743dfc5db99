"""The trade consumer against a real broker and the jvQuant trade simulator.

One trader process serves the module's behaviour tests (each uses its own command ids); the
crash test runs its own trader processes because it kills them.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any, Iterator

import pytest

from marketpipe.kafka import topics
from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.trader import commands, signing
from tests.support import trader_stack
from tests.support.trader_stack import ACCOUNT, KEY, Events, start_trader, wait_log, with_topics

# the module fixtures (one stack and one trader process for this module's tests)
stack = trader_stack.stack
trader = trader_stack.trader


@pytest.fixture
def events(stack: dict[str, Any]) -> Iterator[Events]:
    ev = Events(stack["settings"])
    yield ev
    ev.close()


def place(stack: dict[str, Any], symbol: str = "600519.SH", price: str = "1500.00", volume: int = 100,
          **kw: Any) -> dict[str, Any]:
    return commands.place(ACCOUNT, symbol, "buy", price, volume, KEY, **kw)


def test_same_command_twice_places_one_order_and_reports_the_fill(stack, trader, events) -> None:
    counter: TradeCounter = stack["counter"]
    before = counter.placed
    cmd = place(stack)
    commands.send(stack["settings"], cmd)
    commands.send(stack["settings"], cmd)  # redelivery of the very same command
    events.wait(lambda: "FILLED" in events.states(cmd["command_id"]))
    states = events.states(cmd["command_id"])
    assert states.count("SUBMITTED") == 1 and states.count("ACCEPTED") == 1
    assert states[:2] == ["ACCEPTED", "SUBMITTED"]
    assert counter.placed == before + 1
    filled = events.of(cmd["command_id"])[-1]
    assert filled["filled_volume"] == 100 and filled["avg_fill_price"] == Decimal("1500.000")
    submitted = next(e for e in events.of(cmd["command_id"]) if e["state"] == "SUBMITTED")
    assert submitted["broker_order_id"] == counter.placed_orders()[-1].order_id
    # event ids are unique per command (consumers dedupe on them)
    ids = [e["event_id"] for e in events.of(cmd["command_id"])]
    assert len(ids) == len(set(ids))
    # the account number is a secret: events name the account by its keyed tag
    assert {e["account"] for e in events.of(cmd["command_id"])} == {signing.account_tag(ACCOUNT, KEY)}


def test_the_trader_consumer_group_carries_the_topic_prefix(stack, trader) -> None:
    """Pipelines sharing a cluster (different prefixes) must not share the trader's group."""
    from confluent_kafka.admin import AdminClient

    from marketpipe.trader.consumer import groups

    s = stack["settings"]
    group = groups(s).commands
    assert group == f"marketpipe-trader-{s.topic_prefix.rstrip('.')}"
    admin = AdminClient(s.kafka.client_config())
    deadline = time.monotonic() + 60
    held: set[str] = set()
    while not held and time.monotonic() < deadline:
        desc = admin.describe_consumer_groups([group])[group].result(10)
        held = {tp.topic for m in desc.members for tp in m.assignment.topic_partitions}
    assert held == {s.topic(topics.ORDER_COMMANDS)}


def test_invalid_commands_are_rejected_with_the_rule_and_nothing_is_sent(stack, trader, events) -> None:
    counter: TradeCounter = stack["counter"]
    before = counter.placed
    unsigned = {**place(stack), "signature": ""}
    tampered = {**place(stack), "volume": 10_000}
    expired = place(stack, ttl_s=-5)
    cases = {
        "signature": [unsigned, tampered],
        "expired": [expired],
        "lot_size": [place(stack, volume=150)],
        "price_tick": [place(stack, price="1500.005")],
        "price_band": [place(stack, price="1700.00"), place(stack, symbol="601318.SH", price="50.00")],
        "max_order_notional": [place(stack, volume=1000)],
    }
    for batch in cases.values():
        for cmd in batch:
            commands.send(stack["settings"], cmd)
    every = [c for batch in cases.values() for c in batch]
    events.wait(lambda: all("REJECTED" in events.states(c["command_id"]) for c in every))
    for rule, batch in cases.items():
        for cmd in batch:
            rejected = [e for e in events.of(cmd["command_id"]) if e["state"] == "REJECTED"]
            assert [e["rule"] for e in rejected] == [rule], (rule, events.of(cmd["command_id"]))
            assert "SUBMITTED" not in events.states(cmd["command_id"])
    assert counter.placed == before


def test_kill_switch_halts_new_orders_at_once(stack, trader, events) -> None:
    counter: TradeCounter = stack["counter"]
    log = stack["tmp"] / "marketpipe.trader.log"
    halts, resumes = (log.read_text().count(line) for line in ("kill switch ON: new orders halted", "kill switch off"))
    commands.set_kill_switch(stack["settings"], True, "test")
    wait_log(log, "kill switch ON: new orders halted", halts + 1)  # the trader applied it
    before = counter.placed
    halted = place(stack)
    commands.send(stack["settings"], halted)
    events.wait(lambda: "REJECTED" in events.states(halted["command_id"]))
    assert events.of(halted["command_id"])[-1]["rule"] == "kill_switch"
    assert counter.placed == before
    commands.set_kill_switch(stack["settings"], False, key=KEY)
    wait_log(log, "kill switch off", resumes + 1)
    resumed = place(stack)
    commands.send(stack["settings"], resumed)
    events.wait(lambda: "SUBMITTED" in events.states(resumed["command_id"]))
    assert counter.placed == before + 1


def test_only_a_signed_resume_lifts_a_halt(stack, trader, events) -> None:
    """Issue 22: anyone who can write order.control could lift a halt with {"halted": false} or a
    tombstone; both now leave the trader halted, and the signed `marketpipe order resume` lifts it."""
    from confluent_kafka import Producer

    s, counter = stack["settings"], stack["counter"]
    log = stack["tmp"] / "marketpipe.trader.log"
    refusal = "kill switch stays ON: resume record"
    halts, refused, resumes = (log.read_text().count(t) for t in
                               ("kill switch ON: new orders halted", refusal, "kill switch off"))
    commands.set_kill_switch(s, True, "risk officer")
    wait_log(log, "kill switch ON: new orders halted", halts + 1)
    attacker = Producer(s.kafka.client_config())
    for value in (json.dumps({"halted": False}).encode(), None):
        attacker.produce(s.topic(topics.ORDER_CONTROL), key=commands.KILL_SWITCH_KEY, value=value)
    assert attacker.flush(30) == 0
    wait_log(log, refusal, refused + 2)
    before = counter.placed
    still_halted = place(stack)
    commands.send(s, still_halted)
    events.wait(lambda: "REJECTED" in events.states(still_halted["command_id"]))
    assert events.of(still_halted["command_id"])[-1]["rule"] == "kill_switch"
    assert counter.placed == before
    text = log.read_text()
    assert "not signed" in text and "tombstone" in text
    commands.set_kill_switch(s, False, "all clear", key=KEY)
    wait_log(log, "kill switch off", resumes + 1)
    lifted = place(stack)
    commands.send(s, lifted)
    events.wait(lambda: "SUBMITTED" in events.states(lifted["command_id"]))
    assert counter.placed == before + 1


def test_dropped_answer_is_reconciled_not_resent(stack, trader, events) -> None:
    counter: TradeCounter = stack["counter"]
    before = counter.placed
    counter.fault("drop_after_accept")
    try:
        cmd = place(stack, symbol="000001.SZ", price="11.00", volume=200)
        commands.send(stack["settings"], cmd)
        events.wait(lambda: "SUBMITTED" in events.states(cmd["command_id"]))
    finally:
        counter.fault("clear")
    states = events.states(cmd["command_id"])
    assert states.index("UNKNOWN") < states.index("SUBMITTED")
    submitted = next(e for e in events.of(cmd["command_id"]) if e["state"] == "SUBMITTED")
    assert "reconciled" in submitted["reason"]
    assert counter.placed == before + 1
    assert submitted["broker_order_id"] == counter.placed_orders()[-1].order_id


def test_expired_ticket_means_a_transparent_login(stack, trader, events) -> None:
    counter: TradeCounter = stack["counter"]
    warm = place(stack, symbol="300750.SZ", price="200.00")
    commands.send(stack["settings"], warm)
    events.wait(lambda: "SUBMITTED" in events.states(warm["command_id"]))
    logins = counter.logins
    counter.fault("expire_tickets")
    cmd = place(stack, symbol="300750.SZ", price="201.00")
    commands.send(stack["settings"], cmd)
    events.wait(lambda: "SUBMITTED" in events.states(cmd["command_id"]))
    assert counter.logins == logins + 1
    assert "FAILED" not in events.states(cmd["command_id"])


def test_crash_after_the_broker_accepted_gives_exactly_one_order(stack, events) -> None:
    counter: TradeCounter = stack["counter"]
    env = {**stack["env"], "MARKETPIPE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}."}
    s = with_topics(env)
    log = stack["tmp"] / "crash.log"
    before = counter.placed
    crashing = start_trader(env, log, {"MARKETPIPE_TRADER_CRASH_POINT": "after_broker_accept"})
    cmd = place(stack, ttl_s=120)
    commands.send(s, cmd)
    assert crashing.wait(60) == -9, log.read_text()
    assert counter.placed == before + 1  # the broker has the order; nothing recorded it as submitted
    restarted = start_trader(env, log)
    try:
        ev = Events(s)
        ev.wait(lambda: "FILLED" in ev.states(cmd["command_id"]), timeout=60)
        submitted = [e for e in ev.of(cmd["command_id"]) if e["state"] == "SUBMITTED"]
        assert len(submitted) == 1 and "reconciled" in submitted[0]["reason"]
        ev.close()
    finally:
        restarted.terminate()
        restarted.wait(30)
    assert counter.placed == before + 1, log.read_text()[-3000:]
