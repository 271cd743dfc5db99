"""Infoway JSON websocket: trades (10000), depth (10003) and klines (10006) subscriptions, the
10010 heartbeat every 30 s, and the 60-client-frames-per-minute budget.

Subscribe requests are paced like the provider's sample client (one request, wait,
the next); every error code is handled as :data:`marketpipe.providers.infoway.protocol.ERRORS` says (stop
with the cause and the fix, back off, or reconnect), so a refusal never leaves a connection open
with nothing subscribed, and a 501 is waited out instead of answered with a new burst.

Pushes 10002/10005/10008 are data; acks, the welcome, the plain-text greeting, heartbeat replies
and error frames are control. Every frame carries the header ``kline_types``: the kline type
numbers this connection subscribed (the kline push may not say its interval).

After a reconnect the klines of the gap are fetched from the REST ``batch_kline`` endpoint (seed
003) and each answer is pushed, unmodified, onto the raw topic as a frame of this connection
with the header ``backfill`` = the request path: the raw topic keeps everything, a replay sees
the same, and the decoder turns it into Kline records marked ``backfilled``.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import uuid
from collections import deque
from typing import Callable, Iterable

import websocket

from marketpipe.kafka.quietlog import warn_plaintext
from marketpipe.market import markethours
from marketpipe.producers.http import request as http_request
from marketpipe.producers.session import AuthFailed, Emit, Feed, MarketCalendar, RateLimited, Retry, Stopped
from marketpipe.providers import FeedOptions
from marketpipe.providers.infoway import protocol as proto
from marketpipe.rawframe import H_BACKFILL, H_KLINE_TYPES
from marketpipe.settings import Settings

KLINE_TYPES = proto.KLINE_TYPES
#: the STOP codes that mean the API key was refused
AUTH_CODES = frozenset({401, 508, 509, 510, 517, 518})

log = logging.getLogger(__name__)


def calendar_for(business: str, codes: Iterable[str]) -> MarketCalendar:
    """crypto trades all week; common (FX, metals, indices) on weekdays; stock by code suffix."""
    if business == "crypto":
        return markethours.CRYPTO
    if business == "stock":
        suffixes = {c.rpartition(".")[2] for c in codes if "." in c} or {"SH"}
        return markethours.AnyOf(markethours.for_symbol_suffix(s) for s in sorted(suffixes))
    return markethours.FOREX  # common, and the regional stock channels: weekday hours at the widest


class InfowayFeed(Feed):
    provider = "infoway"
    heartbeat_seconds = proto.HEARTBEAT_SECONDS
    heartbeat_answered = False  # production sends no 10011 (protocols.md §2.3)

    def __init__(self, ws_url: str, api_key: str, business: str, codes: Iterable[str],
                 channels: Iterable[str] = ("trade", "depth", "kline"), kline: str | Iterable[str] = "1m", *,
                 pace_seconds: float = proto.SUBSCRIBE_INTERVAL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 fetch: Callable[..., tuple[int, bytes]] = http_request) -> None:
        self.ws_url = ws_url
        self._key = api_key
        self.business = business
        self.codes = [c.strip() for c in codes if c.strip()]
        self.channels = list(channels)
        klines = [kline] if isinstance(kline, str) else list(kline)
        self.kline_types = [KLINE_TYPES[k] for k in klines]
        self.pace_seconds = pace_seconds
        self._sleep = sleep
        self._clock = clock
        self._fetch = fetch
        self.sent: deque[float] = deque()
        self._last_subscribe: float | None = None

    def describe(self) -> str:
        return f"infoway {self.ws_url} ({self.business})"

    def calendar(self) -> MarketCalendar:
        return calendar_for(self.business, self.codes)

    def headers(self) -> tuple[tuple[str, str], ...]:
        if "kline" not in self.channels:
            return ()
        return ((H_KLINE_TYPES, ",".join(str(t) for t in self.kline_types)),)

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        query = urllib.parse.urlencode({"business": self.business, "apikey": self._key})
        warn_plaintext(self.ws_url, "Infoway API key")
        return f"{self.ws_url}?{query}", []

    def _send(self, ws: websocket.WebSocket, frame: dict) -> None:
        """Send within the provider's budget of 60 frames per minute (heartbeats count too)."""
        now = self._clock()
        while self.sent and self.sent[0] < now - 60:
            self.sent.popleft()
        if len(self.sent) >= proto.FRAMES_PER_MINUTE - 2:  # keep a margin of two frames
            self._sleep(max(0.0, 60 - (now - self.sent[0])))
        ws.send(json.dumps(frame, separators=(",", ":")))
        self.sent.append(self._clock())

    def requests(self) -> list[dict]:
        codes = ",".join(self.codes)  # one frame per type: the frame budget is tiny
        by_channel = {"trade": {"code": proto.SUBSCRIBE_TRADE, "data": {"codes": codes}},
                      "depth": {"code": proto.SUBSCRIBE_DEPTH, "data": {"codes": codes}},
                      "kline": {"code": proto.SUBSCRIBE_KLINE,
                                "data": {"arr": [{"type": t, "codes": codes} for t in self.kline_types]}}}
        return [{**by_channel[c], "trace": uuid.uuid4().hex} for c in self.channels]

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        for request in self.requests():
            self._subscribe(ws, request)

    def _subscribe(self, ws: websocket.WebSocket, request: dict) -> None:
        """One subscribe request, ``pace_seconds`` after the previous one (also across a reconnect
        and a re-subscribe: the server counts per key) and within the frame budget."""
        if self._last_subscribe is not None:
            wait = self.pace_seconds - (self._clock() - self._last_subscribe)
            if wait > 0:
                self._sleep(wait)
        self._send(ws, request)
        self._last_subscribe = self._clock()

    def watched_codes(self) -> tuple[str, ...]:
        return tuple(self.codes)

    def codes_in(self, data: bytes, opcode: str) -> set[str]:
        return proto.push_codes(data) if proto.is_push(data) else set()

    def resubscribe(self, ws: websocket.WebSocket, codes: list[str]) -> None:
        """The connection's subscribe requests again, each for every code: whether the server
        adds a request's codes to the set or replaces the set with them is not documented, and a
        request naming all codes is right either way. Paced like the first ones, so a re-subscribe
        costs one frame per channel of the 60-a-minute budget and at most ``pace_seconds`` per
        channel of waiting."""
        for request in self.requests():
            self._subscribe(ws, request)

    def heartbeat(self, ws: websocket.WebSocket) -> None:
        self._send(ws, {"code": proto.HEARTBEAT, "trace": uuid.uuid4().hex})

    def fill_gap(self, emit: Emit, gap_start_ms: int, gap_end_ms: int) -> bool:
        """Fetch the klines of the gap (REST batch_kline) and emit every answer as a backfill frame;
        True when every answer was a good one."""
        if "kline" not in self.channels:
            return False
        base, ok = proto.rest_base(self.ws_url), True
        for ktype in self.kline_types:
            if ktype not in proto.KLINE_TYPE_SECONDS:
                continue
            for path in proto.kline_requests(self.business, ktype, self.codes, gap_start_ms, gap_end_ms):
                status, body = self._fetch(base + path, headers={proto.REST_KEY_HEADER: self._key})
                try:
                    if status != 200:
                        raise ValueError(f"HTTP {status}")
                    proto.rest_rows(body)
                except ValueError as exc:
                    ok = False  # the gap stays reported; what did come is not kept as data
                    log.warning("infoway backfill %s: %s", path, exc)
                    continue
                emit(body, "text", "data", ((H_BACKFILL, path),))
        return ok

    def classify(self, data: bytes, opcode: str) -> str:
        error = proto.error_of(data)
        if error is None:
            return "data" if proto.is_push(data) else "control"
        raise refusal(error.code, error.rule.action, error.message())

    def upgrade_refused(self, status: int) -> Exception | None:
        """An HTTP status at the upgrade is read in the same error table as error frames (seed 002
        lists 401, 404, 429, 499, 524 among its codes): 404 "API接口不存在" stops with the fix."""
        rule = proto.ERRORS.get(status)
        if rule is None:
            return None
        return refusal(status, rule.action, rule.message(status, f"HTTP {status} answering the websocket upgrade"))


def refusal(code: int | None, action: proto.Action, message: str) -> Exception:
    """The session exception for an error code's action in :data:`marketpipe.providers.infoway.protocol.ERRORS`."""
    if action is proto.Action.STOP:
        return AuthFailed(message) if code in AUTH_CODES else Stopped(message)
    if action is proto.Action.BACK_OFF:
        return RateLimited(message)
    return Retry(message)


def build_feed(settings: Settings, options: FeedOptions) -> InfowayFeed:
    """The feed ``marketpipe produce infoway`` runs (registry entry in :mod:`marketpipe.providers`)."""
    p = settings.providers
    if not p.infoway_api_key:
        raise SystemExit("marketpipe produce infoway: INFOWAY_API_KEY is not set")
    return InfowayFeed(options.url or p.infoway_ws_url, p.infoway_api_key.reveal(), p.infoway_business, options.codes,
                       pace_seconds=p.infoway_subscribe_interval)
