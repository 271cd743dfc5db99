"""Jin10 simulator: the socket.io price wall, Engine.IO v3 at ``/socket.io/`` (protocols.md §3.1).

Like a real EIO3 server (marketpipe/providers/jin10/protocol.py has the framing and the document's sequence):
- the handshake GET answers only ``<len>:0{"sid":..,"upgrades":["websocket"],"pingInterval":25000,
  "pingTimeout":60000}`` (intervals configurable); the socket.io connect ``40`` is queued for the next GET;
- a polling GET with nothing queued is held open (long poll) until a packet is queued or the session
  expires; an expired session answers a held GET with the close packet ``1``;
- by default (``check_sequence``) every session must follow the provider document's request sequence:
  GET -> GET sid -> POST sid (setAdvSubscription) -> GET sid -> GET sid -> websocket sid; ping POSTs
  (``2`` only) are allowed any time. Anything else is refused with HTTP 400 ``{"code":3,..}`` naming the
  expected step and counted in ``sequence_violations``;

Choices made where the documentation is [I]/[U]:
- ``t`` is accepted and ignored; a new sid every handshake;
- pushes are ``42["quote",{"code","name","last","open","high","low","prev_close","time"(epoch ms)}]``
  (event name configurable) for every subscribed code that traded in a tick; codes are the price-wall
  names (``XAUUSD``, ``SH1A0001`` = 上证指数 ...);
- when the websocket upgrade completes a held poll is released with ``1:6`` (noop); polls after the upgrade
  get HTTP 400;
- the session is dropped after ``pingInterval + pingTimeout`` without a ``2`` ping (from either transport);
- errors use the EIO JSON ``{"code":N,"message":..}``: unknown sid 400/1, bad version 400/5, overlapping
  poll or poll after upgrade 400/3; ``reject_auth`` = HTTP 403/4 on the handshake; ``rate_limit`` = HTTP 429
  on handshake and polls; a websocket without ``sid`` gets its own open packet.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from typing import Any, Iterable

import orjson
from aiohttp import WSMsgType, web

from marketpipe.providers.jin10 import protocol as proto
from marketpipe.providers.jin10.protocol import PayloadError, decode_payload, encode_payload
from marketpipe.simulators.market import Trade
from marketpipe.simulators.server import Connection, Row, SimServer, group_by_code

#: price-wall code -> market code
JIN10_CODES = {"XAUUSD": "XAUUSD", "XAGUSD": "XAGUSD", "EURUSD": "EURUSD", "USDCNH": "USDCNH",
               "USOIL": "USOIL", "DXY": "DXY", "SH1A0001": "i000001"}
DEFAULT_SYMBOLS = tuple(JIN10_CODES.values())
GARBAGE = '42["quote",{"code":"XAUUSD","last":'
MAX_QUEUE = 20000


def eio_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


class Session(Connection):
    """An EIO session: packets queue for polling until the websocket upgrade completes."""

    def __init__(self, sid: str, request: web.Request):
        super().__init__(sid, None, request)
        self.queue: deque[tuple[str, str, Row | None]] = deque()
        self.wakeup = asyncio.Event()
        self.subs: set[str] = set()  # market codes
        self.last_ping = time.monotonic()
        self.polling = True
        self.poll_request: web.Request | None = None
        self.sequence = proto.SequenceCheck()

    @property
    def ready(self) -> bool:
        return not self.closed and (self.polling or (self.ws is not None and not self.ws.closed))

    async def send(self, data: str | bytes, ftype: str = "data", rows: list[Row] | None = None) -> bool:
        if self.closed:
            return False
        if self.polling:
            if len(self.queue) >= MAX_QUEUE:  # client stopped polling; a real server would time it out
                await self.drop()
                return False
            self.queue.append((str(data), ftype, rows[0] if rows else None))
            self.wakeup.set()
            return True
        return await super().send(data, ftype, rows)

    def drain(self) -> tuple[str, str, list[Row]]:
        """Everything queued as one poll body, the frame type for the record, and its rows."""
        items = list(self.queue)
        self.queue.clear()
        self.wakeup.clear()
        types = {t for _, t, _ in items}
        ftype = "data" if "data" in types else "garbage" if "garbage" in types else "control"
        return encode_payload(p for p, _, _ in items), ftype, [r for _, _, r in items if r]

    async def drop(self) -> None:
        """End the session; a held poll wakes up and answers the close packet."""
        self.closed = True
        self.wakeup.set()
        transport = self.request.transport if self.request is not None else None
        if self.ws is not None and transport is not None:
            transport.close()


class Jin10Sim(SimServer):
    provider = "jin10"
    default_symbols = DEFAULT_SYMBOLS

    def __init__(self, config: Any = None, *, event: str = "quote", ping_interval_ms: int = 25000,
                 ping_timeout_ms: int = 60000, check_sequence: bool = True, **kw: Any) -> None:
        super().__init__(config, **kw)
        self.event = event
        self.ping_interval_ms = ping_interval_ms
        self.ping_timeout_ms = ping_timeout_ms
        self.check_sequence = check_sequence
        self.sequence_violations = 0
        self.jin10_of = {m: j for j, m in JIN10_CODES.items()}
        self._reaper: asyncio.Task[None] | None = None

    def canonical(self, code: str) -> str:
        return JIN10_CODES.get(code, code)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/socket.io/", self.get)
        app.router.add_post("/socket.io/", self.post)

    def addresses(self) -> dict[str, str]:
        return {"JIN10_URL": self.base_url}

    async def start(self) -> None:
        await super().start()
        self._reaper = asyncio.create_task(self._reap())

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        await super().stop()

    def open_packet(self, sid: str, on_websocket: bool = False) -> str:
        upgrades = () if on_websocket else ("websocket",)
        return proto.open_packet(proto.OpenInfo(sid, self.ping_interval_ms, self.ping_timeout_ms, upgrades))

    def _in_sequence(self, session: Session, request: str, packets: Iterable[str] = ()) -> web.Response | None:
        """None when the request is the document's next step (or checks are off); else the refusal."""
        if not self.check_sequence or session.sequence.allow(request, packets):
            return None
        self.sequence_violations += 1
        return eio_error(400, 3, f"Bad request: {request} out of sequence, expected {session.sequence.expected()}")

    # ---- HTTP -----------------------------------------------------------------------------
    def _gate(self, request: web.Request) -> web.Response | None:
        if request.query.get("EIO") != "3":
            return eio_error(400, 5, "Unsupported protocol version")
        if request.query.get("transport") not in ("polling", "websocket"):
            return eio_error(400, 0, "Transport unknown")
        refused = self.refused()
        if refused is not None:
            return refused
        if self.faults.active("rate_limit"):
            return eio_error(429, 3, "Too many requests")
        return None

    def _session(self, sid: str | None) -> Session | None:
        s = self.connections.get(sid or "")
        return s if isinstance(s, Session) and not s.closed else None

    async def get(self, request: web.Request) -> web.StreamResponse:
        gated = self._gate(request)
        if gated is not None:
            return gated
        sid = request.query.get("sid")
        if request.query["transport"] == "websocket":
            return await self.websocket(request, sid)
        if not sid:
            return self.handshake(request)
        session = self._session(sid)
        if session is None:
            return eio_error(400, 1, "Session ID unknown")
        if not session.polling or session.poll_request is not None:
            return eio_error(400, 3, "Bad request")
        refused = self._in_sequence(session, proto.POLL)
        if refused is not None:
            return refused
        session.poll_request = request
        try:
            while not session.queue and not session.closed and session.polling:  # long poll
                await session.wakeup.wait()
                session.wakeup.clear()
        finally:
            session.poll_request = None
        if session.closed:
            body = encode_payload([proto.CLOSE])
            session.note_sent(body, "control", None)
            return web.Response(text=body, content_type="text/plain", charset="utf-8")
        body, ftype, rows = session.drain() if session.queue else (encode_payload([proto.NOOP]), "control", [])
        session.note_sent(body, ftype, rows)
        return web.Response(text=body, content_type="text/plain", charset="utf-8")

    def handshake(self, request: web.Request) -> web.Response:
        if self.faults.active("reject_auth"):
            return eio_error(403, 4, "Forbidden")
        session = self.register(Session(secrets.token_urlsafe(15), request))
        body = encode_payload([self.open_packet(session.id)])
        session.note_sent(body, "control", None)
        session.queue.append((proto.CONNECT_PACKET, "control", None))  # answered by the next GET
        return web.Response(text=body, content_type="text/plain", charset="utf-8")


    async def post(self, request: web.Request) -> web.Response:
        gated = self._gate(request)
        if gated is not None:
            return gated
        session = self._session(request.query.get("sid"))
        if session is None:
            return eio_error(400, 1, "Session ID unknown")
        try:
            packets = decode_payload(await request.text())
        except PayloadError:
            return eio_error(400, 3, "Bad request")
        refused = self._in_sequence(session, proto.POST, packets)
        if refused is not None:
            return refused
        for packet in packets:
            await self.packet(session, packet)
        return web.Response(text="ok", content_type="text/html")

    # ---- packets --------------------------------------------------------------------------
    async def packet(self, session: Session, packet: str) -> None:
        if packet == proto.PING:
            session.last_ping = time.monotonic()
            await session.send(proto.PONG, "control")
        elif packet == proto.CLOSE:
            self.forget(session)
            await session.drop()
        elif proto.is_data(packet):
            self.event_packet(session, packet)

    def event_packet(self, session: Session, packet: str) -> None:
        try:
            ev = proto.parse_event(packet)
        except proto.NotAnEvent:
            return
        if ev.name == proto.SUBSCRIBE_EVENT and ev.args:
            codes = ev.args[0].get("list", []) if isinstance(ev.args[0], dict) else []
            session.subs = {JIN10_CODES[c] for c in codes if c in JIN10_CODES}

    # ---- websocket ------------------------------------------------------------------------
    async def websocket(self, request: web.Request, sid: str | None) -> web.StreamResponse:
        session = self._session(sid) if sid else None
        if sid and (session is None or not session.polling or session.ws is not None):
            return eio_error(400, 1, "Session ID unknown")
        if not sid and self.faults.active("reject_auth"):
            return eio_error(403, 4, "Forbidden")
        if self.check_sequence and session is None:
            self.sequence_violations += 1
            return eio_error(400, 3, "Bad request: websocket without sid, expected the polling handshake first")
        if session is not None:
            refused = self._in_sequence(session, proto.WEBSOCKET)
            if refused is not None:
                return refused
        sid = session.id if session else secrets.token_urlsafe(15)
        ws = await self.prepare_ws(request, sid)
        if session is None:  # websocket-only client: the open packet arrives on the socket
            session = self.register(Session(sid, request))
            session.ws, session.polling = ws, False
            await session.send(self.open_packet(session.id, on_websocket=True), "control")
            await session.send(proto.CONNECT_PACKET, "control")
        else:
            session.request = request
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or session.closed:
                    continue
                if msg.data == proto.PROBE and session.polling:
                    await self._ws_send(session, ws, proto.PROBE_ANSWER)
                elif msg.data == proto.UPGRADE and session.polling:
                    await self._upgrade(session, ws)
                elif msg.data == proto.PING and session.polling:  # ping on the probe socket before "5"
                    session.last_ping = time.monotonic()
                    await self._ws_send(session, ws, proto.PONG)
                else:
                    await self.packet(session, msg.data)
        finally:
            if session.ws is ws:
                self.forget(session)
                session.closed = True
        return ws

    async def _ws_send(self, session: Session, ws: web.WebSocketResponse, packet: str) -> None:
        await ws.send_str(packet)
        session.note_sent(packet, "control", None)

    async def _upgrade(self, session: Session, ws: web.WebSocketResponse) -> None:
        """Switch the session to the websocket: queued packets follow on it, a pending poll gets a noop."""
        session.ws, session.polling = ws, False
        pending = list(session.queue)
        session.queue.clear()
        session.wakeup.set()
        for packet, ftype, row in pending:
            await session.send(packet, ftype, [row] if row else None)

    async def _reap(self) -> None:
        limit = (self.ping_interval_ms + self.ping_timeout_ms) / 1000
        while True:
            await asyncio.sleep(min(0.5, limit / 4))
            now = time.monotonic()
            for session in list(self.connections.values()):
                if isinstance(session, Session) and now - session.last_ping > limit:
                    self.forget(session)
                    if session.ws is not None:
                        await session.close(1000, b"ping timeout")
                    await session.drop()

    # ---- pushes ---------------------------------------------------------------------------
    def codes_of(self, conn: Connection) -> Iterable[str]:
        assert isinstance(conn, Session)
        return conn.subs

    def _quote_packet(self, code: str, ts_ms: int) -> str:
        st = self.market.states[code]
        d = st.inst.price_decimals
        data = {"code": self.jin10_of.get(code, code), "name": st.inst.name, "last": round(st.last, d),
                "open": round(st.open, d), "high": round(st.high, d), "low": round(st.low, d),
                "prev_close": st.inst.prev_close, "time": ts_ms}
        return "42" + orjson.dumps([self.event, data]).decode()

    async def push(self, conn: Connection, trades: list[Trade], cache: dict[Any, Any]) -> None:
        assert isinstance(conn, Session)
        if "by_code" not in cache:
            cache["by_code"] = group_by_code(trades)
        for code, code_trades in cache["by_code"].items():
            if code not in conn.subs:
                continue
            if code not in cache:
                cache[code] = self._quote_packet(code, code_trades[-1].ts_ms)
            row: Row = {"kind": "quote", "code": self.jin10_of.get(code, code)}
            if not await conn.send(cache[code], "data", [row]):
                return

    def garbage_frame(self) -> str:
        return GARBAGE
