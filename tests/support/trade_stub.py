"""A jvQuant trade counter answering with the corpus bodies (one thread, real HTTP), counting calls.

Only values change from the corpus (order ids, list rows, the allocated address): field names,
their presence and absence, and their JSON types are exactly those of the corpus files.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from tests.support.paths import CONFORMANCE

HERE = CONFORMANCE / "jvquant_trade"
PLACEHOLDER_ADDRESS = "127.0.0.1:9"
CST = 8 * 3600


def case(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def cases() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def body(name: str) -> dict[str, Any]:
    return copy.deepcopy(case(name)["body"])


@dataclass
class StubConfig:
    """What the stub answers; every knob names a corpus case or a timing."""

    allocation: str = "server_documented"
    allocation_paths: tuple[str, ...] = ("/server", "/query/server")  # a path not listed answers 404
    login: str = "login_documented"
    place: str = "buy_documented_placed"  # answer to /buy and /sale
    place_lands: bool = True  # the order enters the book (even when the answer is lost or slow)
    place_delay: float = 0.0  # seconds before the answer
    hidden_polls: int = 0  # /check_order answers that do not list a new order yet
    order_type: str | None = None  # list[x].type of new orders; default 证券买入/证券卖出 by path
    check_order: str = "check_order_documented"
    check_hold: str = "check_hold_documented"
    cancel: str = "cancel_documented"
    place_by_code: dict[str, str] = field(default_factory=dict)  # security code -> answer case (overrides `place`)


@dataclass(frozen=True)
class Redirect:
    """An override answer: HTTP 302 to ``location`` (a transport that follows it would send again)."""

    location: str


@dataclass
class Placed:
    row: dict[str, str]
    hidden_polls: int


class TradeStub:
    def __init__(self, config: StubConfig | None = None) -> None:
        self.config = config or StubConfig()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.placed: list[Placed] = []
        self.answers: dict[str, Callable[[dict[str, str]], Any]] = {}  # per-path overrides
        self._lock = threading.Lock()
        self._next_id = 1334564
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                status, payload = stub.handle(url.path, query)
                if isinstance(payload, Redirect):
                    self.send_response(302)
                    self.send_header("Location", payload.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b"404: Not Found"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8" if payload is not None
                                     else "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "TradeStub":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what the tests look at ----------------------------------------------------------------
    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self.calls if p == path)

    def queries(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [q for p, q in self.calls if p == path]

    # ---- answers -----------------------------------------------------------------------------
    def handle(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((path, query))
        if path in self.answers:
            return 200, self.answers[path](query)
        c = self.config
        if path in ("/server", "/query/server"):
            if path not in c.allocation_paths:
                return 404, None
            answer = body(c.allocation)
            answer["server"] = str(answer["server"]).replace(PLACEHOLDER_ADDRESS, self.address)
            return 200, answer
        if path == "/login":
            return 200, body(c.login)
        if path == "/check_hold":
            return 200, body(c.check_hold)
        if path == "/check_order":
            return 200, self._order_list()
        if path in ("/buy", "/sale"):
            return 200, self._place(path, query)
        if path == "/cancel":
            return 200, body(c.cancel)
        return 404, None

    def _order_list(self) -> dict[str, Any]:
        answer = body(self.config.check_order)
        with self._lock:
            rows = []
            for p in self.placed:
                if p.hidden_polls > 0:
                    p.hidden_polls -= 1
                    continue
                rows.append(dict(p.row))
        answer["list"] = rows
        return answer

    def _place(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        c = self.config
        name = c.place_by_code.get(query.get("code", ""), c.place)
        answer = body(name)
        refused = case(name)["expect"]["outcome"] == "refused"
        with self._lock:
            order_id = str(self._next_id)
            self._next_id += 1
            if c.place_lands and not refused:
                local = time.gmtime(time.time() + CST)
                side = c.order_type or ("证券买入" if path == "/buy" else "证券卖出")
                row = {"order_id": order_id, "day": time.strftime("%Y%m%d", local),
                       "time": time.strftime("%H%M%S", local), "code": query.get("code", ""),
                       "name": query.get("name", ""), "type": side, "status": "已报",
                       "order_price": query.get("price", ""), "order_volume": query.get("volume", ""),
                       "deal_price": "0", "deal_volume": "0"}
                self.placed.append(Placed(row, c.hidden_polls))
        if c.place_delay:
            time.sleep(c.place_delay)  # the scenario: a slow broker answer
        if answer.get("order_id"):
            answer["order_id"] = order_id
        return answer
