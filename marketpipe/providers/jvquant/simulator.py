"""jvQuant simulator: server allocation over HTTP plus the quote websocket (protocols.md §1.1-1.4).

Choices made where the documentation is [I]/[U]:
- allocation ``server`` carries the scheme (``ws://host:port/quote/<market>/<gen>``; ``type=trade``/``sql``
  give ``http://host:port`` of this same server); errors answer ``{"code":"-1","msg":...}`` (HTTP 200),
  rate limiting answers HTTP 429 with ``{"code":"429","msg":...}``;
- bad token on the websocket: HTTP 401 at the upgrade; no app-level heartbeat required, WS pings answered;
- command replies are short text frames such as ``add ok: lv1_600519`` / ``list: ...`` (never binary,
  never starting with ``lv1_``/``lv2_``/``lv10_``); unknown codes are accepted (they just never trade);
- ``dialect="documented"`` (default) speaks as the provider documents print:
  lv1 fields 5/6 are volume then amount (成交量,成交额), and an lv2 row's first record is
  ``time,id,price,vol`` while later ones are ``id,time,price,vol`` (the packet example);
  ``dialect="notes"`` speaks the later reading of protocols.md §1.4: amount then volume, every
  lv2 record time first. Decoders must take both (protocols.md §0);
- lv10 per side: 10 prices then 10 quantities; book quantities in shares; lv2 time
  ``HH:MM:SS.fff``; times are Asia/Shanghai wall time;
- market ``us``: lv1 ``code,price,ratio,amount,volume,time,update_time``, lv2 ``time,RTH,id,price,vol``;
  market ``hk`` is allocated but has no instruments;
- at high rates a code's trades are split into lv2 rows of at most 200 trades (several rows of one code
  in a frame), and frames are cut at about 64 KB of text;
- ``book_columns="price-first"`` sends lv1 book levels as (price, size) instead of the documents'
  (size, price); ``close_snapshot="15:00:03"`` stamps every lv1 row with that clock time, as a feed
  re-sending the day's last snapshot outside trading hours does (the decoder dates it by the
  trading calendar);
- ``restart`` fault: the next allocation hands out a new path (same port) and the old path answers 404;
- allocation answers with the host:port the request came in on (works behind 0.0.0.0 in a container).
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterable

from aiohttp import WSMsgType, web

from marketpipe.providers.jvquant import protocol
from marketpipe.providers.jvquant.protocol import deflate_raw
from marketpipe.simulators.market import State, Trade, check_dialect, shanghai_hms, shanghai_hms_ms
from marketpipe.simulators.server import Connection, Row, SimServer, group_by_code

#: the exchanges of each allocation market (protocol.MARKETS)
MARKET_EXCHANGES = {"ab": ("SH", "SZ", "BJ"), "hk": ("HK",), "us": ("US",)}
DEFAULT_SYMBOLS = ("600519", "601318", "000001", "002594", "600290", "300750", "688981", "430047", "830799",
                   "113050", "127063", "123089", "512170", "159506", "i000001", "aapl", "amzn", "tsla")
#: frames stay small at high rates: long trade lists are split into several rows of the same
#: code, and a frame is closed once its text reaches MAX_FRAME_CHARS
MAX_TRADES_PER_ROW = 200
MAX_FRAME_CHARS = 64_000

#: raw DEFLATE first byte 0xFF = final block of reserved type 3: no inflater accepts it
GARBAGE = b"\xff\x00\x13\x37not-deflate\x00\xfe"


#: ``book_columns``: the documents' (size, price) level pairs, or (price, size)
BOOK_COLUMNS = ("documented", "price-first")


def lv1_row(st: State, ts_ms: int, dialect: str = "documented", book_columns: str = "documented",
            clock: str | None = None) -> str:
    f = st.inst.fmt
    bids, asks = st.book(protocol.LV1_DEPTH)
    volume, amount = str(int(st.volume)), f"{st.amount:.2f}"
    parts = [clock or shanghai_hms(ts_ms), st.inst.name, f(st.last), f"{st.ratio_pct:.2f}",
             *((volume, amount) if dialect == "documented" else (amount, volume))]
    for p, q in bids + asks:
        parts += (str(q), f(p)) if book_columns == "documented" else (f(p), str(q))
    return protocol.FIELD_SEP.join(parts)


def lv10_row(st: State, ts_ms: int) -> str:
    f = st.inst.fmt
    bids, asks = st.book(protocol.LV10_DEPTH)
    parts = [shanghai_hms(ts_ms), st.inst.name, f(st.last), f(st.inst.prev_close), f"{st.amount:.2f}",
             str(int(st.volume))]
    parts += [f(p) for p, _ in bids] + [str(q) for _, q in bids]
    parts += [f(p) for p, _ in asks] + [str(q) for _, q in asks]
    return protocol.FIELD_SEP.join(parts)


def lv2_trades(trades: list[Trade], fmt: Callable[[float], str], dialect: str = "documented") -> str:
    """``time,id,price,vol`` records; in the documents' packet example every record after the
    first is printed ``id,time,price,vol``, and that is what the documented dialect sends."""
    def record(k: int, t: Trade) -> str:
        when, tid = shanghai_hms_ms(t.ts_ms), t.trade_id
        head = f"{tid},{when}" if k and dialect == "documented" else f"{when},{tid}"
        return f"{head},{fmt(t.price)},{int(t.volume)}"

    return protocol.RECORD_SEP.join(record(k, t) for k, t in enumerate(trades))


def us_lv1_row(st: State, ts_ms: int) -> str:
    f, hms = st.inst.fmt, shanghai_hms(ts_ms)
    return ",".join((st.inst.code, f(st.last), f"{st.ratio_pct:.2f}", f"{st.amount:.2f}", str(int(st.volume)), hms, hms))


def us_lv2_trades(trades: list[Trade], fmt: Callable[[float], str]) -> str:
    return protocol.RECORD_SEP.join(f"{shanghai_hms_ms(t.ts_ms)},RTH,{t.trade_id},{fmt(t.price)},{int(t.volume)}" for t in trades)


class JvConnection(Connection):
    def __init__(self, conn_id: str, ws: web.WebSocketResponse, request: web.Request, market: str, token: str):
        super().__init__(conn_id, ws, request)
        self.market = market
        self.token = token
        self.subs: dict[str, set[str]] = {}  # code -> levels

    def sub_list(self) -> list[str]:
        return sorted(protocol.row_key(lv, code) for code, lvs in self.subs.items() for lv in lvs)


class JvQuantSim(SimServer):
    provider = "jvquant"
    default_symbols = DEFAULT_SYMBOLS

    def __init__(self, config: Any = None, *, extra_routes: Callable[[web.Application], None] | None = None,
                 dialect: str = "documented", book_columns: str = "documented", close_snapshot: str | None = None,
                 **kw: Any) -> None:
        self.dialect = check_dialect(dialect)
        if book_columns not in BOOK_COLUMNS:
            raise ValueError(f"unknown book_columns {book_columns!r}; one of {', '.join(BOOK_COLUMNS)}")
        self.book_columns = book_columns
        self.close_snapshot = close_snapshot
        super().__init__(config, **kw)
        self.extra_routes = extra_routes
        self.generation = secrets.token_hex(4)
        self.history: dict[str, set[str]] = {}  # token -> codes subscribed today ("his")
        self.allocations = 0
        #: where ``type=trade`` allocation sends clients; None: this server (a test moves the counter)
        self.trade_server: str | None = None

    # ---- HTTP -----------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        for path in protocol.PATHS:
            app.router.add_get(path, self.allocate)
        app.router.add_get("/quote/{market}/{gen}", self.quote_ws)
        if self.extra_routes:
            self.extra_routes(app)

    def addresses(self) -> dict[str, str]:
        return {"JVQUANT_BASE_URL": self.base_url}

    def ws_address(self, market: str, host: str | None = None) -> str:
        return f"ws://{host or f'{self.host}:{self.port}'}/quote/{market}/{self.generation}"

    async def allocate(self, request: web.Request) -> web.Response:
        self.allocations += 1
        refused = self.refused()
        if refused is not None:
            return refused
        if self.faults.active("rate_limit"):
            return web.json_response({"code": "429", "msg": "请求过于频繁 (too many requests)"}, status=429)
        q = request.query
        if not self.key_ok(q.get("token")):
            return web.json_response({"code": "-1", "msg": "token无效 (invalid token)"})
        market, kind = q.get("market", ""), q.get("type", protocol.KIND_WEBSOCKET)
        if market not in MARKET_EXCHANGES:
            allowed = ", ".join(protocol.MARKETS)
            return web.json_response({"code": "-1", "msg": f"market参数错误 (market must be {allowed}): {market}"})
        # answer with the host:port the client reached us by, so a server bound to 0.0.0.0 in a
        # container hands out an address other containers can use
        if kind == protocol.KIND_WEBSOCKET:
            server = self.ws_address(market, request.host)
        elif kind == protocol.KIND_TRADE and self.trade_server:
            server = self.trade_server
        elif kind in (protocol.KIND_TRADE, protocol.KIND_SQL):
            server = f"http://{request.host}" if request.host else self.base_url
        else:
            return web.json_response({"code": "-1", "msg": f"type参数错误 (unknown type): {kind}"})
        return web.json_response({"code": "0", "server": server})

    # ---- websocket ------------------------------------------------------------------------
    async def quote_ws(self, request: web.Request) -> web.StreamResponse:
        market = request.match_info["market"]
        if request.match_info["gen"] != self.generation or market not in MARKET_EXCHANGES:
            raise web.HTTPNotFound(text="no such quote server (allocate a new one)")
        refused = self.refused()
        if refused is not None:
            return refused
        token = request.query.get("token", "")
        if not self.key_ok(token):
            return web.Response(status=401, text="token invalid")
        conn_id = self.new_id()
        ws = await self.prepare_ws(request, conn_id)
        conn = self.register(JvConnection(conn_id, ws, request, market, token))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.send(self.command(conn, msg.data), "control")
                elif msg.type == WSMsgType.BINARY:
                    await conn.send("unsupported: commands are text frames", "control")
        finally:
            self.forget(conn)
        return ws

    def command(self, conn: JvConnection, text: str) -> str:
        """Apply one text command and return the reply text."""
        verb, eq, arg = text.strip().partition("=")
        verb = verb.strip().lower()
        if verb in (protocol.LIST, protocol.HIS) and not eq:
            codes = conn.sub_list() if verb == protocol.LIST else sorted(self.history.get(conn.token, ()))
            return f"{verb}: {len(codes)} codes: {','.join(codes)}"
        if verb not in protocol.SUBSCRIPTION_VERBS or not eq:
            return f"unknown command: {text[:60]}"
        pairs, bad = protocol.parse_subscription(arg)
        if verb == protocol.ALL:
            conn.subs.clear()
        for level, code in pairs:
            if verb == protocol.DEL:
                conn.subs.get(code, set()).discard(level)
                if not conn.subs.get(code):
                    conn.subs.pop(code, None)
            else:
                conn.subs.setdefault(code, set()).add(level)
                self.history.setdefault(conn.token, set()).add(protocol.row_key(level, code))
        reply = f"{verb} ok: {len(pairs)} codes: {','.join(protocol.row_key(lv, c) for lv, c in pairs)}"
        return reply + (f"; rejected: {','.join(bad)}" if bad else "")

    # ---- pushes ---------------------------------------------------------------------------
    def codes_of(self, conn: Connection) -> Iterable[str]:
        assert isinstance(conn, JvConnection)
        exchanges = MARKET_EXCHANGES[conn.market]
        states = self.market.states
        return [c for c in conn.subs if c in states and states[c].inst.exchange in exchanges]

    def _rows(self, level: str, code: str, trades: list[Trade]) -> list[tuple[str, Row]]:
        st = self.market.states[code]
        kind, ts = st.inst.kind, trades[-1].ts_ms
        if level == "lv2":
            if kind == "index":  # an index has no trades
                return []
            chunks = [trades[i:i + MAX_TRADES_PER_ROW] for i in range(0, len(trades), MAX_TRADES_PER_ROW)]
            key = protocol.row_key(level, code)

            def records(chunk: list[Trade]) -> str:
                if kind == "us":
                    return us_lv2_trades(chunk, st.inst.fmt)
                return lv2_trades(chunk, st.inst.fmt, self.dialect)

            return [(key + protocol.KEY_SEP + records(chunk),
                     {"kind": "lv2", "code": code, "trade_ids": [t.trade_id for t in chunk]}) for chunk in chunks]
        if level == "lv1":
            body = us_lv1_row(st, ts) if kind == "us" else lv1_row(st, ts, self.dialect, self.book_columns, self.close_snapshot)
        elif kind in ("us", "index"):  # lv10 is A-share only, and an index has no book
            return []
        else:
            body = lv10_row(st, ts)
        return [(protocol.row_key(level, code) + protocol.KEY_SEP + body, {"kind": level, "code": code})]

    async def push(self, conn: Connection, trades: list[Trade], cache: dict[Any, Any]) -> None:
        assert isinstance(conn, JvConnection)
        if "by_code" not in cache:
            cache["by_code"] = group_by_code(trades)
        by_code: dict[str, list[Trade]] = cache["by_code"]
        exchanges = MARKET_EXCHANGES[conn.market]
        built: list[tuple[str, Row]] = []
        for code, levels in conn.subs.items():
            code_trades = by_code.get(code)
            if not code_trades or self.market.states[code].inst.exchange not in exchanges:
                continue
            for level in sorted(levels):
                key = (level, code)
                if key not in cache:
                    cache[key] = self._rows(level, code, code_trades)
                built.extend(cache[key])
        start, size = 0, 0
        for i, (line, _) in enumerate(built):
            size += len(line) + 1
            if size >= MAX_FRAME_CHARS or i == len(built) - 1:
                chunk = built[start:i + 1]
                frame = deflate_raw(protocol.ROW_SEP.join(line for line, _ in chunk))
                if not await conn.send(frame, "data", [row for _, row in chunk]):
                    return
                start, size = i + 1, 0

    def garbage_frame(self) -> bytes:
        return GARBAGE

    async def on_fault(self, kind: str, seconds: float) -> None:
        if kind == "restart":
            self.generation = secrets.token_hex(4)
