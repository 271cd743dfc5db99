"""Stall detection of the producer session on a fake socket and fake clocks: a quiet market is
not a stalled feed, a pong is life, and a silent feed during trading hours is replaced."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websocket

from marketpipe.market import markethours as mh
from marketpipe.producers.session import Feed, Retry, Session

CST = ZoneInfo("Asia/Shanghai")


def cst_epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=CST).timestamp()


class Clock:
    def __init__(self, wall: float) -> None:
        self.mono = 1000.0
        self.wall = wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


class FakeWs:
    """Each recv advances the clocks by one second and returns what ``script`` says for that second."""

    def __init__(self, clock: Clock, script: Any, session_ref: list[Session], seconds: int) -> None:
        self.clock, self.script, self.session_ref, self.seconds = clock, script, session_ref, seconds
        self.sent: list[str] = []
        self.pings = 0
        self.t = 0

    def recv_data(self, control_frame: bool = False) -> tuple[int, bytes]:
        self.clock.advance(1)
        self.t += 1
        if self.t >= self.seconds:
            self.session_ref[0].stopping = True
        what = self.script(self.t)
        if what == "pong":
            if control_frame:
                return websocket.ABNF.OPCODE_PONG, b""
            raise websocket.WebSocketTimeoutException("pong swallowed")
        if what is None:
            raise websocket.WebSocketTimeoutException("timed out")
        return websocket.ABNF.OPCODE_BINARY, what

    def ping(self, payload: str = "") -> None:
        self.pings += 1

    def send(self, data: str) -> None:
        self.sent.append(data)


class QuietFeed(Feed):
    provider = "test"

    def __init__(self, calendar: Any, heartbeat_seconds: float | None = None, answered: bool = False) -> None:
        self._calendar = calendar
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_answered = answered

    def calendar(self) -> Any:
        return self._calendar


class ListSink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, value: bytes, meta: Any) -> None:
        self.frames.append(value)


def run_receive(feed: Feed, start: str, seconds: int, script: Any, stall: float = 30.0) -> tuple[FakeWs, Session]:
    clock = Clock(cst_epoch(start))
    ref: list[Session] = []
    session = Session(feed, ListSink(), "c1", stall_seconds=stall, clock=lambda: clock.mono,
                      wallclock=lambda: clock.wall)
    ref.append(session)
    ws = FakeWs(clock, script, ref, seconds)
    session._receive(ws)  # type: ignore[arg-type]
    return ws, session


def test_lunch_break_without_frames_is_no_stall() -> None:
    # 11:30 -> 12:59 China time on a Monday: ninety silent minutes, no reconnect
    ws, _ = run_receive(QuietFeed(mh.A_SHARE), "2026-11-23 11:30:00", 89 * 60, lambda t: None)
    assert ws.t == 89 * 60


def test_weekend_without_frames_is_no_stall_for_forex() -> None:
    ws, _ = run_receive(QuietFeed(mh.FOREX), "2026-11-28 06:00:00", 6 * 3600, lambda t: None)
    assert ws.t == 6 * 3600


def test_silent_feed_during_trading_hours_is_replaced() -> None:
    with pytest.raises(Retry, match="stalled"):
        run_receive(QuietFeed(mh.A_SHARE), "2026-11-23 10:00:00", 600, lambda t: None)


def test_stall_clock_starts_at_the_open_not_at_the_last_frame_of_the_morning() -> None:
    # last frame 11:29:59, quiet lunch, afternoon data starts 13:00:20 (within the stall period)
    def script(t: int) -> bytes | None:
        return b"data" if t == 1 or t >= 5420 else None

    ws, session = run_receive(QuietFeed(mh.A_SHARE), "2026-11-23 11:29:58", 5500, script)
    assert ws.t == 5500 and len(session.sink.frames) > 50


def test_after_the_open_a_silent_feed_is_replaced_once_the_stall_period_passed() -> None:
    ws, _ = run_receive(QuietFeed(mh.A_SHARE), "2026-11-23 12:59:00", 89, lambda t: None)  # until 13:00:29
    assert ws.t == 89
    with pytest.raises(Retry, match="market is open"):
        run_receive(QuietFeed(mh.A_SHARE), "2026-11-23 12:59:00", 92, lambda t: None)


def test_pong_counts_as_life_when_closed_and_a_dead_socket_is_noticed() -> None:
    feed = QuietFeed(mh.A_SHARE, heartbeat_seconds=10, answered=True)
    ws, _ = run_receive(feed, "2026-11-28 10:00:00", 3600, lambda t: "pong" if t % 10 == 0 else None)
    assert ws.pings >= 300
    with pytest.raises(Retry, match="no frame or pong"):
        run_receive(QuietFeed(mh.A_SHARE, heartbeat_seconds=10, answered=True), "2026-11-28 10:00:00", 3600,
                    lambda t: None)


def test_pong_counts_as_life_while_open() -> None:
    feed = QuietFeed(mh.CRYPTO, heartbeat_seconds=10, answered=True)
    ws, _ = run_receive(feed, "2026-11-28 10:00:00", 600, lambda t: "pong" if t % 10 == 0 else None)
    assert ws.t == 600


def test_each_producer_picks_its_markets_calendar() -> None:
    from marketpipe.providers.infoway.feed import InfowayFeed
    from marketpipe.providers.jin10.feed import Jin10Feed
    from marketpipe.providers.jvquant.feed import JvQuantFeed

    sat_noon, mon_lunch, mon_night = (cst_epoch("2026-11-28 12:00:00"), cst_epoch("2026-11-23 12:00:00"),
                                      cst_epoch("2026-11-23 23:00:00"))
    crypto = InfowayFeed("ws://x", "k", "crypto", ["BTCUSDT"]).calendar()
    assert crypto.is_open_at(sat_noon)
    common = InfowayFeed("ws://x", "k", "common", ["XAUUSD"]).calendar()
    assert common.is_open_at(mon_night) and not common.is_open_at(sat_noon)
    a_share = InfowayFeed("ws://x", "k", "stock", ["600519.SH"]).calendar()
    assert not a_share.is_open_at(mon_lunch) and not a_share.is_open_at(mon_night)
    mixed = InfowayFeed("ws://x", "k", "stock", ["600519.SH", "AAPL.US"]).calendar()
    assert mixed.is_open_at(mon_night)  # New York morning
    assert not JvQuantFeed("http://x", "t", ["600519"]).calendar().is_open_at(mon_lunch)
    assert JvQuantFeed("http://x", "t", ["aapl"], market="us").calendar().is_open_at(mon_night)
    assert Jin10Feed("http://x", ["XAUUSD"]).calendar().is_open_at(mon_night)
    assert not Jin10Feed("http://x", ["XAUUSD"]).calendar().is_open_at(sat_noon)
