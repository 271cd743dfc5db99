"""Machinery every provider simulator shares, written once.

- ``SimServer``: aiohttp app lifecycle (HTTP + websocket on one port), the
  connection table, the paced market pump (``rate`` trades/s across the symbols
  that are subscribed anywhere, batched into ``ticks_per_second`` frames per
  connection), ``/_control/fault`` and ``/_control/stats``.
- ``Faults``: the fault switches (drop, stall, garbage, reject_auth, rate_limit,
  restart, mute, reorder, duplicate) with optional durations; ``mute`` silences one symbol while
  the socket stays up, answers pings and keeps sending every other symbol; ``reorder`` sends each
  two data frames of a connection swapped, ``duplicate`` every data frame twice.
- ``Recorder``: one JSONL line per frame actually written to a connection
  (``conn``, per-connection ``seq``, ``type`` data/control/garbage, ``rows`` with
  ``kind``, ``code`` and ``trade_ids``) plus in-memory counters (frames, bytes, rows,
  trades, garbage; totals and per connection).

A provider subclass implements ``add_routes``, ``codes_of``, ``push``,
``garbage_frame`` and ``addresses`` and reacts to faults in ``on_fault``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TypedDict, TypeVar

import orjson
from aiohttp import web

from marketpipe.simulators.market import Clock, Market, Trade

log = logging.getLogger("marketpipe.sim")

FAULT_KINDS = ("drop", "stall", "garbage", "reject_auth", "rate_limit", "restart", "mute", "reorder", "duplicate",
               "clear")


class Row(TypedDict, total=False):
    """What one frame carried, for reconciliation: level/event, symbol, trade ids."""

    kind: str
    code: str
    trade_ids: list[int]


class Faults:
    """Fault switches. ``seconds`` > 0 sets a window; 0 means "until cleared" for
    stall/reject_auth/rate_limit and "one shot" for garbage; drop and restart act at once
    (drop with seconds > 0 also refuses new connections with HTTP 503 for that long). ``mute``
    names a symbol (the market code): its trades, and so every row built from them, are not
    sent for ``seconds`` (0: until cleared) on any connection; re-subscribing does not lift it
    (a provider that lost the subscription on its side)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._muted: dict[str, float] = {}  # market code -> until
        self.garbage_shots = 0

    def set(self, kind: str, seconds: float, symbol: str = "") -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if kind == "mute":
            if not symbol:
                raise ValueError("the mute fault names a symbol")
            self._muted[symbol] = time.monotonic() + seconds if seconds > 0 else math.inf
        elif kind == "clear":
            self.clear()
        elif kind == "garbage" and seconds <= 0:
            self.garbage_shots += 1
        elif kind in ("stall", "reject_auth", "rate_limit", "garbage", "reorder", "duplicate"):
            self._until[kind] = time.monotonic() + seconds if seconds > 0 else math.inf
        elif kind == "drop" and seconds > 0:
            self._until["refuse"] = time.monotonic() + seconds

    def active(self, kind: str) -> bool:
        return self._until.get(kind, 0.0) > time.monotonic()

    def muted(self) -> frozenset[str]:
        now = time.monotonic()
        return frozenset(code for code, until in self._muted.items() if until > now)

    def take_garbage(self) -> bool:
        if self.garbage_shots:
            self.garbage_shots -= 1
            return True
        return self.active("garbage")

    def clear(self) -> None:
        self._until.clear()
        self._muted.clear()
        self.garbage_shots = 0


