"""jvQuant level-1/level-2 quotes: allocate a server before every connect, subscribe with text
commands, receive binary raw-DEFLATE frames (data) and text replies (control).

Allocation and commands as in :mod:`marketpipe.providers.jvquant.protocol` (``/query/server``, ``/server``
when that is not found; ``server`` with or without ``ws://``; ``code`` "0" as a string or
number, counted only where present). An allocation refusal whose
message mentions the token is an authentication failure; others are retried with backoff.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Iterable

import websocket

from marketpipe.kafka.quietlog import warn_plaintext
from marketpipe.market import markethours
from marketpipe.producers.http import request
from marketpipe.producers.session import AuthFailed, Emit, Feed, MarketCalendar, Retry
from marketpipe.providers import FeedOptions
from marketpipe.providers.jvquant import protocol
from marketpipe.settings import Settings


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

    def calendar(self) -> MarketCalendar:
        return {"hk": markethours.HONG_KONG, "us": markethours.US}.get(self.market, markethours.A_SHARE)

    def allocate(self) -> str:
        warn_plaintext(self.base_url, "jvQuant token")
        def fetch(url: str) -> tuple[int, Any]:
            status, raw = request(url)
            try:
                return status, json.loads(raw)
            except ValueError:
                return status, None

        try:
            return protocol.allocate(self.base_url, market=self.market, kind=protocol.KIND_WEBSOCKET,
                                     token=self._token, scheme="ws", fetch=fetch)
        except protocol.AllocationRefused as exc:
            if "token" in str(exc).lower():
                raise AuthFailed(f"jvQuant refused the token: {exc}") from None
            raise Retry(f"allocation refused: {exc}") from None

    def prepare(self, emit: Emit) -> tuple[str, list[str]]:
        self.server = self.allocate()
        sep = "&" if "?" in self.server else "?"
        warn_plaintext(self.server, "jvQuant token")
        return f"{self.server}{sep}token={urllib.parse.quote(self._token)}", []

    def subscription(self) -> str:
        return protocol.command(protocol.ADD, self.codes, self.levels)

    def on_open(self, ws: websocket.WebSocket, emit: Emit) -> None:
        ws.send(self.subscription())

    def watched_codes(self) -> tuple[str, ...]:
        return tuple(self.codes)

    def codes_in(self, data: bytes, opcode: str) -> set[str]:
        return protocol.row_codes(data) if opcode == "binary" else set()

    def resubscribe(self, ws: websocket.WebSocket, codes: list[str]) -> None:
        """``add=`` for those codes at every level: adding what is subscribed already is harmless, and
        a re-subscription the same day is not billed again (protocols.md §1.3)."""
        ws.send(protocol.command(protocol.ADD, codes, self.levels))


def build_feed(settings: Settings, options: FeedOptions) -> JvQuantFeed:
    """The feed ``marketpipe produce jvquant`` runs (registry entry in :mod:`marketpipe.providers`)."""
    p = settings.providers
    if not p.jvquant_token:
        raise SystemExit("marketpipe produce jvquant: JVQUANT_TOKEN is not set")
    return JvQuantFeed(options.url or p.jvquant_base_url, p.jvquant_token.reveal(), options.codes, options.levels,
                       p.jvquant_market)
