"""Drive one order command to a known state at the broker, sending it at most once.

The broker has no client order id, so whether an order arrived is read from its order list
(``/check_order``) by what the order looks like: code, side, exact price, volume, and an order
time not before the intent (minus a clock allowance), excluding orders other commands already
own. When the broker spells the order ``type`` in a way we do not know, the side is left out of
the match (code, price, volume and time still must agree).

:func:`settle` is a loop, not a recursion, bounded by the command's ``expires_at``:

* a send that answered with an order id → SUBMITTED; with a refusal → FAILED (broker's message);
* no usable answer → the order may exist: poll the list until it shows up (adopt its id), or
  the command expires with no trace of it (FAILED); it is **never** sent again;
* a send that provably never reached the counter (:class:`~marketpipe.trader.trade_api.NotSent`, recorded in
  the ledger entry) is sent again while the command is valid and the list shows no such order;
* a list that cannot be read, or a wait longer than ``block_s``, leaves the command PENDING (the
  caller parks it INTENT and asks again in the background; the ledger keeps what is known);
* the kill switch (``hooks.halted``, read between polls) stops any further send: a command that
  has not been sent yet ends HALTED; reading the list to resolve one that was sent goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable

from marketpipe.trader.ledger import Entry
from marketpipe.trader.trade_api import BrokerError, BrokerOrder, BrokerRejected, NotSent, OutcomeUnknown, TradeApi

#: broker and trader clocks may disagree; an order stamped this much before our intent still counts
CLOCK_ALLOWANCE_S = 5
#: an order sent just before its command expires may take this long to show in the list
SETTLE_MS = 3000
#: ledger entry ``extra`` keys
UNSENT, SENT_MS = "unsent", "sent_ms"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "found" | "absent" | "ambiguous"
    order: BrokerOrder | None = None
    candidates: tuple[BrokerOrder, ...] = ()


def resolve(entry: Entry, orders: Iterable[BrokerOrder], claimed: set[str]) -> Verdict:
    code = entry.symbol.split(".")[0]
    price = Decimal(entry.price or "0")
    earliest = entry.intent_ms // 1000 - CLOCK_ALLOWANCE_S
    matches = tuple(sorted(
        (o for o in orders
         if o.order_id not in claimed and o.code == code and (o.side == entry.side or not o.side)
         and o.price == price and o.volume == entry.volume and (o.epoch_s == 0 or o.epoch_s >= earliest)),
        key=lambda o: (o.day, o.time, o.order_id)))
    if not matches:
        return Verdict("absent")
    if len(matches) == 1:
        return Verdict("found", matches[0], matches)
    return Verdict("ambiguous", None, matches)


@dataclass(frozen=True)
class Settled:
    state: str  # "SUBMITTED" | "FAILED" | "PENDING" | "HALTED" (not sent: the kill switch is on)
    order_id: str | None = None
    reason: str = ""
    answered: bool = False  # SUBMITTED by the broker's answer to our send (not from the list)


@dataclass(frozen=True)
class Hooks:
    record: Callable[[], None]  # make the entry durable (before every send; after a NotSent)
    note: Callable[[str], None]  # report the command UNKNOWN with this reason
    halted: Callable[[], bool] = lambda: False  # the kill switch, read again before every send


def settle(broker: TradeApi, entry: Entry, name: str, hooks: Hooks, claimed: Callable[[], set[str]], *,
           send_first: bool = False, may_send: bool = True, poll_s: float = 1.0, block_s: float = 10.0,
           now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> Settled:
    code = entry.symbol.split(".")[0]
    block_until = now() + block_s
    send, unreadable_noted = send_first, False
    while True:
        if send and hooks.halted():
            return Settled("HALTED", reason="the kill switch went on before the order was sent")
        if send:
            send = False
            entry.extra[UNSENT], entry.extra[SENT_MS] = False, int(now() * 1000)
            hooks.record()  # durable "may have been sent" before the broker hears anything
            try:
                order_id = broker.place(entry.side or "", code, name, Decimal(entry.price or "0"), entry.volume)
            except BrokerRejected as exc:
                return Settled("FAILED", reason=str(exc))
            except NotSent as exc:
                entry.extra[UNSENT] = True
                hooks.record()
                hooks.note(f"{exc}; will send while the command is valid")
            except OutcomeUnknown as exc:
                hooks.note(f"{exc}; reconciling with the broker's order list")
            else:
                return Settled("SUBMITTED", order_id, answered=True)
        try:
            orders = broker.orders()
        except BrokerError as exc:
            if not unreadable_noted:
                hooks.note(f"cannot read the broker's orders ({exc}); will retry")
                unreadable_noted = True
            if now() >= block_until:
                return Settled("PENDING", reason=f"broker's orders unreadable: {exc}")
            sleep(poll_s)
            continue
        verdict = resolve(entry, orders, claimed())
        if verdict.outcome != "absent":
            order = verdict.order or verdict.candidates[0]
            note = "" if verdict.outcome == "found" else \
                f" (adopted the earliest of {len(verdict.candidates)} identical unclaimed orders)"
            return Settled("SUBMITTED", order.order_id, reason=f"reconciled with the broker's order list{note}")
        t_ms = int(now() * 1000)
        if entry.extra.get(UNSENT):  # provably never arrived
            if may_send and t_ms < entry.expires_at:
                if t_ms >= block_until * 1000:
                    return Settled("PENDING", reason="not sent yet")
                sleep(poll_s)
                send = True
                continue
            return Settled("FAILED", reason="never reached the broker and expired before it could be sent")
        if t_ms >= max(entry.expires_at, int(entry.extra.get(SENT_MS) or entry.intent_ms) + SETTLE_MS):
            return Settled("FAILED", reason="no matching order in the broker's list by the command's expiry "
                                            "(the send got no usable answer; it was not repeated)")
        if t_ms >= block_until * 1000:
            return Settled("PENDING", reason="order not in the broker's list yet")
        sleep(poll_s)
