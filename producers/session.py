"""One connection handler for every provider (a feed class per provider supplies the differences).

The loop, per session: ``feed.prepare()`` (server allocation / Engine.IO handshake: fresh every
time) → websocket connect → ``feed.on_open()`` (subscribe) → receive frames, handing each one,
unmodified, to the sink with connection id, sequence, session and receive time → heartbeats on a
timer → a session without any frame for ``stall_seconds`` is closed and replaced.

Reconnects use capped exponential backoff with full jitter (sleep = uniform(0, min(cap, base·2ⁿ)));
n resets after a session that stayed up ``healthy_seconds``. A rate-limit answer waits at least
``rate_limit_seconds``. An authentication failure ends the loop (the CLI exits non-zero): retrying
a wrong token only hammers the provider.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import websocket

from marketpipe.rawframe import RawMeta
from producers import metrics as m

log = logging.getLogger(__name__)

OPCODES = {websocket.ABNF.OPCODE_BINARY: "binary", websocket.ABNF.OPCODE_TEXT: "text"}


class AuthFailed(Exception):
    """Credentials refused: do not retry."""


class RateLimited(Exception):
    """The provider asks us to slow down."""


class Retry(Exception):
    """A transient failure: reconnect after backoff."""


Emit = Callable[[bytes, str, str], None]  # (frame bytes, opcode "binary"|"text", kind "data"|"control")


class Feed:
    """What differs between providers. Subclasses override what they need."""

    provider = ""
    heartbeat_seconds: float | None = None

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        """Everything before the websocket: returns (url, extra headers)."""
        raise NotImplementedError

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        """Subscribe (and any upgrade handshake)."""

    def heartbeat(self, ws: websocket.WebSocket) -> None:
        ws.ping()

    def classify(self, data: bytes, opcode: str) -> str:
        """'data' or 'control'; may raise AuthFailed / RateLimited / Retry for error frames."""
        return "data" if opcode == "binary" else "control"

    def describe(self) -> str:
        return self.provider


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next(self, rng: random.Random) -> float:
        delay = rng.uniform(0, min(self.cap, self.base * (2 ** self.attempt)))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Session:
    def __init__(self, feed: Feed, sink: Any, connection_id: str, *, stall_seconds: float = 30.0,
                 healthy_seconds: float = 30.0, rate_limit_seconds: float = 60.0, backoff: Backoff | None = None,
                 connect_timeout: float = 10.0, seed: int | None = None) -> None:
        self.feed = feed
        self.sink = sink
        self.connection_id = connection_id
        self.stall_seconds = stall_seconds
        self.healthy_seconds = healthy_seconds
        self.rate_limit_seconds = rate_limit_seconds
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.rng = random.Random(seed)
        self.seq = 0
        self.session = 0
        self.stopping = False
        self.ws: websocket.WebSocket | None = None

    def stop(self) -> None:
        """Ask the loop to end; safe from a signal handler (the loop notices within 0.5 s).

        The socket is closed by the loop itself: closing it here could deadlock on the
        websocket's lock held by the very recv this handler interrupted.
        """
        self.stopping = True

    # ---- frames -----------------------------------------------------------------------------
    def emit(self, data: bytes, opcode: str, kind: str) -> None:
        self.seq += 1
        meta = RawMeta(self.feed.provider, self.connection_id, self.seq, self.session, time.time_ns(), opcode, kind)
        self.sink.send(data, meta)
        m.FRAMES.labels(self.feed.provider, kind).inc()
        m.BYTES.labels(self.feed.provider).inc(len(data))

    # ---- loop -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until :meth:`stop`; raises AuthFailed when credentials are refused."""
        provider = self.feed.provider
        while not self.stopping:
            started = time.monotonic()
            reason = "closed"
            try:
                self.session += 1
                self._one_session()
                reason = "closed by peer"
            except AuthFailed:
                m.ERRORS.labels(provider, "auth").inc()
                raise
            except RateLimited as exc:
                m.ERRORS.labels(provider, "rate_limit").inc()
                wait = max(self.rate_limit_seconds, self.backoff.next(self.rng))
                log.warning("%s: rate limited (%s); waiting %.1f s", self.feed.describe(), exc, wait)
                m.RECONNECTS.labels(provider, "rate_limit").inc()
                self._sleep(wait)
                continue
            except (Retry, websocket.WebSocketException, OSError, socket.timeout, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                m.ERRORS.labels(provider, "connection").inc()
            finally:
                m.CONNECTED.labels(provider).set(0)
                self.ws = None
            if self.stopping:
                break
            if time.monotonic() - started >= self.healthy_seconds:
                self.backoff.reset()
            delay = self.backoff.next(self.rng)
            log.warning("%s: session %d ended (%s); reconnecting in %.2f s", self.feed.describe(), self.session,
                        reason, delay)
            m.RECONNECTS.labels(provider, "disconnect").inc()
            self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _one_session(self) -> None:
        url, headers = self.feed.prepare(self.emit)
        try:
            ws = websocket.create_connection(url, header=headers, timeout=self.connect_timeout,
                                             enable_multithread=True)
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):
                raise AuthFailed(f"websocket upgrade refused with HTTP {exc.status_code}") from None
            if exc.status_code == 429:
                raise RateLimited("HTTP 429 at websocket upgrade") from None
            raise Retry(f"websocket upgrade answered HTTP {exc.status_code}") from None
        self.ws = ws
        if self.stopping:
            ws.close()
            return
        m.CONNECTED.labels(self.feed.provider).set(1)
        log.info("%s: session %d connected", self.feed.describe(), self.session)
        self.feed.on_open(ws, self.emit)
        ws.settimeout(0.5)
        try:
            self._receive(ws)
        finally:
            try:
                ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways
                pass

    def _receive(self, ws: websocket.WebSocket) -> None:
        last_frame = last_beat = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            if self.feed.heartbeat_seconds and now - last_beat >= self.feed.heartbeat_seconds:
                self.feed.heartbeat(ws)
                last_beat = now
            if now - last_frame > self.stall_seconds:
                raise Retry(f"no frame for {self.stall_seconds:.0f} s (stalled)")
            try:
                opcode_num, data = ws.recv_data(control_frame=False)
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                return
            if opcode_num == websocket.ABNF.OPCODE_CLOSE:
                return
            opcode = OPCODES.get(opcode_num)
            if opcode is None:
                continue
            last_frame = time.monotonic()
            try:
                kind = self.feed.classify(data, opcode)
            except (AuthFailed, RateLimited, Retry):
                self.emit(data, opcode, "control")  # the error frame itself is kept too
                raise
            self.emit(data, opcode, kind)
