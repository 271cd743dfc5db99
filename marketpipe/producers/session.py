"""One connection handler for every provider (a feed class per provider supplies the differences).

The loop, per session: ``feed.prepare()`` (server allocation / Engine.IO handshake: fresh every
time) → websocket connect → ``feed.on_open()`` (subscribe) → receive frames, handing each one,
unmodified, to the sink with connection id, sequence, session and receive time → heartbeats on a
timer → a stalled session is closed and replaced.

Stalls know market hours (``feed.calendar()``, see marketpipe/market/markethours.py): while the market
is open, ``stall_seconds`` without any frame or pong means the feed is stuck; the stall clock
starts again at every open, so the silence of a lunch break, a night or a weekend never counts.
While the market is closed a session is replaced only when the feed's heartbeat is answered
(websocket pong, Engine.IO ``3``) and no answer came for the stall period: the connection is
dead. Feeds whose heartbeat is not answered (Infoway) are left alone until the market opens.

Lifecycle on ``md.status`` (``sink.status``, FeedStatus records): ``connected`` when a websocket is
up, ``disconnected`` with the cause when it ends, and at the first frame of a later session
``reconnected`` with the time without data (``gap_start``: receive time of the previous session's
last frame, ``gap_end``: this frame's — the same window the processors see in the raw headers).
Then the feed may fill the gap (:meth:`Feed.fill_gap`, e.g. Infoway's REST klines): its answers
are emitted as frames of this connection, and a ``filled`` record names the gap.

Liveness per subscription (:mod:`marketpipe.producers.liveness`): the codes each data frame carries
(:meth:`Feed.codes_in`) keep their own clocks; a code silent past its limit while the market is
open is re-subscribed (:meth:`Feed.resubscribe`, ``resubscribed`` on md.status), and still silent
one limit later the session ends as a stalled one would (``recycled``, then the reconnect path).

Reconnects use capped exponential backoff with full jitter (sleep = uniform(0, min(cap, base·2ⁿ)));
n resets after a session that stayed up ``healthy_seconds``. A rate-limit answer waits at least
``rate_limit_seconds``. An authentication failure ends the loop (the CLI exits non-zero): retrying
a wrong token only hammers the provider. So does an HTTP answer at the websocket upgrade that the
provider documents as final (:meth:`Feed.upgrade_refused`, e.g. Infoway's 404).
"""

from __future__ import annotations

import logging
import random
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import websocket

from marketpipe.market import markethours
from marketpipe.producers import metrics as m
from marketpipe.producers.liveness import Action, LivenessWatch
from marketpipe.rawframe import H_LINE, RawMeta

log = logging.getLogger(__name__)

OPCODES = {websocket.ABNF.OPCODE_BINARY: "binary", websocket.ABNF.OPCODE_TEXT: "text"}


class Stopped(Exception):
    """The provider refused for a reason retrying cannot fix; the message names the cause and the fix."""


class AuthFailed(Stopped):
    """Credentials refused: do not retry."""


class RateLimited(Exception):
    """The provider asks us to slow down."""


class Retry(Exception):
    """A transient failure: reconnect after backoff."""


#: (frame bytes, opcode "binary"|"text", kind "data"|"control"[, extra headers of this frame only])
Emit = Callable[..., None]


class MarketCalendar(Protocol):
    def is_open_at(self, epoch_seconds: float) -> bool: ...


