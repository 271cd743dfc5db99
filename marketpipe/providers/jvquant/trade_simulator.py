"""jvQuant trade API ("CTP柜台") simulator, mounted on the jvQuant quote simulator.

GET-only endpoints with query-string parameters, as protocols.md §1.5 documents:
``/login`` → ticket; ``/check_hold``, ``/check_order``, ``/buy``, ``/sale``, ``/cancel``.
Every number in a response is a JSON string.

Two dialects of answer (protocols.md §0), the corpus in tests/data/conformance/jvquant_trade/:

* ``documented`` (default) — exactly the fields the jvQuant trade document lists: ``code`` only on login and
  cancel; ``/buy`` ``/sale`` answer ``message`` + ``order_id``; ``/check_order`` ``/check_hold``
  answer ``message`` + data; login's ``expire`` is an int;
* ``notes`` — protocols.md §1.5: ``code:"0"`` on every success, ``code:"-1"`` on every error.

Behaviour chosen where the facts are [U] (message texts are ours): an unknown or expired ticket
is refused with ``message`` ``ticket无效或已过期``; a refused order answers its reason in
``message`` with an empty ``order_id`` (documented) or ``code "-1"`` (notes); a refused read
has no data field, so it can never be mistaken for an empty list. Orders progress on a clock: 未报 → 已报 (0.2 s)
→ 部成 (half filled, ``fill_seconds``/2) → 已成 (``fill_seconds``); cancels give 已撤 / 部撤.

Fault switches (:meth:`TradeCounter.fault`): ``drop_after_accept`` (the order is created,
then the connection is closed without an answer), ``slow`` (answers after ``seconds``),
``expire_tickets`` (every ticket issued so far stops working), ``reject`` (buy/sale refused),
``exchange_reject`` (the next order is accepted with an order id, then listed as 废单 once it
would have been reported: the exchange refused it after the counter took it), ``unavailable``
(every route answers HTTP 503 with an HTML page, as a counter taken out of service does; with
the quote simulator's ``trade_server`` pointing elsewhere this is a counter that moved).
The dialect can be switched while running: ``POST /_control/trade_dialect {"dialect": "notes"}``.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from marketpipe.market.chinatime import CST_OFFSET_S

STATUS_NEW, STATUS_REPORTED, STATUS_PART, STATUS_DONE = "未报", "已报", "部成", "已成"
STATUS_PART_CANCELLED, STATUS_CANCELLED, STATUS_REJECTED = "部撤", "已撤", "废单"
FINAL = {STATUS_DONE, STATUS_PART_CANCELLED, STATUS_CANCELLED, STATUS_REJECTED}
TYPE_BUY, TYPE_SELL = "证券买入", "证券卖出"
DIALECTS = ("documented", "notes")


@dataclass
class Order:
    order_id: str
    account: str
    code: str
    name: str
    side: str  # TYPE_BUY | TYPE_SELL
    price: Decimal
    volume: int
    placed: float  # time.time()
    cancelled_at: float | None = None
    exchange_rejects: bool = False
    deal_volume: int = 0
    status: str = STATUS_NEW

    def lot(self) -> int:
        return 10 if self.code.startswith(("11", "12")) else 100


@dataclass
class TradeCounter:
    ticket_seconds: int = 3600
    fill_seconds: float = 2.0
    password: str = ""  # empty: any password is accepted; set: only this one
    dialect: str = "documented"  # see DIALECTS
    orders: list[Order] = field(default_factory=list)
    tickets: dict[str, tuple[str, float]] = field(default_factory=dict)  # ticket -> (account, expiry)
    logins: int = 0
    placed: int = 0
    unavailable_answers: int = 0
    faults: dict[str, float] = field(default_factory=dict)  # kind -> seconds (or 1)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1334564

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"trade dialect {self.dialect!r}: one of {', '.join(DIALECTS)}")

    # ---- switches ---------------------------------------------------------------------------
    def fault(self, kind: str, seconds: float = 1.0) -> None:
        if kind == "clear":
            self.faults.clear()
        elif kind == "expire_tickets":
            with self._lock:
                self.tickets = {t: (acc, 0.0) for t, (acc, _) in self.tickets.items()}
        elif kind in ("drop_after_accept", "slow", "reject", "exchange_reject", "unavailable"):
            self.faults[kind] = seconds
        else:
            raise ValueError(f"unknown trade fault {kind!r}")

    # ---- routes -----------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        for path, handler in (("/login", self.login), ("/check_hold", self.check_hold),
                              ("/check_order", self.check_order), ("/buy", self.buy), ("/sale", self.sale),
                              ("/cancel", self.cancel)):
            app.router.add_get(path, self._in_service(handler))
        app.router.add_post("/_control/trade_fault", self.control)
        app.router.add_post("/_control/trade_dialect", self.control_dialect)

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.fault(body["kind"], float(body.get("seconds", 1.0)))
        return web.json_response({"ok": True, "faults": self.faults})

    async def control_dialect(self, request: web.Request) -> web.Response:
        dialect = str((await request.json()).get("dialect", ""))
        if dialect not in DIALECTS:
            return web.json_response({"ok": False, "dialects": list(DIALECTS)}, status=400)
        self.dialect = dialect
        return web.json_response({"ok": True, "dialect": dialect})

    def _in_service(self, handler: Any) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            if "unavailable" in self.faults:
                self.unavailable_answers += 1
                return web.Response(status=503, content_type="text/html",
                                    text="<html><head><title>503 Service Temporarily Unavailable</title></head>"
                                         "<body><center><h1>503 Service Temporarily Unavailable</h1></center>"
                                         "</body></html>")
            return await handler(request)
        return route

    # ---- answer shapes ------------------------------------------------------------------------
    def _ok(self, body: dict[str, Any], coded: bool = False) -> web.Response:
        """A success; ``coded``: the document lists ``code`` for this answer (login, cancel)."""
        if coded or self.dialect == "notes":
            body = {"code": "0", **body}
        return web.json_response(body)

    def _error(self, message: str, place: bool = False, coded: bool = False) -> web.Response:
        if coded or self.dialect == "notes":
            return web.json_response({"code": "-1", "message": message})
        return web.json_response({"message": message, "order_id": ""} if place else {"message": message})

    async def _slow(self) -> None:
        if "slow" in self.faults:
            await asyncio.sleep(self.faults["slow"])

    def _account(self, request: web.Request) -> str | None:
        ticket = request.query.get("ticket", "")
        with self._lock:
            entry = self.tickets.get(ticket)
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    async def login(self, request: web.Request) -> web.Response:
        await self._slow()
        q = request.query
        acc, password = q.get("acc", ""), q.get("pass", "")
        if not q.get("token") or not acc:
            return self._error("token和acc参数不能为空", coded=True)
        if self.password and password != self.password:
            return self._error("交易密码错误", coded=True)
        ticket = secrets.token_hex(16)
        now = time.time()
        with self._lock:
            self.tickets[ticket] = (acc, now + self.ticket_seconds)
            self.logins += 1
        if self.dialect == "documented":
            return self._ok({"ticket": ticket, "expire": self.ticket_seconds}, coded=True)
        return self._ok({"message": "", "ticket": ticket, "expire": str(self.ticket_seconds),
                         "login_stamp": str(int(now)), "ctp_acc": acc})

    def _advance(self, now: float) -> None:
        for o in self.orders:
            if o.status in FINAL:
                continue
            age = now - o.placed
            if o.exchange_rejects and age >= 0.2:
                o.status = STATUS_REJECTED
            elif o.cancelled_at is not None:
                o.status = STATUS_PART_CANCELLED if o.deal_volume else STATUS_CANCELLED
            elif age >= self.fill_seconds:
                o.deal_volume, o.status = o.volume, STATUS_DONE
            elif age >= self.fill_seconds / 2:
                half = (o.volume // 2) // o.lot() * o.lot() or o.volume // 2
                if 0 < half < o.volume:
                    o.deal_volume, o.status = half, STATUS_PART
            elif age >= 0.2:
                o.status = STATUS_REPORTED

    async def check_order(self, request: web.Request) -> web.Response:
        await self._slow()
        acc = self._account(request)
        if acc is None:
            return self._error("ticket无效或已过期")
        now = time.time()
        rows = []
        with self._lock:
            self._advance(now)
            for o in self.orders:
                if o.account != acc:
                    continue
                local = time.gmtime(o.placed + CST_OFFSET_S)
                rows.append({"order_id": o.order_id, "day": time.strftime("%Y%m%d", local),
                             "time": time.strftime("%H%M%S", local), "code": o.code, "name": o.name,
                             "type": o.side, "status": o.status, "order_price": str(o.price),
                             "order_volume": str(o.volume), "deal_price": str(o.price) if o.deal_volume else "0",
                             "deal_volume": str(o.deal_volume)})
        return self._ok({"message": "", "list": rows})

    async def check_hold(self, request: web.Request) -> web.Response:
        await self._slow()
        acc = self._account(request)
        if acc is None:
            return self._error("ticket无效或已过期")
        holds: dict[str, dict[str, Any]] = {}
        with self._lock:
            self._advance(time.time())
            for o in self.orders:
                if o.account != acc or not o.deal_volume:
                    continue
                h = holds.setdefault(o.code, {"code": o.code, "name": o.name, "vol": 0})
                h["vol"] += o.deal_volume if o.side == TYPE_BUY else -o.deal_volume
        rows = [{"code": h["code"], "name": h["name"], "hold_vol": str(h["vol"]), "usable_vol": "0",
                 "day_earn": "0.00", "hold_earn": "0.00"} for h in holds.values()]
        return self._ok({"message": "", "total": "1000000.00", "usable": "1000000.00", "day_earn": "0.00",
                         "hold_earn": "0.00", "hold_list": rows})

    async def buy(self, request: web.Request) -> web.StreamResponse:
        return await self._place(request, TYPE_BUY)

    async def sale(self, request: web.Request) -> web.StreamResponse:
        return await self._place(request, TYPE_SELL)

    async def _place(self, request: web.Request, side: str) -> web.StreamResponse:
        await self._slow()
        acc = self._account(request)
        if acc is None:
            return self._error("ticket无效或已过期", place=True)
        q = request.query
        try:
            price, volume = Decimal(q["price"]), int(q["volume"])
            code, name = q["code"], q.get("name", "")
        except (KeyError, ValueError, ArithmeticError):
            return self._error("参数错误: code, name, price, volume", place=True)
        if "reject" in self.faults:
            return self._error("委托失败: 模拟拒单", place=True)
        with self._lock:
            order = Order(str(self._next_id), acc, code, name, side, price, volume, time.time(),
                          exchange_rejects=self.faults.pop("exchange_reject", None) is not None)
            self._next_id += 1
            self.orders.append(order)
            self.placed += 1
        if "drop_after_accept" in self.faults:
            # the order exists at the broker, but the client never hears about it
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        return self._ok({"message": "", "order_id": order.order_id})

    async def cancel(self, request: web.Request) -> web.Response:
        await self._slow()
        acc = self._account(request)
        if acc is None:
            return self._error("ticket无效或已过期", coded=True)
        order_id = request.query.get("order_id", "")
        with self._lock:
            self._advance(time.time())
            order = next((o for o in self.orders if o.order_id == order_id and o.account == acc), None)
            if order is None:
                return self._error(f"委托{order_id}不存在", coded=True)
            if order.status in FINAL:
                return self._error(f"委托{order_id}状态为{order.status}, 不可撤单", coded=True)
            order.cancelled_at = time.time()
            self._advance(time.time())
        return self._ok({"message": "撤单成功"}, coded=True)

    def placed_orders(self, account: str | None = None) -> list[Order]:
        with self._lock:
            return [o for o in self.orders if account is None or o.account == account]
