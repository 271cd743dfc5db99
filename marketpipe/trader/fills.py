"""What the counter says about orders already placed: fills and status changes, and positions.

Fills and status changes are polled from ``/check_order`` for the ledger's open orders and become
``OrderEvent`` records (:mod:`marketpipe.trader.statuses` says which); positions from ``/check_hold``
go to ``order.positions`` under the account's public name. A poll that fails is logged and tried at
the next interval: it never stops the trader.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from marketpipe.trader import rules, statuses
from marketpipe.trader.events import EventWriter
from marketpipe.trader.ledger import REPORTED, Ledger
from marketpipe.trader.trade_api import BrokerRejected, OutcomeUnknown, TradeApi

log = logging.getLogger(__name__)


class FillPoll:
    """Turns the counter's order list into events for the ledger's open orders, each reported once."""

    def __init__(self, broker: TradeApi, ledger: Ledger, events: EventWriter) -> None:
        self.broker = broker
        self.ledger = ledger
        self.events = events

    def poll(self) -> None:
        open_entries = {e.broker_order_id: e for e in self.ledger.open_orders() if e.broker_order_id}
        try:
            orders = self.broker.orders() if open_entries else []
        except (OutcomeUnknown, BrokerRejected) as exc:
            log.warning("order poll failed: %s", exc)
            return
        for order in orders:
            entry = open_entries.get(order.order_id)
            if entry is None:
                continue
            last_state, last_filled = entry.extra.get(REPORTED) or ("", entry.filled_volume)
            nxt = statuses.step(last_state, int(last_filled), order.status, order.deal_volume, order.volume)
            if nxt is None:
                continue
            entry.filled_volume, entry.broker_status = nxt.filled, order.status
            entry.extra[REPORTED] = [nxt.state, nxt.filled]  # durable: a restart does not emit it again
            if nxt.final:
                entry.state = "DONE"
            reason = order.status
            if nxt.state == statuses.REJECTED:
                reason = f"the counter lists the order as {order.status} (rejected after it was accepted)"
            self.events.emit(entry, entry, nxt.state, broker_order_id=order.order_id, filled=nxt.filled,
                             avg_price=order.deal_price if nxt.filled else None, reason=reason)
            self.ledger.put(entry, flush=False)
        self.events.flush()


class PositionPublisher:
    """Writes the counter's holdings to order.positions, one record per security."""

    def __init__(self, broker: TradeApi, codec: Any, topic: str, accounts: rules.Accounts,
                 events: EventWriter) -> None:
        self.broker = broker
        self.codec = codec
        self.topic = topic
        self.accounts = accounts
        self.events = events

    def publish(self) -> None:
        try:
            hold = self.broker.positions()
        except (OutcomeUnknown, BrokerRejected) as exc:
            log.warning("position poll failed: %s", exc)
            return
        from marketpipe.schemas.codec import CodecError
        from marketpipe.trader.ledger_codec import position_record

        now_ms = int(time.time() * 1000)
        encode = self.codec.encoder("Position", self.topic)
        for row in hold.get("hold_list") or []:
            account = self.accounts.public  # the number is a secret: never on a topic
            try:
                value = encode(position_record(account, row, now_ms))
            except CodecError as exc:  # one odd row must not stop the poll, nor the trader
                log.warning("position row of %s not published: %s", row.get("code"), exc)
                continue
            self.events.write(self.topic, f"{account}:{row.get('code')}".encode(), value)
        self.events.poll()