class Recorder:
    """Counts (and optionally writes as JSONL) every frame written to a connection."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.totals: Counter[str] = Counter()
        self.per_conn: dict[str, Counter[str]] = {}
        self._file = open(path, "ab") if path else None

    def sent(self, conn: str, seq: int, ftype: str, nbytes: int, rows: list[Row] | None) -> None:
        c = self.per_conn.setdefault(conn, Counter())
        for counter in (self.totals, c):
            counter["frames"] += 1
            counter[f"{ftype}_frames"] += 1
            counter["bytes"] += nbytes
            for row in rows or ():
                # garbage is counted apart so "rows" stays what a decoder can turn into records
                counter["garbage" if row.get("kind") == "garbage" else "rows"] += 1
                counter["trades"] += len(row.get("trade_ids", ()))
        if self._file:
            line = {"conn": conn, "seq": seq, "type": ftype, "bytes": nbytes, "ts_ns": time.time_ns()}
            if rows:
                line["rows"] = rows
            self._file.write(orjson.dumps(line) + b"\n")

    def flush(self) -> None:
        if self._file:
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


class Connection:
    """One client connection (a websocket, or a Jin10 session that may still be polling)."""

    def __init__(self, conn_id: str, ws: web.WebSocketResponse | None, request: web.Request | None) -> None:
        self.id = conn_id
        self.ws = ws
        self.request = request
        self.seq = 0
        self.closed = False
        self.recorder: Recorder | None = None  # set by SimServer.register
        self.faults: Faults | None = None  # set by SimServer.register
        self._held: tuple[str | bytes, list[Row] | None] | None = None  # reorder: the frame sent after the next

    @property
    def ready(self) -> bool:
        return not self.closed and self.ws is not None and not self.ws.closed

    async def send(self, data: str | bytes, ftype: str = "data", rows: list[Row] | None = None) -> bool:
        """Write one frame (twice, or after the next one, under the ``duplicate`` / ``reorder``
        faults); record each write once it was handed to the socket."""
        faults = self.faults
        if ftype != "data" or faults is None:
            return await self._write(data, ftype, rows)
        if faults.active("reorder"):
            if self._held is None:
                self._held = (data, rows)
                return True
            (held, held_rows), self._held = self._held, None
            return await self._write(data, ftype, rows) and await self._write(held, ftype, held_rows)
        if self._held is not None:  # the fault ended with a frame held: it goes first, in order
            (held, held_rows), self._held = self._held, None
            if not await self._write(held, ftype, held_rows):
                return False
        if faults.active("duplicate"):
            return await self._write(data, ftype, rows) and await self._write(data, ftype, rows)
        return await self._write(data, ftype, rows)

    async def _write(self, data: str | bytes, ftype: str, rows: list[Row] | None) -> bool:
        if not self.ready:
            return False
        assert self.ws is not None
        try:
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(data)
        except (ConnectionError, RuntimeError):
            self.closed = True
            return False
        self.note_sent(data, ftype, rows)
        return True

    def note_sent(self, data: str | bytes, ftype: str, rows: list[Row] | None) -> None:
        self.seq += 1
        if self.recorder:
            nbytes = len(data) if isinstance(data, bytes) else len(data.encode())
            self.recorder.sent(self.id, self.seq, ftype, nbytes, rows)

    async def drop(self) -> None:
        """Close the TCP connection without a websocket close frame; buffered frames are flushed
        first (transport.close, not abort), so every recorded frame really left."""
        self.closed = True
        if self.request is not None and self.request.transport is not None:
            self.request.transport.close()

    async def shutdown(self) -> None:
        """Server stop: a polite close if the peer reads, otherwise abort (a client that stopped
        reading must not hang the shutdown)."""
        try:
            await asyncio.wait_for(self.close(1001, b"server shutting down"), 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError, ConnectionError, RuntimeError):
            pass
        if self.request is not None and self.request.transport is not None:
            self.request.transport.abort()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.close(code=code, message=message)
            except (ConnectionError, RuntimeError):
                pass


C = TypeVar("C", bound=Connection)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    rate: float = 200.0            # trades per second across the subscribed symbols
    symbols: tuple[str, ...] | None = None
    seed: int = 0
    clock_speed: float = 1.0
    record: str | Path | None = None
    ticks_per_second: float = 20.0  # push cadence: each tick's trades go out batched
    api_key: str | None = None      # None: any non-empty token/key is accepted


class SimServer:
    provider = "sim"
    #: symbols used when ``symbols`` is not given
    default_symbols: tuple[str, ...] = ()

    def __init__(self, config: SimConfig | None = None, *, clock: Clock | None = None, **overrides: Any) -> None:
        cfg = config or SimConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"unknown simulator option {key!r}")
            setattr(cfg, key, value)
        if cfg.symbols is not None and not isinstance(cfg.symbols, tuple):
            cfg.symbols = tuple(cfg.symbols)
        self.config = cfg
        self.clock = clock or Clock(cfg.clock_speed)
        symbols = [self.canonical(c) for c in cfg.symbols] if cfg.symbols else self.default_symbols
        self.market = Market(symbols, seed=cfg.seed, clock=self.clock)
        self.faults = Faults()
        self.recorder = Recorder(cfg.record)
        self.connections: dict[str, Connection] = {}
        self.connects = 0
        self.port = cfg.port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._pump_task: asyncio.Task[None] | None = None

    # ---- provider hooks -------------------------------------------------------------------
    def canonical(self, code: str) -> str:
        """Market code for a symbol given in the provider's own spelling (``--symbols``)."""
        return code

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def codes_of(self, conn: Connection) -> Iterable[str]:
        """Canonical market codes this connection wants data for."""
        raise NotImplementedError

    async def push(self, conn: Connection, trades: list[Trade], cache: dict[Any, Any]) -> None:
        """Send this tick's data to one connection; ``cache`` is shared by all connections of the tick."""
        raise NotImplementedError

    def garbage_frame(self) -> str | bytes:
        raise NotImplementedError

    def addresses(self) -> dict[str, str]:
        """Environment-style name -> address a client should use."""
        raise NotImplementedError

    async def on_fault(self, kind: str, seconds: float) -> None:
        """Provider reaction beyond the common one (default: none)."""

    # ---- addresses ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """Host to advertise: a wildcard bind is reached through loopback locally."""
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    # ---- lifecycle ------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/_control/fault", self._control_fault)
        app.router.add_get("/_control/stats", self._control_stats)
        self.add_routes(app)
        return app

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.build_app(), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._pump_task = asyncio.create_task(self._pump(), name=f"{self.provider}-pump")
        log.info("%s simulator listening on %s", self.provider, self.base_url)

    async def stop(self) -> None:
        if self._pump_task:
            self._pump_task.cancel()
            try:
                await self._pump_task
            except asyncio.CancelledError:
                pass
        for conn in list(self.connections.values()):
            await conn.shutdown()
        if self._runner:
            await self._runner.cleanup()
        self.recorder.close()

    # ---- connections ----------------------------------------------------------------------
    def new_id(self) -> str:
        return f"{self.provider}-{next(self._ids)}"

    def register(self, conn: C) -> C:
        conn.recorder = self.recorder
        conn.faults = self.faults
        self.connections[conn.id] = conn
        self.connects += 1
        return conn

    def forget(self, conn: Connection) -> None:
        conn.closed = True
        self.connections.pop(conn.id, None)

    async def prepare_ws(self, request: web.Request, conn_id: str) -> web.WebSocketResponse:
        """Upgrade; the ``X-Sim-Connection`` response header names the connection in the recording."""
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=1 << 20)
        ws.headers["X-Sim-Connection"] = conn_id
        await ws.prepare(request)
        return ws

    def refused(self) -> web.Response | None:
        """Common gate for new connections: a ``drop`` with seconds refuses them for a while."""
        if self.faults.active("refuse"):
            return web.json_response({"message": "service unavailable"}, status=503)
        return None

    def key_ok(self, key: str | None) -> bool:
        if self.faults.active("reject_auth") or not key:
            return False
        return self.config.api_key is None or key == self.config.api_key

    # ---- faults ---------------------------------------------------------------------------
    async def apply_fault(self, kind: str, seconds: float = 0.0, symbol: str = "") -> None:
        self.faults.set(kind, seconds, self.canonical(symbol) if symbol else "")
        if kind in ("drop", "restart"):
            for conn in list(self.connections.values()):
                await conn.drop()
                self.forget(conn)
        await self.on_fault(kind, seconds)
        log.info("%s fault %s%s (%ss)", self.provider, kind, f" {symbol}" if symbol else "", seconds)

    def fault(self, kind: str, seconds: float = 0.0, symbol: str = "") -> None:
        """Thread-safe fault switch for tests driving a simulator that runs in another thread."""
        if self.loop is None:
            raise RuntimeError("simulator not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("inside the simulator's loop use `await sim.apply_fault(...)`")
        asyncio.run_coroutine_threadsafe(self.apply_fault(kind, seconds, symbol), self.loop).result(10)

    async def astats(self) -> dict[str, Any]:
        """``stats()`` taken on the simulator's own loop (safe while it is serving)."""
        return self.stats()

    def stats(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "open_connections": sum(1 for c in self.connections.values() if not c.closed),
            "connects": self.connects,
            "totals": dict(self.recorder.totals),
            "per_connection": {k: dict(v) for k, v in self.recorder.per_conn.items()},
        }

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            kind, seconds = str(body["kind"]), float(body.get("seconds", 0) or 0)
            symbol = str(body.get("symbol") or "")
            if kind not in FAULT_KINDS or (kind == "mute") != bool(symbol):
                raise ValueError(kind)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": f"expected {{kind: {'|'.join(FAULT_KINDS)}, seconds"
                                                            f"[, symbol (mute only)]}}"}, status=400)
        await self.apply_fault(kind, seconds, symbol)
        return web.json_response({"ok": True, "kind": kind, "seconds": seconds, "symbol": symbol})

    async def _control_stats(self, request: web.Request) -> web.Response:
        self.recorder.flush()
        return web.json_response(self.stats())

    # ---- the market pump ------------------------------------------------------------------
    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.ticks_per_second
        last = next_at = loop.time()
        carry = 0.0
        while True:
            next_at += period
            delay = next_at - loop.time()
            if delay < -1.0:  # far behind (debugger, overloaded box): don't try to catch up
                next_at = loop.time()
            await asyncio.sleep(max(0.0, delay))
            now = loop.time()
            carry += self.config.rate * (now - last)
            last = now
            n = int(carry)
            carry -= n
            try:
                await self._tick(n)
            except Exception:  # a simulator bug must not silently stop the feed
                log.exception("%s pump tick failed", self.provider)
            self.recorder.flush()  # the JSONL file trails the sockets by at most one tick

    async def _tick(self, n: int) -> None:
        conns = [c for c in self.connections.values() if c.ready]
        if not conns or self.faults.active("stall"):
            return
        if self.faults.take_garbage():
            for conn in conns:
                await conn.send(self.garbage_frame(), "garbage", [{"kind": "garbage"}])
        wanted: set[str] = set()
        for conn in conns:
            wanted.update(self.codes_of(conn))
        trades = self.market.trades(sorted(wanted), n)
        muted = self.faults.muted()
        if muted:
            trades = [t for t in trades if t.code not in muted]
        if not trades:
            return
        cache: dict[Any, Any] = {}
        for conn in conns:
            await self.push(conn, trades, cache)


def group_by_code(trades: list[Trade]) -> dict[str, list[Trade]]:
    out: dict[str, list[Trade]] = {}
    for t in trades:
        out.setdefault(t.code, []).append(t)
    return out
