"""The trader's port to a broker's trade API: what the trader core calls, and the outcomes it tells apart.

The trader never names a provider's client: the registry builds one (jvQuant's is
marketpipe/providers/jvquant/trade_api.py) and the trader calls it through :class:`TradeApi`.

Outcomes kept apart for the caller:

* success — the order id / the answer body;
* :class:`BrokerRejected` — the broker answered and said no (nothing happened);
* :class:`OutcomeUnknown` — no usable answer: for a place call the order **may exist**; the
  caller reconciles from the order list, never resends on this;
* :class:`NotSent` (an OutcomeUnknown) — the request provably never reached the counter: nothing can exist.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from marketpipe.market.chinatime import CST_OFFSET_S
from marketpipe.trader import statuses

FINAL_STATUSES = statuses.FINAL_SPELLINGS


class BrokerError(RuntimeError):
    pass


class BrokerRejected(BrokerError):
    """The broker answered and said no: nothing happened."""


class OutcomeUnknown(BrokerError):
    """No usable answer: the request may or may not have taken effect."""


class NotSent(OutcomeUnknown):
    """The request never reached the counter: it cannot have taken effect."""


@dataclass(frozen=True)
class BrokerOrder:
    order_id: str
    day: str
    time: str
    code: str
    name: str
    side: str  # "BUY" | "SELL" | "" (unfamiliar type text)
    status: str
    price: Decimal
    volume: int
    deal_price: Decimal
    deal_volume: int
    type: str = ""

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def epoch_s(self) -> int:
        """Order time as UTC epoch seconds (broker clock is China time); 0 when unreadable."""
        day = "".join(ch for ch in self.day if ch.isdigit())
        hms = "".join(ch for ch in self.time if ch.isdigit())[:6]
        try:
            st = time.strptime(day + hms.zfill(6), "%Y%m%d%H%M%S")
        except ValueError:
            return 0
        return calendar.timegm(st) - CST_OFFSET_S


class TradeApi(Protocol):
    """A broker account's trade API. Every write is sent at most once per call; an answer that is lost
    raises :class:`OutcomeUnknown` (or :class:`NotSent` when nothing can have arrived)."""

    #: the broker account it trades (the trader serves exactly this one)
    account: str

    def place(self, side: str, code: str, name: str, price: Decimal, volume: int) -> str:
        """Send one order (side ``BUY`` | ``SELL``), once. Returns the broker's order id."""
        ...

    def cancel(self, order_id: str) -> str:
        """Ask once to cancel; its effect shows in the order list. Returns the broker's message."""
        ...

    def orders(self) -> list[BrokerOrder]:
        """Today's orders of the account."""
        ...

    def positions(self) -> dict[str, Any]:
        """The account's holdings as the broker answers them."""
        ...
