"""Jin10 price wall over socket.io on Engine.IO v3, following the provider document's request
sequence exactly (the provider's script; see marketpipe/providers/jin10/protocol.py): GET (sid) -> GET with sid ->
POST ``setAdvSubscription`` -> two GETs -> websocket upgrade (``2probe`` ... ``5``) -> ``2`` pings
20 s after the upgrade and then every 2 s. A new sid on every connect.

Polling GETs are long polls: a real server holds them until it has data, so they wait up to
``pingInterval + pingTimeout``; if one is still held after ``pingInterval``, a ping ``2`` is
POSTed (what an Engine.IO client does while polling) so the server neither drops the session
nor leaves the poll hanging.

Every Engine.IO packet is one raw Kafka message: the polling bodies are split into packets,
websocket frames carry one packet each. ``42[...]`` events are data; everything else control.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Callable, Iterable

import websocket

from marketpipe.market import markethours
from marketpipe.producers.http import request as http_request
from marketpipe.producers.session import Emit, Feed, MarketCalendar, Retry
from marketpipe.providers import FeedOptions
from marketpipe.providers.jin10 import protocol as proto
from marketpipe.settings import Settings

Http = Callable[..., tuple[int, bytes]]  # (url, data=None, headers=None, timeout=..) -> (status, body)


class Jin10Feed(Feed):
    provider = "jin10"
    heartbeat_seconds = proto.PING_EVERY_SECONDS
    first_heartbeat_seconds: float | None = proto.FIRST_PING_AFTER_SECONDS

    def __init__(self, base_url: str, codes: Iterable[str], *, http: Http = http_request,
                 probe_timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.codes = [c.strip() for c in codes if c.strip()]
        self.sid = ""
        self.http = http
        self.probe_timeout = probe_timeout
        self.ping_interval = proto.PING_INTERVAL_MS / 1000
        self.ping_timeout = proto.PING_TIMEOUT_MS / 1000

    def describe(self) -> str:
        return f"jin10 {self.base_url} sid={self.sid or '-'}"

    def calendar(self) -> MarketCalendar:
        # FX, metals, oil and world indices: the widest weekday window covers every code of the wall
        return markethours.FOREX

    def _url(self, transport: str, sid: str = "") -> str:
        q = {"EIO": "3", "transport": transport, "t": proto.yeast(int(time.time() * 1000))}
        if sid:
            q["sid"] = sid
        return f"{self.base_url}{proto.PATH}?{urllib.parse.urlencode(q)}"

    @staticmethod
    def kind(packet: str) -> str:
        return "data" if proto.is_data(packet) else "control"

    def _packets(self, status: int, body: bytes, emit: Emit, what: str) -> list[str]:
        if status != 200:
            raise Retry(f"Engine.IO {what} answered HTTP {status}: {body[:100]!r}")
        try:
            packets = proto.decode_payload(body.decode("utf-8"))
        except (proto.PayloadError, UnicodeDecodeError) as exc:
            raise Retry(f"Engine.IO {what}: {exc}") from None
        for packet in packets:
            emit(packet.encode("utf-8"), "text", self.kind(packet))
        if proto.CLOSE in packets:
            raise Retry(f"Engine.IO server closed session {self.sid} during {what}")
        return packets

    def _post(self, packets: list[str], timeout: float = 10.0) -> tuple[int, bytes]:
        return self.http(self._url("polling", self.sid), data=proto.encode_payload(packets).encode("utf-8"),
                         headers={**proto.BROWSER_HEADERS, "Content-Type": proto.POST_CONTENT_TYPE}, timeout=timeout)

    def _long_poll(self, emit: Emit) -> list[str]:
        """One GET with sid; pings over POST while the server holds it (quiet market)."""
        done = threading.Event()

        def keep_alive() -> None:
            while not done.wait(self.ping_interval):
                try:
                    self._post([proto.PING])
                except Exception:  # the GET itself reports a dead session
                    return

        pinger = threading.Thread(target=keep_alive, name="jin10-poll-ping", daemon=True)
        pinger.start()
        try:
            status, body = self.http(self._url("polling", self.sid), headers=proto.BROWSER_HEADERS,
                                     timeout=self.ping_interval + self.ping_timeout + 5)
        finally:
            done.set()
        return self._packets(status, body, emit, "poll")

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        self.sid = ""
        status, body = self.http(self._url("polling"), headers=proto.BROWSER_HEADERS, timeout=10.0)
        opened = next(filter(None, map(proto.parse_open, self._packets(status, body, emit, "handshake"))), None)
        if opened is None:
            raise Retry("Engine.IO handshake without an open packet")
        self.sid = opened.sid
        self.ping_interval = max(0.05, opened.ping_interval_ms / 1000)
        self.ping_timeout = max(0.05, opened.ping_timeout_ms / 1000)
        self._long_poll(emit)  # the queued "40" connect
        status, body = self._post([proto.subscribe_packet(self.codes)])
        if status != 200 or body.strip() != b"ok":
            raise Retry(f"setAdvSubscription answered HTTP {status}: {body[:100]!r}")
        self._long_poll(emit)
        self._long_poll(emit)
        ws_base = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        q = urllib.parse.urlencode({"EIO": "3", "transport": "websocket", "sid": self.sid})
        return f"{ws_base}{proto.PATH}?{q}", [f"Origin: {proto.BROWSER_ORIGIN}"]

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        # the first ping follows 20 s after the upgrade (the document), sooner if the server wants it sooner
        self.first_heartbeat_seconds = min(proto.FIRST_PING_AFTER_SECONDS, self.ping_interval)
        ws.send(proto.PROBE)
        ws.settimeout(self.probe_timeout)
        while True:  # frames may already flow before the probe answer; keep them all
            _, data = ws.recv_data(control_frame=False)
            text = data.decode("utf-8", "replace")
            emit(data, "text", self.kind(text))
            if text == proto.PROBE_ANSWER:
                break
        ws.send(proto.UPGRADE)

    def heartbeat(self, ws: websocket.WebSocket) -> None:
        ws.send(proto.PING)

    def classify(self, data: bytes, opcode: str) -> str:
        return "data" if data.startswith(proto.EVENT_PREFIX.encode()) else "control"


def build_feed(settings: Settings, options: FeedOptions) -> Jin10Feed:
    """The feed ``marketpipe produce jin10`` runs (registry entry in :mod:`marketpipe.providers`)."""
    return Jin10Feed(options.url or settings.providers.jin10_url, options.codes)
