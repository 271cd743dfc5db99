"""Decide what happened to a command whose broker call may or may not have gone through.

Pure: given the ledger's INTENT entry and the broker's order list, say whether the order is
there (adopt its id), provably absent (it may be sent), or ambiguous (stay UNKNOWN, ask a
human). The broker has no client order id, so the match is on what the order looks like:
code, side, exact price, volume, and an order time not before the intent (minus a clock
allowance), excluding orders other commands already own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from trader.broker import BrokerOrder
from trader.ledger import Entry

#: broker and trader clocks may disagree; an order stamped this much before our intent still counts
CLOCK_ALLOWANCE_S = 5


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
         if o.order_id not in claimed and o.code == code and o.side == entry.side and o.price == price
         and o.volume == entry.volume and (o.epoch_s == 0 or o.epoch_s >= earliest)),
        key=lambda o: (o.day, o.time, o.order_id)))
    if not matches:
        return Verdict("absent")
    if len(matches) == 1:
        return Verdict("found", matches[0], matches)
    return Verdict("ambiguous", None, matches)
