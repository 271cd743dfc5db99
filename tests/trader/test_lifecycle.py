"""Issue 18 (trader): an order's whole life at the counter, on answers in the documents' shapes
(seed 004 ``/check_order`` rows, protocols.md §1.5 statuses). No broker: the trader's producer is
a recorder, the counter a scripted fake."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from marketpipe.trader import commands, rules, statuses
from marketpipe.trader.ledger import Entry
from marketpipe.trader.trade_api import NotSent, OutcomeUnknown
from tests.support.scripted_trader import (
    KEY,
    MOUTAI,
    ScriptedCounter,
    buy,
    events,
    handle,
    make_trader,
    row,
    states,
    submitted,
)


def test_the_security_name_comes_from_the_reference_else_md_quote_else_the_command_is_rejected() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter, {"600519.SH": rules.Reference(Decimal("1500.00"), "")})
    nameless = buy()
    assert handle(trader, nameless).commit
    assert [(e["state"], e["rule"]) for e in events(trader, rec, nameless["command_id"])] == \
        [("REJECTED", "unknown_name")]
    assert counter.placed == []  # never sent with an empty name
    trader.names.learn("600519.SH", "贵州茅台")  # as md.quote carries it
    named = buy()
    handle(trader, named)
    assert counter.placed[0][2] == "贵州茅台"
    assert events(trader, rec, named["command_id"])[-1]["state"] == "SUBMITTED"


def test_a_halt_while_a_command_settles_stops_the_resend() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter, MOUTAI)
    trader.machine.settle_block_s = 5.0
    counter.place_faults = [NotSent("buy not sent: login: HTTP 503")]
    # the halt is written while the first (unsent) try is being settled
    halt = commands.kill_switch_value(True, "risk officer")
    counter.on_place = lambda: setattr(trader.switch, "refresh",
                                       lambda: trader.on_control(commands.KILL_SWITCH_KEY, halt))
    cmd = buy()
    assert handle(trader, cmd).commit
    assert len(counter.placed) == 1  # not sent again after the halt
    last = events(trader, rec, cmd["command_id"])[-1]
    assert (last["state"], last["rule"]) == ("REJECTED", "kill_switch")


def test_an_unresolved_command_is_parked_blocks_its_symbol_and_is_reconciled_in_the_background() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter, MOUTAI)
    counter.place_faults = [OutcomeUnknown("buy: unreadable answer (IncompleteRead)")]
    counter.list_fault = OutcomeUnknown("check_order: HTTP 503")
    first = buy(ttl_s=600)
    assert handle(trader, first).commit  # the partition moves on
    entry = trader.ledger.get(first["command_id"])
    assert entry is not None and entry.state == "INTENT"
    parked = events(trader, rec, first["command_id"])[-1]
    assert parked["state"] == "UNKNOWN" and "parked" in parked["reason"]
    second = buy(price="1501.00")
    assert handle(trader, second).commit
    assert [(e["state"], e["rule"]) for e in events(trader, rec, second["command_id"])] == \
        [("REJECTED", "unresolved_order")]
    assert len(counter.placed) == 1
    # the counter answers again and lists the order: the background poll resolves it
    counter.list_fault = None
    counter.rows = [row("已报", order_id="1334564")]
    counter.rows[0]["day"], counter.rows[0]["time"] = "", ""  # no time: matched on code, side, price, volume
    trader.maybe_poll()
    assert entry.state == "SUBMITTED" and entry.broker_order_id == "1334564"
    third = buy(price="1502.00")
    handle(trader, third)
    assert events(trader, rec, third["command_id"])[-1]["state"] == "SUBMITTED"
    assert len(counter.placed) == 2  # one /buy per placed command


def test_an_operator_resolves_a_parked_command_with_a_signed_record() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter, MOUTAI)
    counter.place_faults = [OutcomeUnknown("buy: no answer")]
    counter.list_fault = OutcomeUnknown("check_order: HTTP 503")
    cmd = buy(ttl_s=600)
    handle(trader, cmd)
    key = b"resolve:" + cmd["command_id"].encode()
    trader.on_control(key, json.dumps({"command_id": cmd["command_id"], "placed": None}).encode())  # unsigned
    assert trader.ledger.get(cmd["command_id"]).state == "INTENT"  # type: ignore[union-attr]
    trader.on_control(key, commands.resolution_value(cmd["command_id"], None, KEY))
    entry = trader.ledger.get(cmd["command_id"])
    assert entry is not None and entry.state == "FAILED"
    last = events(trader, rec, cmd["command_id"])[-1]
    assert last["state"] == "FAILED" and "operator" in last["reason"]
    again = buy(price="1501.00")
    handle(trader, again)
    assert events(trader, rec, again["command_id"])[-1]["state"] == "SUBMITTED"


def test_an_order_the_counter_lists_as_fei_dan_ends_rejected_with_its_reason() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    counter.rows = [row("已报")]
    trader.fills.poll()
    counter.rows = [row("废单")]
    trader.fills.poll()
    trader.fills.poll()  # polled again: nothing new
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
        trader.fills.poll()
    assert states(trader, rec) == [("PARTIALLY_FILLED", 50), ("FILLED", 100)]


def test_what_was_emitted_survives_a_restart() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    counter.rows = [row("部成", 50)]
    trader.fills.poll()
    # a new process reads the entry back from the ledger
    again, rec2 = make_trader(counter)
    again.ledger.entries[entry.command_id] = Entry.from_bytes(entry.to_bytes())
    trader.fills.poll()
    again.fills.poll()
    assert states(again, rec2) == []
    counter.rows = [row("部撤", 50)]
    again.fills.poll()
    assert states(again, rec2) == [("CANCELLED", 50)]


def test_an_unknown_status_is_counted_and_changes_nothing() -> None:
    counter = ScriptedCounter()
    trader, rec = make_trader(counter)
    entry = submitted(trader)
    before = statuses.UNKNOWN_STATUS.labels("状态X")._value.get()
    counter.rows = [row("状态X")]
    trader.fills.poll()
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
