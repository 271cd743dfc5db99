"""jvQuant level-1/level-2 quotes: allocate a server before every connect, subscribe with text
commands, receive binary raw-DEFLATE frames (data) and text replies (control).

Tolerated readings (protocols.md §1.1-1.3): ``/query/server`` (``/server`` on 404); ``server``
with or without ``ws://``; ``code`` "0" as a string or number. An allocation refusal whose
message mentions the token is an authentication failure; others are retried with backoff.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable

import websocket

from marketpipe.quietlog import warn_plaintext
from producers.http import get_json, mask
from producers.session import AuthFailed, Emit, Feed, Retry


class JvQuantFeed(Feed):
    provider = "jvquant"
    heartbeat_seconds = 20.0  # websocket ping: no app-level heartbeat exists in this protocol

    def __init__(self, base_url: str, token: str, codes: Iterable[str], levels: Iterable[str] = ("lv1", "lv2"),
                 market: str = "ab") -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.codes = [c.strip() for c in codes if c.strip()]
        self.levels = [lv.strip() for lv in levels if lv.strip()]
        self.market = market
        self.server = ""

    def describe(self) -> str:
        return f"jvquant {self.server or self.base_url}"

    def allocate(self) -> str:
        query = urllib.parse.urlencode({"market": self.market, "type": "websocket", "token": self._token})
        warn_plaintext(self.base_url, "jvQuant token")
        status, body = get_json(f"{self.base_url}/query/server?{query}")
        if status == 404:  # older deployments only know /server
            status, body = get_json(f"{self.base_url}/server?{query}")
        if not isinstance(body, dict):
            raise Retry(f"allocation answered HTTP {status} without a JSON object")
        if str(body.get("code")) != "0" or not body.get("server"):
            message = str(body.get("msg") or body.get("message") or body)
            if "token" in message.lower():
                raise AuthFailed(f"jvQuant refused the token: {message}")
            raise Retry(f"allocation refused (code {body.get('code')}): {message}")
        server = str(body["server"])
        return server if "://" in server else f"ws://{server}"

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        self.server = self.allocate()
        sep = "&" if "?" in self.server else "?"
        warn_plaintext(self.server, "jvQuant token")
        return f"{self.server}{sep}token={urllib.parse.quote(self._token)}", []

    def subscription(self) -> str:
        return "add=" + ",".join(f"{lv}_{code}" for code in self.codes for lv in self.levels)

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        ws.send(self.subscription())

    def url_for_logs(self) -> str:
        return mask(self.server)
