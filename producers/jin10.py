"""Jin10 price wall over socket.io on Engine.IO v3: polling handshake (a new sid every connect),
``setAdvSubscription`` posted over polling, drain poll, websocket upgrade (2probe/3probe/5), and
the client-side ping ``2`` every pingInterval.

Every Engine.IO packet is one raw Kafka message: the polling bodies are split into packets,
websocket frames carry one packet each. ``42[...]`` events are data; everything else control.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Iterable

import websocket

from producers.engineio import PayloadError, decode_payload, encode_payload, yeast
from producers.http import request
from producers.session import Emit, Feed, Retry

BROWSER_HEADERS = {"Origin": "https://datacenter.jin10.com", "Referer": "https://datacenter.jin10.com/price_wall",
                   "Content-Type": "text/plain;charset=UTF-8"}


class Jin10Feed(Feed):
    provider = "jin10"

    def __init__(self, base_url: str, codes: Iterable[str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.codes = [c.strip() for c in codes if c.strip()]
        self.sid = ""
        self.heartbeat_seconds = 25.0

    def describe(self) -> str:
        return f"jin10 {self.base_url} sid={self.sid or '-'}"

    def _url(self, transport: str, sid: str = "") -> str:
        q = {"EIO": "3", "transport": transport, "t": yeast(int(time.time() * 1000))}
        if sid:
            q["sid"] = sid
        return f"{self.base_url}/socket.io/?{urllib.parse.urlencode(q)}"

    def _poll(self, emit: Emit, sid: str = "") -> list[str]:
        status, body = request(self._url("polling", sid), headers=BROWSER_HEADERS)
        if status != 200:
            raise Retry(f"Engine.IO poll answered HTTP {status}: {body[:100]!r}")
        try:
            packets = decode_payload(body.decode("utf-8"))
        except (PayloadError, UnicodeDecodeError) as exc:
            raise Retry(f"Engine.IO poll: {exc}") from None
        for packet in packets:
            emit(packet.encode("utf-8"), "text", self.kind(packet))
        return packets

    @staticmethod
    def kind(packet: str) -> str:
        return "data" if packet.startswith("42") else "control"

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        self.sid = ""
        packets = self._poll(emit)
        opened = next((p for p in packets if p.startswith("0{")), None)
        if opened is None:
            raise Retry("Engine.IO handshake without an open packet")
        info = json.loads(opened[1:])
        self.sid = info["sid"]
        self.heartbeat_seconds = max(1.0, float(info.get("pingInterval", 25000)) / 1000)
        event = "42" + json.dumps(["setAdvSubscription", {"list": self.codes}], ensure_ascii=False,
                                  separators=(",", ":"))
        status, body = request(self._url("polling", self.sid), data=encode_payload([event]).encode("utf-8"),
                               headers=BROWSER_HEADERS)
        if status != 200 or body.strip() != b"ok":
            raise Retry(f"setAdvSubscription answered HTTP {status}: {body[:100]!r}")
        self._poll(emit, self.sid)  # drain what queued up before the upgrade
        ws_base = self.base_url.replace("https://", "wss://").replace("http://", "ws://")
        q = urllib.parse.urlencode({"EIO": "3", "transport": "websocket", "sid": self.sid})
        return f"{ws_base}/socket.io/?{q}", [f"Origin: {BROWSER_HEADERS['Origin']}"]

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        ws.send("2probe")
        ws.settimeout(10)
        while True:  # frames may already flow before the probe answer; keep them all
            opcode, data = ws.recv_data(control_frame=False)
            text = data.decode("utf-8", "replace")
            emit(data, "text", self.kind(text))
            if text == "3probe":
                break
        ws.send("5")

    def heartbeat(self, ws: websocket.WebSocket) -> None:
        ws.send("2")

    def classify(self, data: bytes, opcode: str) -> str:
        return "data" if data.startswith(b"42") else "control"
