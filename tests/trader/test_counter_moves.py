"""Issue 18 (trade client): a counter that moves, answers HTTP errors, garbage or half an answer.

Two real HTTP counters (A, B) and an allocator, answering in the trade document's shapes (seed 004:
``/buy`` answers ``message`` + ``order_id``, reads ``message`` + data, ``code`` on login). Faults
are raw bytes on the socket, the way a proxy or a dying counter produces them."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlparse

import pytest

from marketpipe.providers.jvquant.trade_api import JvQuantBroker
from marketpipe.trader import metrics
from marketpipe.trader.trade_api import BrokerRejected, NotSent, OutcomeUnknown

ACCOUNT = "000000000042"
HTML_503 = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"

Fault = Callable[[BaseHTTPRequestHandler], None]


def html_503(h: BaseHTTPRequestHandler) -> None:
    h.send_response(503)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(HTML_503)))
    h.end_headers()
    h.wfile.write(HTML_503)


def truncated(h: BaseHTTPRequestHandler) -> None:
    """A 200 that promises more bytes than it sends: http.client.IncompleteRead."""
    h.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{"message":"","ord')
    h.wfile.flush()
    h.close_connection = True


def bad_status_line(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"\x00\x17garbage\r\n\r\n")
    h.wfile.flush()
    h.close_connection = True


def not_json(h: BaseHTTPRequestHandler) -> None:
    body = b"upstream error"
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def refused_ticket(h: BaseHTTPRequestHandler) -> None:
    Counter.json(h, {"message": "ticket无效或已过期"})


class Counter:
    """One trade counter: documented answers, unless ``faults[path]`` says otherwise (always, or the
    next n calls when given as a list)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: dict[str, int] = {}
        self.faults: dict[str, Fault | list[Fault]] = {}
        self.orders: list[dict[str, Any]] = []
        self.lands_on_fault = True  # a /buy whose answer is broken still places the order
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                counter.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def json(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlparse(h.path).path
        self.calls[path] = self.calls.get(path, 0) + 1
        fault = self.faults.get(path)
        if isinstance(fault, list):
            fault = fault.pop(0) if fault else None
        if path in ("/buy", "/sale") and (fault is None or self.lands_on_fault):
            order_id = str(1334564 + len(self.orders))
            self.orders.append({"order_id": order_id, "day": "20260401", "time": "142423", "code": "600519",
                                "name": "贵州茅台", "type": "证券买入", "status": "已报", "order_price": "1500.00",
                                "order_volume": "100", "deal_price": "0", "deal_volume": "0"})
        if fault is not None:
            fault(h)
            return
        if path == "/login":
            self.json(h, {"code": "0", "ticket": f"ticket-{self.name}", "expire": 600})
        elif path == "/check_hold":
            self.json(h, {"message": "", "total": "1000000.00", "usable": "1000000.00", "hold_list": []})
        elif path == "/check_order":
            self.json(h, {"message": "", "list": self.orders})
        elif path in ("/buy", "/sale"):
            self.json(h, {"message": "", "order_id": self.orders[-1]["order_id"]})
        else:
            h.send_error(404)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Allocator(Counter):
    """``/query/server`` names whichever counter is current."""

    def __init__(self) -> None:
        self.current = ""
        super().__init__("allocator")

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlparse(h.path).path
        self.calls[path] = self.calls.get(path, 0) + 1
        self.json(h, {"code": "0", "server": self.current})


@pytest.fixture
def site():  # type: ignore[no-untyped-def]
    a, b, alloc = Counter("A"), Counter("B"), Allocator()
    alloc.current = a.address
    yield a, b, alloc
    for c in (a, b, alloc):
        c.close()


def client(alloc: Allocator) -> JvQuantBroker:
    return JvQuantBroker(f"http://{alloc.address}", "tok", ACCOUNT, "pw", timeout=2.0)


def moves(a: Counter, b: Counter, alloc: Allocator, fault: Fault) -> None:
    """From now on A answers ``fault`` everywhere and allocation names B."""
    for path in ("/login", "/check_hold", "/check_order", "/buy", "/sale", "/cancel"):
        a.faults[path] = fault
    a.lands_on_fault = False
    alloc.current = b.address


def reallocations() -> float:
    return sum(s.value for m in metrics.REALLOCATIONS.collect() for s in m.samples if s.name.endswith("_total"))


@pytest.mark.parametrize("fault", [html_503, not_json, bad_status_line])
def test_a_counter_that_moves_is_allocated_again_and_the_order_goes_to_the_new_one(site, fault) -> None:
    a, b, alloc = site
    broker = client(alloc)
    broker.positions()  # a session on A
    moves(a, b, alloc, fault)
    before = reallocations()
    assert broker.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100) == b.orders[0]["order_id"]
    assert b.calls.get("/buy") == 1 and a.calls.get("/buy") is None
    assert broker.counter == f"http://{b.address}"
    assert reallocations() >= before + 1


def test_reads_are_retried_on_the_new_counter(site) -> None:
    a, b, alloc = site
    broker = client(alloc)
    broker.positions()
    b.orders.append({**a.orders[0]} if a.orders else {"order_id": "9", "day": "20260401", "time": "142423",
                    "code": "600519", "name": "贵州茅台", "type": "证券买入", "status": "已报",
                    "order_price": "1500.00", "order_volume": "100", "deal_price": "0", "deal_volume": "0"})
    moves(a, b, alloc, html_503)
    assert [o.order_id for o in broker.orders()] == ["9"]


def test_a_ticket_refused_twice_allocates_again(site) -> None:
    a, b, alloc = site
    broker = client(alloc)
    broker.positions()
    a.faults["/check_hold"] = refused_ticket
    a.faults["/check_order"] = refused_ticket
    alloc.current = b.address
    broker.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
    assert b.calls.get("/buy") == 1 and a.calls.get("/buy") is None


@pytest.mark.parametrize("fault", [truncated, bad_status_line, not_json, html_503])
def test_a_broken_answer_to_buy_is_outcome_unknown_and_the_counter_is_dropped(site, fault) -> None:
    a, _, alloc = site
    broker = client(alloc)
    a.faults["/buy"] = [fault]
    with pytest.raises(OutcomeUnknown) as caught:
        broker.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
    assert not isinstance(caught.value, NotSent)  # it may have arrived: reconcile, never resend
    assert a.calls["/buy"] == 1 and len(a.orders) == 1
    assert broker.counter is None  # the next call allocates again


@pytest.mark.parametrize("fault", [truncated, bad_status_line, not_json, html_503])
def test_a_login_that_fails_before_the_order_is_sent_is_not_sent(site, fault) -> None:
    a, _, alloc = site
    broker = client(alloc)
    a.faults["/login"] = fault
    with pytest.raises(NotSent):
        broker.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
    assert "/buy" not in a.calls


def test_a_documented_refusal_is_not_a_reason_to_move(site) -> None:
    a, b, alloc = site
    broker = client(alloc)
    a.faults["/buy"] = lambda h: Counter.json(h, {"message": "资金不足", "order_id": ""})
    a.lands_on_fault = False
    with pytest.raises(BrokerRejected, match="资金不足"):
        broker.place("BUY", "600519", "贵州茅台", Decimal("1500.00"), 100)
    assert broker.counter == f"http://{a.address}"
