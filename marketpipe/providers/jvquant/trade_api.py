"""jvQuant trade API client: server allocation, login ticket, place, cancel, orders, positions — the
jvQuant adapter behind the trader's :class:`~marketpipe.trader.trade_api.TradeApi` port.

All calls are HTTP GET with query parameters; numbers come back as strings. Answers are read
both as the provider's trade document prints them (``/buy`` ``/sale`` answer ``message`` +
``order_id``, ``/check_order`` ``/check_hold`` answer ``message`` + data, ``code`` only on
login and cancel) and as protocols.md §1.5 notes them (``code:"0"`` on every body):

* ``code`` counts only where present: ``"0"`` (or 0) is success, anything else a refusal;
* place: an order id means placed; a message without an order id means refused; neither (or
  ``code "0"`` without an id) means the outcome is unknown;
* reads: success is ``code "0"``, or no code and the data field present; a message without
  the data is a refusal, never "no orders".

Outcomes kept apart for the caller:

* success — the order id / the answer body;
* :class:`BrokerRejected` — the broker answered and said no (nothing happened);
* :class:`OutcomeUnknown` — no usable answer: for a place call the order **may exist**; the
  caller reconciles from the order list, never resends on this;
* :class:`NotSent` (an OutcomeUnknown) — the request provably never reached the counter
  (connection refused, name not resolved, session not established): nothing can exist.

Never twice: ``/buy`` and ``/sale`` are sent at most once per :meth:`place`, by no retry of
the transport (urllib does none; redirects are not followed) and by no re-login. A read refused once logs in again and is
retried once. Because a ticket the counter silently dropped would cost an order, a place (and a
cancel: a repeated cancel would be answered "not cancellable") first checks the session with a
read (``/check_hold``, the cheapest query), which may re-login.

The counter moves (the document warns the allocated address changes): a connection failure, an
HTTP status other than 200 (documented refusals are HTTP 200 with a message), an answer that is
not a JSON object, half an answer (``IncompleteRead``, a broken status line) or a ticket refused
twice drops the counter address, logged and counted
(``marketpipe_trader_counter_reallocations_total``); the next call allocates again. A read is
retried once on the new counter. A write (``/buy``, ``/sale``, ``/cancel``) whose answer is lost or
unreadable is never retried here: :class:`OutcomeUnknown`, reconciled from ``/check_order`` on
the new counter. Anything that fails before the write is sent (session check, login) is
:class:`NotSent`.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from marketpipe.kafka.quietlog import warn_plaintext
from marketpipe.providers.jvquant import protocol as jvquant_protocol
from marketpipe.trader import metrics
from marketpipe.trader.trade_api import BrokerOrder, BrokerRejected, NotSent, OutcomeUnknown

log = logging.getLogger(__name__)

TYPE_BUY, TYPE_SELL = "证券买入", "证券卖出"
#: order ``type`` spellings beyond the Chinese ones (担保品买入, 融券卖出 ... contain 买/卖)
_BUY_WORDS, _SELL_WORDS = {"b", "buy"}, {"s", "sell", "sale"}


@dataclass(frozen=True)
class PlaceAnswer:
    outcome: str  # "placed" | "refused" | "unknown"
    order_id: str = ""
    message: str = ""


def place_answer(body: dict[str, Any]) -> PlaceAnswer:
    """What a /buy or /sale answer says, under both readings (protocols.md §0)."""
    order_id = str(body.get("order_id") or "").strip()
    message = str(body.get("message") or body.get("msg") or "").strip()
    code = body.get("code")
    if order_id:
        return PlaceAnswer("placed", order_id, message)
    if code is not None and str(code) != "0":
        return PlaceAnswer("refused", message=message or f"code {code}")
    if code is None and message:
        return PlaceAnswer("refused", message=message)
    return PlaceAnswer("unknown", message=message)


def read_ok(body: dict[str, Any], field: str) -> bool:
    """A read answer is usable: ``code "0"``, or no code and its data ``field`` present."""
    code = body.get("code")
    if code is not None:
        return str(code) == "0"
    return field in body


def _message(body: dict[str, Any]) -> str:
    return str(body.get("message") or body.get("msg") or
               (f"code {body.get('code')}" if body.get("code") is not None else "no data and no message"))


def order_side(type_text: str) -> str:
    """BUY, SELL, or "" when the spelling is unfamiliar (then the side is not used to match)."""
    t = type_text.strip()
    buy = "买" in t or t.lower() in _BUY_WORDS
    sell = "卖" in t or t.lower() in _SELL_WORDS
    return "BUY" if buy and not sell else "SELL" if sell and not buy else ""


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value or "0").strip() or "0")
    except InvalidOperation:
        return Decimal(0)


def parse_order(row: dict[str, Any]) -> BrokerOrder:
    type_text = str(row.get("type", ""))
    return BrokerOrder(str(row.get("order_id", "")), str(row.get("day", "")), str(row.get("time", "")),
                       str(row.get("code", "")), str(row.get("name", "")), order_side(type_text),
                       str(row.get("status", "")), _decimal(row.get("order_price")),
                       int(_decimal(row.get("order_volume"))), _decimal(row.get("deal_price")),
                       int(_decimal(row.get("deal_volume"))), type_text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it came (an HTTP 30x): following it would send the request again."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _never_sent(exc: urllib.error.URLError) -> bool:
    """urllib raises URLError only while connecting or sending: these reasons mean nothing arrived."""
    return isinstance(exc.reason, (ConnectionRefusedError, socket.gaierror, socket.timeout))


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
        self._opener = urllib.request.build_opener(_NoRedirect)

    # ---- transport: one HTTP request, never repeated here ----------------------------------------
    def _fetch(self, url: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        full = f"{url}?{urllib.parse.urlencode(params)}" if params is not None else url
        safe = url.split("?")[0]
        warn_plaintext(safe, "jvQuant trade token and password")
        try:
            with self._opener.open(full, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except urllib.error.URLError as exc:
            if _never_sent(exc):
                raise NotSent(f"{safe}: not reached ({exc.reason})") from None
            raise OutcomeUnknown(f"{safe}: no answer ({exc.reason})") from None
        except (socket.timeout, ConnectionError, OSError) as exc:
            raise OutcomeUnknown(f"{safe}: no answer ({exc})") from None
        except http.client.HTTPException as exc:  # IncompleteRead, BadStatusLine: the request went out
            raise OutcomeUnknown(f"{safe}: unreadable answer ({type(exc).__name__})") from None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call to the counter; a failure that is not a documented refusal forgets the counter."""
        url = f"{self._counter()}{path}"
        try:
            status, body = self._fetch(url, params)
        except OutcomeUnknown as exc:
            self.move(f"{path}: {exc}", "connection" if isinstance(exc, NotSent) else "no_answer")
            raise
        if status != 200:
            self.move(f"{path}: HTTP {status}", "http_status")
            raise OutcomeUnknown(f"{path.strip('/')}: HTTP {status}")
        if not isinstance(body, dict):
            self.move(f"{path}: the answer is not a JSON object", "not_json")
            raise OutcomeUnknown(f"{path.strip('/')}: the answer is not a JSON object")
        return body

    def move(self, why: str, cause: str) -> None:
        """Forget the counter address (and its ticket): the next call allocates again."""
        if self.counter is not None:
            log.warning("trade counter %s dropped (%s): allocating again at the next call", self.counter, why)
            metrics.REALLOCATIONS.labels(cause).inc()
        self.counter, self._ticket = None, None

    # ---- session ----------------------------------------------------------------------------
    def allocate(self) -> str:
        try:
            self.counter = jvquant_protocol.allocate(self.base_url, market="ab", kind=jvquant_protocol.KIND_TRADE,
                                                     token=self._token, scheme="http", fetch=self._fetch).rstrip("/")
        except jvquant_protocol.AllocationRefused as exc:
            raise BrokerRejected(f"trade server allocation refused: {exc}") from None
        return self.counter

    def _counter(self) -> str:
        return self.counter or self.allocate()

    def login(self) -> None:
        body = self._get("/login", {"token": self._token, "acc": self.account, "pass": self._password})
        if not read_ok(body, "ticket") or not body.get("ticket"):
            raise BrokerRejected(f"login refused: {_message(body)}")
        self._ticket = str(body["ticket"])
        try:
            expire = float(body.get("expire", 0) or 0)
        except (TypeError, ValueError):
            expire = 0.0
        self._expires = self.clock() + (expire if expire > 0 else 600.0)
        self.logins += 1
        log.info("logged in to the trade counter; ticket valid for %.0f s", self._expires - self.clock())

    def ticket(self) -> str:
        if self._ticket is None or self.clock() > self._expires - self.refresh_margin:
            self.login()
        assert self._ticket is not None
        return self._ticket

    def _read(self, path: str, field: str) -> dict[str, Any]:
        """A read-only call (reads change nothing at the broker, so they may be repeated): a refusal
        logs in again once; a second refusal, or a counter that does not answer usably, moves to a
        newly allocated counter, once."""
        relogged = moved = False
        while True:
            try:
                body = self._get(path, {"token": self._token, "ticket": self.ticket()})
            except OutcomeUnknown:  # the counter was dropped by _get
                if moved:
                    raise
                moved = True
                continue
            if read_ok(body, field):
                return body
            if not relogged:
                log.warning("%s refused (%s); logging in again and retrying once", path, _message(body))
                relogged = True
                self.login()
                continue
            if moved:
                raise BrokerRejected(f"{path.strip('/')} refused: {_message(body)}")
            self.move(f"{path} refused twice ({_message(body)})", "ticket_refused")
            moved = True

    def _session_for_change(self, op: str) -> str:
        """A ticket the counter honours right now, before a call that must not be repeated.
        Nothing here sends the change: any failure means it was not sent."""
        try:
            self.positions()
            return self.ticket()
        except BrokerRejected as exc:
            raise BrokerRejected(f"{op} not sent: {exc}") from None
        except OutcomeUnknown as exc:  # a read or a login: nothing was placed
            raise NotSent(f"{op} not sent: {exc}") from None

    # ---- operations -------------------------------------------------------------------------
    def place(self, side: str, code: str, name: str, price: Decimal, volume: int) -> str:
        """Send one order, once. Returns the broker's order id."""
        if side not in ("BUY", "SELL"):
            raise ValueError(f"order side {side!r}: BUY or SELL")
        op = "buy" if side == "BUY" else "sale"
        ticket = self._session_for_change(op)
        body = self._get(f"/{op}", {"token": self._token, "ticket": ticket, "trade": op, "code": code,
                                    "name": name, "price": str(price), "volume": str(volume)})
        answer = place_answer(body)
        if answer.outcome == "placed":
            return answer.order_id
        if answer.outcome == "refused":
            raise BrokerRejected(f"{op} refused: {answer.message}")
        raise OutcomeUnknown(f"{op}: answered without an order id or a reason ({json.dumps(body, ensure_ascii=False)})")

    def cancel(self, order_id: str) -> str:
        """Ask once to cancel; its effect shows in the order list. Returns the broker's message."""
        ticket = self._session_for_change("cancel")
        body = self._get("/cancel", {"token": self._token, "ticket": ticket, "order_id": order_id})
        code = body.get("code")
        if code is None:  # documented with a code; without one a message could mean either
            raise OutcomeUnknown(f"cancel: answered without a code ({_message(body)})")
        if str(code) != "0":
            raise BrokerRejected(f"cancel refused: {_message(body)}")
        return str(body.get("message") or "")

    def orders(self) -> list[BrokerOrder]:
        rows = self._read("/check_order", "list").get("list") or []
        if not isinstance(rows, list):
            raise OutcomeUnknown("check_order: list is not a list")
        return [parse_order(row) for row in rows if isinstance(row, dict)]

    def positions(self) -> dict[str, Any]:
        return self._read("/check_hold", "hold_list")