class Feed:
    """What differs between providers. Subclasses override what they need."""

    provider = ""
    heartbeat_seconds: float | None = None
    #: delay of the first heartbeat after :meth:`on_open` (None: ``heartbeat_seconds``)
    first_heartbeat_seconds: float | None = None
    #: True when the server answers :meth:`heartbeat` (a pong): silence then means a dead socket
    heartbeat_answered = True

    def calendar(self) -> MarketCalendar:
        """When the subscribed market trades (decides whether silence is a stall)."""
        return markethours.CRYPTO

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Extra raw-frame headers, constant per connection."""
        return ()

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

    def upgrade_refused(self, status: int) -> Exception | None:
        """What an HTTP ``status`` answering the websocket upgrade means for this provider (Stopped,
        AuthFailed, RateLimited or Retry), or None for the common reading: 401/403 stop (credentials),
        429 backs off, anything else is retried."""
        return None

    def fill_gap(self, emit: Emit, gap_start_ms: int, gap_end_ms: int) -> bool:
        """After a reconnect: fetch what the gap missed and emit it; True when the gap is filled.
        Default: the provider offers no history (the gap is reported, not filled)."""
        return False

    # ---- liveness per subscription (marketpipe/producers/liveness.py) ----------------------
    def watched_codes(self) -> tuple[str, ...]:
        """The subscribed codes whose silence the session watches. Default none: a feed whose
        frames do not name their codes cheaply (Jin10's wall) is watched as one connection."""
        return ()

    def codes_in(self, data: bytes, opcode: str) -> set[str]:
        """The watched codes one data frame carries (spelled as in :meth:`watched_codes`)."""
        return set()

    def resubscribe(self, ws: websocket.WebSocket, codes: list[str]) -> None:
        """Subscribe ``codes`` again on the open socket (some of :meth:`watched_codes`)."""
        raise NotImplementedError


@dataclass
class StallWatch:
    """Decides, from the monotonic and the wall clock, whether a quiet session is stalled."""

    stall_seconds: float
    calendar: MarketCalendar
    heartbeat_answered: bool
    dead_seconds: float
    last_life: float = 0.0
    was_open: bool = False
    checked_at: float = float("-inf")

    def life(self, now: float) -> None:
        self.last_life = now

    def verdict(self, now: float, wall: float) -> str | None:
        if now - self.checked_at >= 1.0:  # the calendar is asked once a second, not once per frame
            self.checked_at = now
            is_open = self.calendar.is_open_at(wall)
        else:
            is_open = self.was_open
        if is_open and not self.was_open:
            self.last_life = max(self.last_life, now)  # the silence before the open does not count
        self.was_open = is_open
        idle = now - self.last_life
        if is_open and idle > self.stall_seconds:
            return f"no frame for {self.stall_seconds:.0f} s while the market is open (stalled)"
        if not is_open and self.heartbeat_answered and idle > self.dead_seconds:
            return f"no frame or pong for {self.dead_seconds:.0f} s (connection dead)"
        return None


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
                 connect_timeout: float = 10.0, close_drain_seconds: float = 2.0, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None, calendar: MarketCalendar | None = None,
                 subscription_silence: float = 0.0, line: str = "") -> None:
        self.feed = feed
        # the feed's market calendar unless told otherwise (a simulator trades around the clock)
        self.calendar = calendar if calendar is not None else feed.calendar()
        self.sink = sink
        self.connection_id = connection_id
        self.stall_seconds = stall_seconds
        self.healthy_seconds = healthy_seconds
        self.rate_limit_seconds = rate_limit_seconds
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.close_drain_seconds = close_drain_seconds
        self.rng = random.Random(seed)
        self.seq = 0
        self.session = 0
        self.last_recv_ns = 0  # receive time of the latest frame, any session
        self.awaiting_first = False  # True from a session's start until its first frame
        self.stopping = False
        self.ws: websocket.WebSocket | None = None
        self.clock = clock
        self.wallclock = wallclock
        # a line (A/B capture) is one more constant header; without one the headers are as they were
        self.extra_headers = feed.headers() + ((H_LINE, line),) if line else feed.headers()
        self._sleep_fn = sleep  # tests: a fake clock's sleep
        # per-subscription liveness (0 s or a feed that names no codes: off); kept across sessions,
        # so what it learned about each code's usual interval survives a reconnect
        codes = feed.watched_codes() if subscription_silence > 0 else ()
        self.liveness = LivenessWatch(codes, self.calendar, subscription_silence) if codes else None

    def stop(self) -> None:
        """Ask the loop to end; safe from a signal handler (the loop notices within 0.5 s).

        The socket is closed by the loop itself: closing it here could deadlock on the
        websocket's lock held by the very recv this handler interrupted.
        """
        self.stopping = True

    # ---- frames -----------------------------------------------------------------------------
    def emit(self, data: bytes, opcode: str, kind: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.seq += 1
        recv_ns = time.time_ns()
        meta = RawMeta(self.feed.provider, self.connection_id, self.seq, self.session, recv_ns, opcode, kind,
                       self.extra_headers + extra)
        self.sink.send(data, meta)
        m.FRAMES.labels(self.feed.provider, kind).inc()
        m.BYTES.labels(self.feed.provider).inc(len(data))
        previous, self.last_recv_ns = self.last_recv_ns, recv_ns
        if self.awaiting_first:
            self.awaiting_first = False
            if previous:
                self._after_gap(previous // 1_000_000, recv_ns // 1_000_000)

    def _after_gap(self, start_ms: int, end_ms: int) -> None:
        gap = {"gap_start": start_ms, "gap_end": end_ms, "silent_ms": end_ms - start_ms}
        self._status("reconnected", reason=f"session {self.session - 1} -> {self.session}", **gap)
        try:
            filled = self.feed.fill_gap(self.emit, start_ms, end_ms)
        except Exception as exc:  # noqa: BLE001 - a failed backfill leaves the gap reported, never the feed down
            log.warning("%s: filling the gap of %d ms failed: %s", self.feed.describe(), end_ms - start_ms, exc)
            filled = False
        if filled:
            self._status("filled", reason="backfilled", **gap)

    def _status(self, kind: str, **fields: Any) -> None:
        """A lifecycle FeedStatus record to md.status (when the sink writes them)."""
        write = getattr(self.sink, "status", None)
        if write is None:
            return
        write({"provider": self.feed.provider, "kind": kind, "event_time": int(self.wallclock() * 1000),
               "connection": self.connection_id, "session": self.session, **fields})

    # ---- loop -------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until :meth:`stop`; raises Stopped (AuthFailed) when retrying cannot help."""
        provider = self.feed.provider
        while not self.stopping:
            started = self.clock()
            reason = "closed"
            try:
                self.session += 1
                self.awaiting_first = True
                self._one_session()
                reason = "closed by peer"
            except AuthFailed:
                m.ERRORS.labels(provider, "auth").inc()
                raise
            except Stopped:
                m.ERRORS.labels(provider, "refused").inc()
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
                if self.ws is not None:
                    self._status("disconnected", reason="stopped" if self.stopping else reason)
                self.ws = None
            if self.stopping:
                break
            if self.clock() - started >= self.healthy_seconds:
                self.backoff.reset()
            delay = self.backoff.next(self.rng)
            log.warning("%s: session %d ended (%s); reconnecting in %.2f s", self.feed.describe(), self.session,
                        reason, delay)
            m.RECONNECTS.labels(provider, "disconnect").inc()
            self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _one_session(self) -> None:
        url, headers = self.feed.prepare(self.emit)
        try:
            ws = websocket.create_connection(url, header=headers, timeout=self.connect_timeout,
                                             enable_multithread=True)
        except websocket.WebSocketBadStatusException as exc:
            refusal = self.feed.upgrade_refused(exc.status_code)
            if refusal is not None:
                raise refusal from None
            if exc.status_code in (401, 403):
                raise AuthFailed(f"websocket upgrade refused with HTTP {exc.status_code}") from None
            if exc.status_code == 429:
                raise RateLimited("HTTP 429 at websocket upgrade") from None
            raise Retry(f"websocket upgrade answered HTTP {exc.status_code}") from None
        self.ws = ws
        if self.stopping:
            self._close(ws)
            return
        m.CONNECTED.labels(self.feed.provider).set(1)
        log.info("%s: session %d connected", self.feed.describe(), self.session)
        self._status("connected", reason=self.feed.describe())
        self.feed.on_open(ws, self.emit)
        if self.liveness is not None:
            self.liveness.start(self.clock())
        ws.settimeout(0.5)
        try:
            self._receive(ws)
        finally:
            self._close(ws)

    def _close(self, ws: websocket.WebSocket) -> None:
        """End the session from our side without losing what is already on its way: send a close
        frame, then keep every frame the provider wrote before it saw ours, up to its close (the
        library's ``close()`` reads and discards them). After the peer's close, only the socket
        is left to release."""
        try:
            if ws.connected:
                ws.send_close()
                deadline = time.monotonic() + self.close_drain_seconds
                while (left := deadline - time.monotonic()) > 0:
                    ws.settimeout(left)
                    frame = ws.recv_frame()
                    if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                        break
                    if frame.opcode not in (*OPCODES, websocket.ABNF.OPCODE_CONT):
                        continue  # ping/pong: nothing to keep, and no pong after our close
                    ws.cont_frame.validate(frame)
                    ws.cont_frame.add(frame)
                    if ws.cont_frame.is_fire(frame):
                        opcode_num, whole = ws.cont_frame.extract(frame)
                        self._take(whole.data, OPCODES[opcode_num], closing=True)
        except (websocket.WebSocketException, OSError, socket.timeout, ValueError):
            pass  # a dead or silent peer: whatever arrived was kept
        finally:
            ws.shutdown()

    def _watch(self) -> StallWatch:
        beat = self.feed.heartbeat_seconds or 0.0
        watch = StallWatch(self.stall_seconds, self.calendar, self.feed.heartbeat_answered,
                           dead_seconds=max(self.stall_seconds, 2.5 * beat))
        watch.life(self.clock())
        return watch

    def _receive(self, ws: websocket.WebSocket) -> None:
        watch = self._watch()
        beat = self.feed.heartbeat_seconds
        next_beat = self.clock() + (self.feed.first_heartbeat_seconds or beat or 0.0)
        while not self.stopping:
            now = self.clock()
            if beat and now >= next_beat:
                self.feed.heartbeat(ws)
                next_beat = now + beat
            stalled = watch.verdict(now, self.wallclock())
            if stalled:
                raise Retry(stalled)
            if self.liveness is not None:
                self._act_on_silence(ws, now)
            try:
                opcode_num, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                return
            if opcode_num == websocket.ABNF.OPCODE_CLOSE:
                return
            if opcode_num in (websocket.ABNF.OPCODE_PONG, websocket.ABNF.OPCODE_PING):
                watch.life(self.clock())  # an answered heartbeat: the connection lives
                continue
            opcode = OPCODES.get(opcode_num)
            if opcode is None:
                continue
            watch.life(self.clock())
            self._take(data, opcode)

    def _act_on_silence(self, ws: websocket.WebSocket, now: float) -> None:
        """Re-subscribe the codes the liveness watch names, or recycle the connection (Retry: the
        reconnect path); each action goes to md.status first, with the code and its silence."""
        assert self.liveness is not None
        verdicts = self.liveness.due(now, self.wallclock())
        for v in verdicts:
            log.warning("%s: %s", self.feed.describe(), v.reason())
            m.LIVENESS_ACTIONS.labels(self.feed.provider, v.action.value).inc()
            self._status(v.action.value, symbol=v.code, silent_ms=int(v.silent_seconds * 1000), reason=v.reason())
        if any(v.action is Action.RECYCLE for v in verdicts):
            raise Retry(next(v.reason() for v in verdicts if v.action is Action.RECYCLE))
        if verdicts:
            self.feed.resubscribe(ws, [v.code for v in verdicts])

    def _take(self, data: bytes, opcode: str, closing: bool = False) -> None:
        """Hand one data frame to the sink; a provider error frame is kept too, then acted on
        (unless the session is already closing)."""
        try:
            kind = self.feed.classify(data, opcode)
        except (Stopped, RateLimited, Retry):
            self.emit(data, opcode, "control")
            if not closing:
                raise
            return
        self.emit(data, opcode, kind)
        if self.liveness is not None and kind == "data":
            now = self.clock()
            for code in self.feed.codes_in(data, opcode):
                self.liveness.seen(code, now)
