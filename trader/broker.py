"""jvQuant trade API client: server allocation, login ticket, place, cancel, orders, positions.

All calls are HTTP GET with query parameters; numbers come back as strings; success is
``code == "0"`` (tolerating an int 0). Three outcomes matter to the caller and are kept apart:

* success — the answer body;
* :class:`BrokerRejected` — the broker answered and said no (nothing happened);
* :class:`OutcomeUnknown` — no usable answer (timeout, dropped connection, garbage): for a
  place call the order **may exist**; the caller must reconcile, never resend.

The ticket is cached and refreshed ``refresh_margin`` seconds before it expires. A
non-success answer to a query or to a place/cancel (a definite "no", so nothing was
placed) triggers one re-login and one retry; a second failure is final.
"""

from __future__ import annotations

import calendar
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from marketpipe.quietlog import warn_plaintext

log = logging.getLogger(__name__)

TYPE_BUY, TYPE_SELL = "证券买入", "证券卖出"
FINAL_STATUSES = {"已成", "部撤", "已撤", "废单"}


class BrokerError(RuntimeError):
    pass


class BrokerRejected(BrokerError):
    """The broker answered with a non-success code."""


class OutcomeUnknown(BrokerError):
    """No usable answer: the request may or may not have taken effect."""


@dataclass(frozen=True)
class BrokerOrder:
    order_id: str
    day: str
    time: str
    code: str
    name: str
    side: str  # "BUY" | "SELL"
    status: str
    price: Decimal
    volume: int
    deal_price: Decimal
    deal_volume: int

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def epoch_s(self) -> int:
        """Order time as UTC epoch seconds (broker clock is China time)."""
        try:
            st = time.strptime(self.day + self.time.zfill(6), "%Y%m%d%H%M%S")
        except ValueError:
            return 0
        return calendar.timegm(st) - 8 * 3600


def parse_order(row: dict[str, Any]) -> BrokerOrder:
    side = "BUY" if row.get("type") == TYPE_BUY else "SELL" if row.get("type") == TYPE_SELL else ""
    return BrokerOrder(str(row.get("order_id", "")), str(row.get("day", "")), str(row.get("time", "")),
                       str(row.get("code", "")), str(row.get("name", "")), side, str(row.get("status", "")),
                       Decimal(str(row.get("order_price") or "0")), int(Decimal(str(row.get("order_volume") or "0"))),
                       Decimal(str(row.get("deal_price") or "0")), int(Decimal(str(row.get("deal_volume") or "0"))))


def _ok(body: dict[str, Any]) -> bool:
    return str(body.get("code")) == "0"


def _message(body: dict[str, Any]) -> str:
    return str(body.get("message") or body.get("msg") or f"code {body.get('code')}")


class JvQuantBroker:
    def __init__(self, base_url: str, token: str, account: str, password: str, timeout: float = 10.0,
                 refresh_margin: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.account = account
        self._password = password
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.clock = clock
        self.counter: str | None = None
        self._ticket: str | None = None
        self._expires = 0.0
        self.logins = 0

    # ---- transport --------------------------------------------------------------------------
    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        safe = url.split("?")[0]
        warn_plaintext(safe, "jvQuant trade token and password")
        try:
            with urllib.request.urlopen(f"{url}?{query}", timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise OutcomeUnknown(f"{safe}: HTTP {exc.code}") from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
            raise OutcomeUnknown(f"{safe}: no answer ({getattr(exc, 'reason', exc)})") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise OutcomeUnknown(f"{safe}: answer is not JSON") from None
        if not isinstance(body, dict):
            raise OutcomeUnknown(f"{safe}: answer is not a JSON object")
        return body

    # ---- session ----------------------------------------------------------------------------
    def allocate(self) -> str:
        body = self._get(f"{self.base_url}/query/server", {"market": "ab", "type": "trade", "token": self._token})
        if not _ok(body) or not body.get("server"):
            raise BrokerRejected(f"trade server allocation refused: {_message(body)}")
        server = str(body["server"])
        self.counter = (server if "://" in server else f"http://{server}").rstrip("/")
        return self.counter

    def login(self) -> None:
        if self.counter is None:
            self.allocate()
        body = self._get(f"{self.counter}/login", {"token": self._token, "acc": self.account,
                                                   "pass": self._password})
        if not _ok(body) or not body.get("ticket"):
            raise BrokerRejected(f"login refused: {_message(body)}")
        self._ticket = str(body["ticket"])
        try:
            expire = float(body.get("expire", 0) or 0)
        except ValueError:
            expire = 0.0
        self._expires = self.clock() + (expire if expire > 0 else 600.0)
        self.logins += 1
        log.info("logged in to the trade counter; ticket valid for %.0f s", self._expires - self.clock())

    def ticket(self) -> str:
        if self._ticket is None or self.clock() > self._expires - self.refresh_margin:
            self.login()
        assert self._ticket is not None
        return self._ticket

    def _call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call with the ticket; a definite refusal re-logs in once and retries once."""
        ticket = self.ticket()  # first: it allocates the counter address on first use
        body = self._get(f"{self.counter}{path}", {"token": self._token, "ticket": ticket, **params})
        if _ok(body):
            return body
        log.warning("%s refused (%s); logging in again and retrying once", path, _message(body))
        self.login()
        body = self._get(f"{self.counter}{path}", {"token": self._token, "ticket": self.ticket(), **params})
        if not _ok(body):
            raise BrokerRejected(f"{path.strip('/')} refused: {_message(body)}")
        return body

    # ---- operations -------------------------------------------------------------------------
    def place(self, side: str, code: str, name: str, price: Decimal, volume: int) -> str:
        path = "/buy" if side == "BUY" else "/sale"
        body = self._call(path, {"code": code, "name": name, "price": str(price), "volume": str(volume)})
        order_id = str(body.get("order_id") or "")
        if not order_id:
            raise OutcomeUnknown(f"{path.strip('/')}: success without an order id")
        return order_id

    def cancel(self, order_id: str) -> str:
        return _message(self._call("/cancel", {"order_id": order_id}))

    def orders(self) -> list[BrokerOrder]:
        return [parse_order(row) for row in self._call("/check_order", {}).get("list") or []]

    def positions(self) -> dict[str, Any]:
        return self._call("/check_hold", {})
