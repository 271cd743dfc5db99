"""Infoway JSON websocket: trades (10000), depth (10003) and klines (10006) subscriptions, the
10010 heartbeat every 30 s, and the 60-client-frames-per-minute budget.

Frame classes (protocols.md §2.3-2.5): pushes 10002/10005/10008 are data; acks, the welcome, the
plain-text greeting, heartbeat replies and error frames are control. Error 501 (frequency) is a
rate limit; 502, 508-512, 514, 517-521 are terminal (the SDK's policy: the key is unusable); 513
(heartbeat timeout) and the rest reconnect.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections import deque
from typing import Iterable

import websocket

from marketpipe.quietlog import warn_plaintext

from producers.session import AuthFailed, Emit, Feed, RateLimited, Retry

DATA_CODES = frozenset({10002, 10005, 10008})
TERMINAL = frozenset({502, 508, 509, 510, 511, 512, 514, 517, 518, 519, 520, 521})
KLINE_TYPES = {"1m": 1, "5m": 2, "15m": 3, "30m": 4, "1h": 5, "2h": 6, "4h": 7, "1d": 8}


class InfowayFeed(Feed):
    provider = "infoway"
    heartbeat_seconds = 30.0

    def __init__(self, ws_url: str, api_key: str, business: str, codes: Iterable[str],
                 channels: Iterable[str] = ("trade", "depth", "kline"), kline: str = "1m") -> None:
        self.ws_url = ws_url
        self._key = api_key
        self.business = business
        self.codes = [c.strip() for c in codes if c.strip()]
        self.channels = list(channels)
        self.kline_type = KLINE_TYPES[kline]
        self.sent: deque[float] = deque()

    def describe(self) -> str:
        return f"infoway {self.ws_url} ({self.business})"

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        query = urllib.parse.urlencode({"business": self.business, "apikey": self._key})
        warn_plaintext(self.ws_url, "Infoway API key")
        return f"{self.ws_url}?{query}", []

    def _send(self, ws: websocket.WebSocket, frame: dict) -> None:
        """Send within the provider's budget of 60 frames per minute (heartbeats count too)."""
        now = time.monotonic()
        while self.sent and self.sent[0] < now - 60:
            self.sent.popleft()
        if len(self.sent) >= 58:  # keep a margin of two frames
            wait = 60 - (now - self.sent[0])
            time.sleep(max(0.0, wait))
        ws.send(json.dumps(frame, separators=(",", ":")))
        self.sent.append(time.monotonic())

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        codes = ",".join(self.codes)  # one frame per type: the frame budget is tiny
        requests = {"trade": {"code": 10000, "data": {"codes": codes}},
                    "depth": {"code": 10003, "data": {"codes": codes}},
                    "kline": {"code": 10006, "data": {"arr": [{"type": self.kline_type, "codes": codes}]}}}
        for channel in self.channels:
            self._send(ws, {**requests[channel], "trace": uuid.uuid4().hex})

    def heartbeat(self, ws: websocket.WebSocket) -> None:
        self._send(ws, {"code": 10010, "trace": uuid.uuid4().hex})

    def classify(self, data: bytes, opcode: str) -> str:
        if not data.startswith(b"{"):
            return "control"  # greeting / "Subscribe fail:" prose
        try:
            code = json.loads(data).get("code")
        except (ValueError, AttributeError):
            return "control"
        if code in DATA_CODES:
            return "data"
        if code == 501:
            raise RateLimited(data[:200].decode("utf-8", "replace"))
        if code in TERMINAL:
            raise AuthFailed(f"Infoway error {code}: {data[:200].decode('utf-8', 'replace')}")
        if code == 513:
            raise Retry("Infoway closed for heartbeat timeout (513)")
        return "control"
