"""Infoway simulator: the JSON quote websocket ``/ws?business=<channel>&apikey=<KEY>`` (protocols.md §2).

Choices made where the documentation is [I]/[U]:
- bad key: HTTP 401 at the upgrade with body ``{"message":"Invalid API key in request"}``;
  rate-limit window: HTTP 429 at the upgrade; unknown ``business``: HTTP 400;
- stock channel sends the plain-text greeting, then ``{"code":200,"msg":"ws connect success"}``;
- heartbeats (10010) get no reply unless ``heartbeat_reply=True`` (then 10011); only 10010 resets the
  heartbeat timer; on timeout the socket is closed (code 1000) without a 513 frame;
- every client frame counts towards ``frame_limit`` per ``frame_window`` seconds (60/60 s); the first
  frame over the limit gets ``{"traceId":..,"code":501,...}`` and the connection is closed;
- non-JSON client frame: ``{"traceId":"","code":515,...}`` (connection kept); subscribe without data: 507;
- a subscription taking a connection over ``max_codes`` codes (protocols.md §2.5: 600) is refused with
  ``Subscribe fail: {"traceId":..,"code":505,...}`` and nothing of that request is subscribed (connection kept);
- unknown or wrong-channel codes are acked ``ok`` and never pushed; ``.BJ`` symbols are served;
- trade ``ty`` (with ``includeTy``) is always 1; depth has 5 levels; kline pushes the current bar of each
  subscribed type on every tick the symbol traded, ``pca``/``pfr`` against the previous bar's close;
- kline pushes: ``dialect="documented"`` (default) sends the shape the Infoway websocket document prints,
  ``{"s":…, "respList":[{t,h,o,l,c,v,vw,pc,pca}]}`` (no ``ty``: a client knows the interval from
  what it subscribed); ``dialect="notes"`` sends the captured flat object with ``ty`` (§2.4).
- depth pushes: ``depth_sides="documented"`` (default) puts the asks under ``a`` as the seed's prices
  do; ``depth_sides="comments"`` puts the bids there, as the seed's comments (買盤) say.

REST ``GET /{business}/batch_kline/{klineType}/{klineNum}/{codes}`` (seed 003; key in the ``apiKey``
header, protocols.md §2.1) serves the newest ``klineNum`` bars of each code from the very bars the
kline pushes are built from, so a backfill equals what the websocket pushed (last push of a bar)
or would have pushed. Envelope ``{"ret":200,"msg":"success","traceId":..,"data":[{"s":..,"respList":
[...]}]}`` (protocols.md §2.7), rows newest first (undocumented), ``t`` in seconds as a string, ``pc``
is the change percent (the push calls it ``pfr``). Bad key: HTTP 401 ``{"code":401,"message":"Token
invalid",...}``; more bars than allowed: 503 (one code) / 506 (several codes, over 2 bars).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Iterable

import orjson
from aiohttp import WSMsgType, web

from marketpipe.providers.infoway import protocol as proto
from marketpipe.simulators.market import Bar, BarBuilder, Instrument, Trade, check_dialect
from marketpipe.simulators.server import Connection, Row, SimServer, group_by_code

CHANNELS = {"stock": ("SH", "SZ", "BJ", "US"), "crypto": ("CRYPTO",), "common": ("FX",),
            "japan": (), "india": (), "korea": (), "taiwan": ()}
GREETING = "You have permission to subscribe to all market data"
WELCOME = orjson.dumps({"code": proto.WELCOME, "msg": "ws connect success"}).decode()
BAD_KEY_BODY = '{"message":"Invalid API key in request"}'
GARBAGE = "\x00\x01garbage{not json"
DEFAULT_SYMBOLS = ("600519", "000001", "300750", "688981", "430047", "aapl", "amzn", "tsla",
                   "BTCUSDT", "ETHUSDT", "XAUUSD", "XAGUSD", "EURUSD", "USDCNH", "USOIL", "DXY")
SUBSCRIBE = {proto.SUBSCRIBE_TRADE: "trade", proto.SUBSCRIBE_DEPTH: "depth", proto.SUBSCRIBE_KLINE: "kline"}
ACK = {proto.SUBSCRIBE_TRADE: proto.ACK_TRADE, proto.SUBSCRIBE_DEPTH: proto.ACK_DEPTH,
       proto.SUBSCRIBE_KLINE: proto.ACK_KLINE}
UNSUBSCRIBE = {proto.UNSUBSCRIBE_TRADE: "trade", proto.UNSUBSCRIBE_DEPTH: "depth", proto.UNSUBSCRIBE_KLINE: "kline"}
RATE_LIMIT_MSG = "Request frequency exceed the limit：60 times per minute"


def iw_symbol(inst: Instrument) -> str | None:
    """Infoway spelling of a canonical code (``600519.SH``, ``AAPL.US``, ``BTCUSDT``); indices are not served."""
    if inst.kind == "index":
        return None
    if inst.exchange in ("SH", "SZ", "BJ"):
        return f"{inst.code}.{inst.exchange}"
    if inst.exchange == "US":
        return f"{inst.code.upper()}.US"
    return inst.code


def split_codes(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return []


def error_frame(trace: str, code: int, msg: str) -> str:
    return orjson.dumps({"traceId": trace, "code": code, "msg": msg}).decode()


class IwConnection(Connection):
    def __init__(self, conn_id: str, ws: web.WebSocketResponse, request: web.Request, business: str):
        super().__init__(conn_id, ws, request)
        self.business = business
        self.trade: set[str] = set()
        self.include_ty = False
        self.depth: set[str] = set()
        self.kline: dict[str, set[int]] = {}
        self.frames_in: deque[float] = deque()
        self.last_heartbeat = time.monotonic()


#: ``depth_sides``: ``a`` = asks as the seed's prices show (documented), or ``a`` = bids as its comments say
DEPTH_SIDES = ("documented", "comments")


class InfowaySim(SimServer):
    provider = "infoway"
    default_symbols = DEFAULT_SYMBOLS

    def __init__(self, config: Any = None, *, heartbeat_timeout: float = 60.0, heartbeat_reply: bool = False,
                 frame_limit: int = 60, frame_window: float = 60.0, max_codes: int = 600,
                 dialect: str = "documented", depth_sides: str = "documented", **kw: Any) -> None:
        self.dialect = check_dialect(dialect)
        if depth_sides not in DEPTH_SIDES:
            raise ValueError(f"unknown depth_sides {depth_sides!r}; one of {', '.join(DEPTH_SIDES)}")
        self.depth_sides = depth_sides
        super().__init__(config, **kw)
        self.heartbeat_timeout = heartbeat_timeout
        self.heartbeat_reply = heartbeat_reply
        self.frame_limit = frame_limit
        self.frame_window = frame_window
        self.max_codes = max_codes
        self.bars = BarBuilder()
        self.history: dict[tuple[str, int], dict[int, Bar]] = {}  # (code, seconds) -> start_s -> bar
        self.by_symbol: dict[str, str] = {}  # Infoway symbol -> canonical code
        self.symbol_of: dict[str, str] = {}
        for code, st in self.market.states.items():
            sym = iw_symbol(st.inst)
            if sym:
                self.by_symbol[sym] = code
                self.symbol_of[code] = sym

    def canonical(self, code: str) -> str:
        base, _, suffix = code.partition(".")
        return base.lower() if suffix == "US" else base if suffix in ("SH", "SZ", "BJ") else code

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def addresses(self) -> dict[str, str]:
        return {"INFOWAY_WS_URL": self.url}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self.quote_ws)
        app.router.add_get("/{business}/batch_kline/{ktype}/{num}/{codes}", self.batch_kline)

    # ---- REST -----------------------------------------------------------------------------
    def rest_row(self, code: str, seconds: int, bar: Bar, prev: float) -> dict[str, str]:
        """One kline row as seed 003 prints it, from the same numbers as the push."""
        f = self.market.states[code].inst.fmt
        return {"t": str(bar.start_s), "h": f(bar.high), "o": f(bar.open), "l": f(bar.low), "c": f(bar.close),
                "v": f"{bar.volume:.5f}", "vw": f"{bar.amount:.5f}", "pc": f"{100 * (bar.close / prev - 1):.2f}%",
                "pca": f(bar.close - prev)}

    def kline_rows(self, code: str, ktype: int, num: int) -> list[dict[str, str]]:
        seconds = proto.KLINE_BY_NUMBER[ktype].seconds
        bars = sorted(self.history.get((code, seconds), {}).items())
        prev, rows = self.market.states[code].inst.prev_close, []
        for _, bar in bars:
            rows.append(self.rest_row(code, seconds, bar, prev))
            prev = bar.close
        return rows[::-1][:num]

    async def batch_kline(self, request: web.Request) -> web.Response:
        key = request.headers.get(proto.REST_KEY_HEADER) or request.headers.get("apikey")
        if not self.key_ok(key):
            return web.json_response({"code": 401, "message": "Token invalid", "timestamp": int(time.time() * 1000)},
                                     status=401)
        trace = self.new_id()
        try:
            ktype, num = int(request.match_info["ktype"]), int(request.match_info["num"])
        except ValueError:
            return web.json_response({"ret": 506, "msg": "Param error", "traceId": trace})
        codes = split_codes(request.match_info["codes"])
        business = request.match_info["business"]
        if business not in CHANNELS or ktype not in proto.KLINE_BY_NUMBER or not codes or num < 1:
            return web.json_response({"ret": 506, "msg": "Param error", "traceId": trace})
        if len(codes) > 1 and num > proto.REST_MAX_KLINES_SEVERAL_CODES:
            return web.json_response({"ret": 506, "msg": "klineNum over 2 for several codes", "traceId": trace})
        if num > proto.REST_MAX_KLINES_ONE_CODE:
            return web.json_response({"ret": 503, "msg": "klineNum over the limit", "traceId": trace})
        data = []
        for sym in codes:
            code = self.by_symbol.get(sym)
            if code is not None and self.market.states[code].inst.exchange in CHANNELS[business]:
                data.append({"s": sym, "respList": self.kline_rows(code, ktype, num)})
        if not data:
            return web.json_response({"ret": 508, "msg": "All product not exists", "traceId": trace})
        body = orjson.dumps({"ret": 200, "msg": "success", "traceId": trace, "data": data})
        # recorded like a frame: a producer keeps a good answer on its raw topic, so what the simulator
        # served still adds up to what Kafka holds
        rows: list[Row] = [{"kind": "kline", "code": str(d["s"])} for d in data]
        self.recorder.sent(f"rest-{trace}", 1, "data", len(body), rows)
        return web.Response(body=body, content_type="application/json")

    # ---- connection -----------------------------------------------------------------------
    async def quote_ws(self, request: web.Request) -> web.StreamResponse:
        refused = self.refused()
        if refused is not None:
            return refused
        if self.faults.active("rate_limit"):
            return web.json_response({"code": proto.OVER_QUOTA, "message": "Too Many Requests"}, status=429)
        if not self.key_ok(request.query.get("apikey")):
            return web.Response(status=401, text=BAD_KEY_BODY, content_type="application/json")
        business = request.query.get("business", "")
        if business not in CHANNELS:
            return web.json_response({"code": proto.WRONG_URL, "msg": f"Wrong WS URL: unknown business {business!r}"}, status=400)
        conn_id = self.new_id()
        ws = await self.prepare_ws(request, conn_id)
        conn = self.register(IwConnection(conn_id, ws, request, business))
        watchdog = asyncio.create_task(self._heartbeat_watchdog(conn))
        try:
            if business == "stock":
                await conn.send(GREETING, "control")
            await conn.send(WELCOME, "control")
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if not await self._client_frame(conn, msg.data):
                    break
        finally:
            watchdog.cancel()
            self.forget(conn)
            await conn.close()
        return ws

    async def _heartbeat_watchdog(self, conn: IwConnection) -> None:
        step = min(1.0, self.heartbeat_timeout / 4)
        while not conn.closed:
            await asyncio.sleep(step)
            if time.monotonic() - conn.last_heartbeat > self.heartbeat_timeout:
                await conn.close(1000, b"heartbeat timeout")
                return

    def _over_limit(self, conn: IwConnection) -> bool:
        now = time.monotonic()
        conn.frames_in.append(now)
        while conn.frames_in and conn.frames_in[0] <= now - self.frame_window:
            conn.frames_in.popleft()
        return len(conn.frames_in) > self.frame_limit

    async def _client_frame(self, conn: IwConnection, data: str | bytes) -> bool:
        """Handle one client frame; False closes the connection."""
        try:
            req = orjson.loads(data)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            req = None
        trace = str(req.get("trace", "")) if req else ""
        if self._over_limit(conn):
            await conn.send(error_frame(trace, proto.RATE_LIMITED, RATE_LIMIT_MSG), "control")
            return False
        if req is None:
            await conn.send(error_frame("", proto.NOT_JSON, "Request data is not JSON"), "control")
            return True
        code, body = req.get("code"), req.get("data")
        if code == proto.HEARTBEAT:
            conn.last_heartbeat = time.monotonic()
            if self.heartbeat_reply:
                await conn.send(orjson.dumps({"code": proto.ACK_HEARTBEAT, "trace": trace, "msg": "ok"}).decode(),
                                "control")
            return True
        if code in SUBSCRIBE:
            if not isinstance(body, dict):
                await conn.send(error_frame(trace, proto.PARAM_LOST, "Param lost：data"), "control")
                return True
            if self._too_many_codes(conn, body):
                await conn.send(proto.SUBSCRIBE_FAIL_PREFIX + " " + error_frame(
                    trace, proto.TOO_MANY_CODES, f"Single WS subscribe exceeds the limit {self.max_codes}"), "control")
                return True
            self._subscribe(conn, SUBSCRIBE[code], body)
            ack = ACK[code]
        elif code in UNSUBSCRIBE:
            self._unsubscribe(conn, UNSUBSCRIBE[code], body if isinstance(body, dict) else {})
            ack = proto.ACK_UNSUBSCRIBE
        else:
            await conn.send(error_frame(trace, proto.PARAM_ERROR if code is not None else proto.PARAM_LOST,
                                        f"Param error：code {code}" if code is not None else "Param lost：code"),
                            "control")
            return True
        await conn.send(orjson.dumps({"code": ack, "trace": trace, "msg": "ok"}).decode(), "control")
        return True

    def _too_many_codes(self, conn: IwConnection, body: dict[str, Any]) -> bool:
        asked = set(split_codes(body.get("codes")))
        for item in body.get("arr") or []:
            if isinstance(item, dict):
                asked.update(split_codes(item.get("codes")))
        return len(conn.trade | conn.depth | set(conn.kline) | asked) > self.max_codes

    def _subscribe(self, conn: IwConnection, what: str, body: dict[str, Any]) -> None:
        if what == "trade":
            conn.trade.update(split_codes(body.get("codes")))
            conn.include_ty = bool(body.get("includeTy", conn.include_ty))
        elif what == "depth":
            conn.depth.update(split_codes(body.get("codes")))
        else:
            for item in body.get("arr") or []:
                if isinstance(item, dict) and int(item.get("type", 0) or 0) in proto.KLINE_BY_NUMBER:
                    for sym in split_codes(item.get("codes")):
                        conn.kline.setdefault(sym, set()).add(int(item["type"]))

    def _unsubscribe(self, conn: IwConnection, what: str, body: dict[str, Any]) -> None:
        codes = split_codes(body.get("codes"))
        if what == "kline":
            types = {int(t) for t in split_codes(str(body.get("klineTypes", "")))} if body.get("klineTypes") else None
            for sym in codes or list(conn.kline):
                left = conn.kline.get(sym, set()) - types if types else set()
                if left:
                    conn.kline[sym] = left
                else:
                    conn.kline.pop(sym, None)
            return
        target = conn.trade if what == "trade" else conn.depth
        if codes:
            target.difference_update(codes)
        else:
            target.clear()

    # ---- pushes ---------------------------------------------------------------------------
    def _served(self, conn: IwConnection, sym: str) -> str | None:
        code = self.by_symbol.get(sym)
        if code is None or self.market.states[code].inst.exchange not in CHANNELS[conn.business]:
            return None
        return code

    def codes_of(self, conn: Connection) -> Iterable[str]:
        assert isinstance(conn, IwConnection)
        syms = conn.trade | conn.depth | set(conn.kline)
        return [c for c in (self._served(conn, s) for s in syms) if c]

    def _trade_frame(self, t: Trade, with_ty: bool) -> str:
        inst = self.market.states[t.code].inst
        vol = f"{t.volume:.{inst.volume_decimals}f}"
        data: dict[str, Any] = {"p": inst.fmt(t.price), "s": self.symbol_of[t.code], "t": t.ts_ms, "td": t.side,
                                "v": vol, "vw": f"{t.price * t.volume:.5f}"}
        if with_ty:
            data["ty"] = 1
        return orjson.dumps({"code": proto.PUSH_TRADE, "data": data}).decode()

    def _depth_frame(self, code: str, ts_ms: int) -> str:
        st = self.market.states[code]
        bids, asks = st.book(5)
        q = st.inst.volume_decimals

        def side(levels: list[tuple[float, int]]) -> list[list[str]]:
            live = [(p, v) for p, v in levels if v]
            return [[st.inst.fmt(p) for p, _ in live], [f"{v:.{q}f}" for _, v in live]]

        if self.depth_sides == "comments":  # seed 002's comments: a = 買盤 (bids), b = 賣盤 (asks)
            asks, bids = bids, asks
        return orjson.dumps({"code": proto.PUSH_DEPTH, "data": {"a": side(asks), "b": side(bids),
                                                                "s": self.symbol_of[code], "t": ts_ms}}).decode()

    def _kline_frames(self, trades: list[Trade], cache: dict[Any, Any], code: str, ktype: int) -> list[str]:
        """The kline pushes of one tick: one per bar the tick's trades touched (a tick across a bar
        boundary also shows the finished bar's final state, as the REST history does)."""
        key = ("kline", code, ktype)
        if key not in cache:
            seconds = proto.KLINE_BY_NUMBER[ktype].seconds
            history = self.history.setdefault((code, seconds), {})
            touched: dict[int, tuple[Bar, float]] = {}
            for t in trades:
                bar = self.bars.update(t, seconds)
                history[bar.start_s] = bar  # the live object: the REST view is the push's bar
                touched[bar.start_s] = (bar, self.bars.prev_close.get((code, seconds),
                                                                      self.market.states[code].inst.prev_close))
            while len(history) > proto.REST_MAX_KLINES_ONE_CODE:
                del history[min(history)]
            f = self.market.states[code].inst.fmt
            cache[key] = [orjson.dumps({"code": proto.PUSH_KLINE, "data": self._kline_data(code, bar, prev, ktype, f)}).decode()
                          for bar, prev in touched.values()]
        return cache[key]

    def _kline_data(self, code: str, bar: Bar, prev: float, ktype: int, f: Any) -> dict[str, Any]:
        """One kline push's ``data`` in this simulator's dialect."""
        change = f"{100 * (bar.close / prev - 1):.2f}%"
        if self.dialect == "documented":  # seeds/002 實時K線解析, keys in the printed order
            return {"s": self.symbol_of[code], "respList": [{
                "t": str(bar.start_s), "h": f(bar.high), "o": f(bar.open), "l": f(bar.low), "c": f(bar.close),
                "v": f"{bar.volume:.5f}", "vw": f"{bar.amount:.5f}", "pc": change, "pca": f(bar.close - prev)}]}
        return {"c": f(bar.close), "h": f(bar.high), "l": f(bar.low), "o": f(bar.open), "pca": f(bar.close - prev),
                "pfr": change, "s": self.symbol_of[code], "t": str(bar.start_s), "ty": ktype,
                "v": f"{bar.volume:.5f}", "vw": f"{bar.amount:.5f}"}

    async def push(self, conn: Connection, trades: list[Trade], cache: dict[Any, Any]) -> None:
        assert isinstance(conn, IwConnection)
        if "by_code" not in cache:
            cache["by_code"] = group_by_code(trades)
        by_code: dict[str, list[Trade]] = cache["by_code"]
        for sym in conn.trade:
            code = self._served(conn, sym)
            for t in by_code.get(code, ()) if code else ():
                key: tuple[Any, ...] = ("trade", t.code, t.trade_id, conn.include_ty)
                if key not in cache:
                    cache[key] = self._trade_frame(t, conn.include_ty)
                row: Row = {"kind": "trade", "code": sym, "trade_ids": [t.trade_id]}
                if not await conn.send(cache[key], "data", [row]):
                    return
        for sym in conn.depth:
            code = self._served(conn, sym)
            if code and code in by_code:
                key = ("depth", code)
                if key not in cache:
                    cache[key] = self._depth_frame(code, by_code[code][-1].ts_ms)
                if not await conn.send(cache[key], "data", [{"kind": "depth", "code": sym}]):
                    return
        for sym, types in conn.kline.items():
            code = self._served(conn, sym)
            if code and code in by_code:
                for ktype in sorted(types):
                    for frame in self._kline_frames(by_code[code], cache, code, ktype):
                        if not await conn.send(frame, "data", [{"kind": "kline", "code": sym}]):
                            return

    def garbage_frame(self) -> str:
        return GARBAGE

    async def on_fault(self, kind: str, seconds: float) -> None:
        if kind == "rate_limit":
            for conn in list(self.connections.values()):
                await conn.send(error_frame("", proto.RATE_LIMITED, RATE_LIMIT_MSG), "control")
                await conn.close(1000, b"rate limit")
