"""Feed health as pure state: gaps from the raw headers, stale symbols on the market calendar,
per-minute rate and latency, the gap registry, and bars that know about gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from marketpipe.processors.bars.book import BarBook
from marketpipe.processors.status import FeedMonitor, GapRegistry, calendar_for_symbol
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec

CST = timezone(timedelta(hours=8))
OPEN_S = datetime(2026, 11, 23, 10, 0, tzinfo=CST).timestamp()  # a Monday morning session
CLOSED_S = datetime(2026, 11, 22, 10, 0, tzinfo=CST).timestamp()  # the Sunday before
MIN = 60_000


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def meta(seq: int, session: int = 1, recv_ms: int = 1_000, conn: str = "infoway-h-1") -> RawMeta:
    return RawMeta("infoway", conn, seq, session, recv_ms * 1_000_000, "text", "data")


def frames(mon: FeedMonitor, metas: list[RawMeta]) -> list[dict[str, Any]]:
    out = []
    for offset, m in enumerate(metas):
        out += mon.frame("infoway", m, "raw.infoway", 0, offset)
    return out


def test_continuous_sequence_reports_nothing() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    assert frames(mon, [meta(1), meta(2), meta(3)]) == []


def test_clean_reconnect_is_a_gap_of_the_time_without_data() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    out = frames(mon, [meta(1, 1, 1_000), meta(2, 1, 1_200), meta(3, 2, 4_700)])
    assert [(r["kind"], r["gap_start"], r["gap_end"], r["silent_ms"], r["seq_from"], r["session"]) for r in out] == \
        [("gap", 1_200, 4_700, 3_500, 0, 2)]
    assert out[0]["reason"].startswith("reconnect")


def test_sequence_jump_names_the_missing_frames() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    out = frames(mon, [meta(1), meta(2, recv_ms=2_000), meta(7, recv_ms=2_500)])
    assert [(r["seq_from"], r["seq_to"], r["gap_start"], r["gap_end"]) for r in out] == [(3, 6, 2_000, 2_500)]
    assert out[0]["reason"] == "4 frames missing"


def test_producer_killed_and_restarted_under_the_same_id_is_a_gap() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    # kill -9: the new process starts again at session 1, seq 1, with no disconnect in between
    out = frames(mon, [meta(1), meta(2), meta(3, recv_ms=3_000), meta(1, 1, 9_000), meta(2, 1, 9_100)])
    assert len(out) == 1
    assert (out[0]["seq_from"], out[0]["seq_to"], out[0]["gap_start"], out[0]["gap_end"]) == (4, 0, 3_000, 9_000)
    assert "restarted" in out[0]["reason"]


def test_replayed_frames_judge_nothing() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    ms = [meta(1), meta(2), meta(3)]
    assert frames(mon, ms) == []
    # the worker restarted: the same offsets again, then new ones
    assert mon.frame("infoway", ms[0], "raw.infoway", 0, 0) == []
    assert mon.frame("infoway", meta(4), "raw.infoway", 0, 3) == []


def test_connections_are_judged_apart() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    out = frames(mon, [meta(1, conn="a"), meta(1, conn="b"), meta(2, conn="a"), meta(2, conn="b")])
    assert out == []


def live(mon: FeedMonitor, clock: FakeClock, symbol: str, every: float, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        clock.t += every
        out += mon.record("infoway", "Tick", symbol, int(clock.t * 1000), int(clock.t * 1e9))
        out += mon.tick()
    return out


def test_a_silent_symbol_is_stale_while_its_market_is_open_and_fresh_again() -> None:
    clock = FakeClock(OPEN_S)
    mon = FeedMonitor(clock, stale_factor=5, min_stale_seconds=3)
    assert live(mon, clock, "600519.SH", 1.0, 10) == []
    clock.t += 4.0  # four usual intervals: not yet
    assert [r for r in mon.tick() if r["kind"] == "stale"] == []
    clock.t += 2.0
    stale = [r for r in mon.tick() if r["kind"] == "stale"]
    assert [(r["symbol"], r["silent_ms"]) for r in stale] == [("600519.SH", 6_000)]
    clock.t += 5.0
    assert [r for r in mon.tick() if r["kind"] == "stale"] == []  # said once
    fresh = mon.record("infoway", "Tick", "600519.SH", int(clock.t * 1000), int(clock.t * 1e9))
    assert [(r["kind"], r["symbol"], r["silent_ms"]) for r in fresh] == [("fresh", "600519.SH", 11_000)]


def test_a_silent_symbol_is_not_stale_while_its_market_is_closed() -> None:
    clock = FakeClock(CLOSED_S)
    mon = FeedMonitor(clock, stale_factor=5, min_stale_seconds=3)
    live(mon, clock, "600519.SH", 1.0, 10)  # a weekend trickle
    clock.t += 600
    assert [r for r in mon.tick() if r["kind"] == "stale"] == []
    # crypto trades on Sunday: the same silence is stale there
    live(mon, clock, "BTCUSDT", 1.0, 10)
    clock.t += 600
    assert [r["symbol"] for r in mon.tick() if r["kind"] == "stale"] == ["BTCUSDT"]


def test_the_lunch_break_does_not_teach_a_long_usual_interval() -> None:
    lunch_end = datetime(2026, 11, 23, 13, 0, tzinfo=CST).timestamp()
    clock = FakeClock(lunch_end - 90 * 60)  # 11:30, the morning session just closed
    mon = FeedMonitor(clock, stale_factor=5, min_stale_seconds=3)
    mon.record("infoway", "Tick", "600519.SH", 0, 0)
    clock.t = lunch_end
    live(mon, clock, "600519.SH", 1.0, 10)
    clock.t += 10
    assert [r["symbol"] for r in mon.tick() if r["kind"] == "stale"] == ["600519.SH"]


def test_stats_each_minute_with_rate_and_latency_percentiles() -> None:
    minute = int(OPEN_S // 60) * 60
    clock = FakeClock(minute + 1)
    mon = FeedMonitor(clock)
    for i in range(100):
        mon.frame("jvquant", RawMeta("jvquant", "c", i + 1, 1, 0, "binary", "data"), "raw.jvquant", 0, i)
        event_ms = int(clock.t * 1000)
        mon.record("jvquant", "Tick", "600519.SH", event_ms, (event_ms + i + 1) * 1_000_000)  # 1..100 ms
    mon.record("jvquant", "Kline", "600519.SH", event_ms - 50_000, event_ms * 1_000_000)  # no latency sample
    assert [r for r in mon.tick() if r["kind"] == "stats"] == []  # the minute is not over
    clock.t = minute + 61
    stats = [r for r in mon.tick() if r["kind"] == "stats"]
    assert len(stats) == 1
    s = stats[0]
    assert (s["provider"], s["messages"], s["event_time"]) == ("jvquant", 100, (minute + 60) * 1000 - 1)
    assert s["rate"] == 100 / 60
    assert (s["latency_p50_ms"], s["latency_p99_ms"]) == (50.0, 99.0)


def test_status_records_fit_the_schema() -> None:
    clock = FakeClock(OPEN_S)
    mon = FeedMonitor(clock)
    out = frames(mon, [meta(1), meta(5)])
    clock.t += 120
    out += mon.tick()
    codec = Codec()
    for rec in out:
        assert codec.decode(codec.encode("FeedStatus", rec)).record["kind"] == rec["kind"]


def test_calendars_of_symbols() -> None:
    assert calendar_for_symbol("600519.SH").name == "a-share"
    assert calendar_for_symbol("00700.HK").name == "hong-kong"
    assert calendar_for_symbol("AMZN.US").name == "us"
    assert calendar_for_symbol("BTCUSDT").name == "crypto"
    assert calendar_for_symbol("XAUUSD").name == "forex"


# ---- gaps and bars -------------------------------------------------------------------------
def gap(start: int, end: int, kind: str = "gap", conn: str = "c1") -> dict[str, Any]:
    return {"provider": "jvquant", "kind": kind, "connection": conn, "gap_start": start, "gap_end": end}


def test_registry_keeps_unfilled_gaps_and_ignores_replays() -> None:
    reg = GapRegistry()
    assert reg.add(gap(1_000, 2_000))
    assert not reg.add(gap(1_000, 2_000))  # replayed
    assert not reg.add({"provider": "jvquant", "kind": "stats"})
    assert reg.open_gaps("jvquant") == [(1_000, 2_000)]
    assert reg.open_gaps("infoway") == []
    assert reg.add(gap(1_000, 2_000, "filled"))
    assert reg.open_gaps("jvquant") == []
    assert not reg.add(gap(1_000, 2_000))  # reported again after its fill: stays filled


def test_a_fill_may_arrive_before_its_gap() -> None:
    reg = GapRegistry()
    assert not reg.add(gap(1_000, 5_000, "filled"))
    assert not reg.add(gap(1_000, 2_000))
    assert reg.open_gaps("jvquant") == []


def tick(t: int, price: float, offset: int) -> dict[str, Any]:
    return {"provider": "jvquant", "symbol": "600519.SH", "event_time": t, "price": price, "size": 100.0,
            "amount": price * 100, "receive_time_ns": t * 1_000_000,
            "source": {"topic": "raw.jvquant", "partition": 0, "offset": offset, "index": 0}}


def test_bar_over_a_known_gap_says_so_and_others_do_not() -> None:
    book = BarBook("jvquant", "600519.SH")
    for i, t in enumerate([10_000, 70_000, 130_000]):
        book.add(tick(t, 10.0 + i, i), MIN, 10 * MIN, 0)
    bars = book.close(200_000, MIN, 2_000, 10 * MIN, gaps=[(65_000, 66_000)])
    assert [(b["window_start"], b["gap"]) for b in bars] == [(0, False), (MIN, True), (2 * MIN, False)]


def test_gap_learned_after_the_bar_then_filled_gives_two_corrections() -> None:
    book = BarBook("jvquant", "600519.SH")
    book.add(tick(70_000, 10.0, 0), MIN, 10 * MIN, 0)
    first = book.close(125_000, MIN, 2_000, 10 * MIN)
    assert [(b["revision"], b["gap"]) for b in first] == [(0, False)]
    reg = GapRegistry()
    reg.add(gap(100_000, 130_000))  # the reconnect is reported once the feed is back
    assert book.regap(reg.open_gaps("jvquant"), MIN)
    second = book.close(135_000, MIN, 2_000, 10 * MIN, reg.open_gaps("jvquant"))
    assert [(b["window_start"], b["revision"], b["gap"]) for b in second] == [(MIN, 1, True)]
    assert not book.regap(reg.open_gaps("jvquant"), MIN)  # nothing new: no correction
    reg.add(gap(100_000, 130_000, "filled"))  # backfill covered it
    assert book.regap(reg.open_gaps("jvquant"), MIN)
    third = book.close(140_000, MIN, 2_000, 10 * MIN, reg.open_gaps("jvquant"))
    assert [(b["revision"], b["gap"], b["close"]) for b in third] == [(2, False, 10.0)]


def test_gap_flags_survive_the_snapshot() -> None:
    book = BarBook("jvquant", "600519.SH")
    book.add(tick(70_000, 10.0, 0), MIN, 10 * MIN, 0)
    book.close(125_000, MIN, 2_000, 10 * MIN, gaps=[(100_000, 101_000)])
    again = BarBook.from_json(book.to_json())
    assert not again.regap([(100_000, 101_000)], MIN)
    assert again.regap([], MIN)


def test_status_view_puts_the_providers_side_by_side() -> None:
    from marketpipe.feedstatus import StatusView, render

    view = StatusView()
    for rec in [
        {"provider": "jvquant", "kind": "connected", "event_time": 1, "connection": "j1"},
        {"provider": "infoway", "kind": "connected", "event_time": 1, "connection": "i1"},
        {"provider": "infoway", "kind": "disconnected", "event_time": 2, "connection": "i1", "reason": "closed"},
        {"provider": "infoway", "kind": "reconnected", "event_time": 3, "connection": "i1", "silent_ms": 1500},
        {"provider": "infoway", "kind": "gap", "event_time": 3, "connection": "i1", "silent_ms": 1600},
        {"provider": "infoway", "kind": "filled", "event_time": 4, "connection": "i1"},
        {"provider": "jvquant", "kind": "stale", "event_time": 5, "symbol": "600519.SH"},
        {"provider": "jvquant", "kind": "line_down", "event_time": 5, "connection": "jvquant-ab", "line": "A"},
        {"provider": "jvquant", "kind": "line_down", "event_time": 5, "connection": "jvquant-ab", "line": "B"},
        {"provider": "jvquant", "kind": "line_up", "event_time": 5, "connection": "jvquant-ab", "line": "B"},
        {"provider": "jvquant", "kind": "line_gap", "event_time": 5, "connection": "jvquant-ab", "line": "B"},
        {"provider": "jvquant", "kind": "stale", "event_time": 5, "symbol": "000001.SZ"},
        {"provider": "jvquant", "kind": "fresh", "event_time": 6, "symbol": "000001.SZ"},
        {"provider": "jvquant", "kind": "stats", "event_time": 7, "rate": 12.5, "latency_p50_ms": 3.0,
         "latency_p99_ms": 40.0},
    ]:
        view.on_record(rec)
    rows = {r["provider"]: r for r in view.rows()}
    assert [r["provider"] for r in view.rows()] == ["infoway", "jvquant"]
    i, j = rows["infoway"], rows["jvquant"]
    assert (i["up"], i["reconnects"], i["longest_silence_ms"], i["gaps"], i["gap_ms"], i["filled"]) == \
        (1, 1, 1500, 1, 1600, 1)
    assert (j["stale"], j["rate"], j["latency_p99_ms"], j["last"]) == (["600519.SH"], 12.5, 40.0, "fresh")
    assert (j["lines_down"], j["line_gaps"], i["lines_down"]) == (["jvquant-ab/A"], 1, [])
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render(view))
    text = console.export_text()
    assert "600519.SH" in text and "infoway" in text and "12.5" in text and "jvquant-ab/A" in text


class ListOut:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict[str, Any], int]] = []

    def send(self, topic: str, schema: str, key: str, record: dict[str, Any], timestamp: int) -> None:
        self.sent.append((topic, schema, key, record, timestamp))


def test_hook_feeds_the_monitor_from_decoded_frames_and_writes_md_status_and_metrics() -> None:
    import json

    from prometheus_client import REGISTRY

    from marketpipe.processors.decode import RawFrame, decode
    from marketpipe.processors.status import StatusHook

    clock = FakeClock(OPEN_S)
    hook, out = StatusHook(FeedMonitor(clock, stale_factor=5, min_stale_seconds=3)), ListOut()

    def push(seq: int, session: int, symbol: str) -> None:
        t_ms = int(clock.t * 1000)
        body = {"code": 10002, "data": {"p": "10.5", "s": symbol, "t": t_ms - 20, "td": 1, "v": "100", "vw": "1050"}}
        meta = RawMeta("infoway", "iw-9", seq, session, t_ms * 1_000_000, "text", "data")
        frame = RawFrame("infoway", json.dumps(body).encode(), meta, "raw.infoway", 0, seq)
        hook.frame(out, "infoway", frame, decode(frame))

    seq = 0
    for _ in range(10):  # both symbols trade every second
        clock.t += 1
        for sym in ("600519.SH", "000001.SZ"):
            seq += 1
            push(seq, 1, sym)
        hook.batch(out)
    for _ in range(10):  # 000001.SZ falls silent; a reconnect in between
        clock.t += 1
        seq += 1
        push(seq, 2, "600519.SH")
        hook.batch(out)
    sent = [(t, s, k, r["kind"], r.get("symbol", "")) for t, s, k, r, _ in out.sent]
    assert ("md.status", "FeedStatus", "infoway", "gap", "") in sent
    assert ("md.status", "FeedStatus", "infoway", "stale", "000001.SZ") in sent
    assert ("md.status", "FeedStatus", "infoway", "stale", "600519.SH") not in sent
    assert REGISTRY.get_sample_value("marketpipe_feed_stale_symbols", {"provider": "infoway"}) == 1
    clock.t = (int(clock.t // 60) + 1) * 60 + 1  # the minute is over (and everything fell silent)
    hook.batch(out)
    stats = [r for _, _, _, r, _ in out.sent if r["kind"] == "stats"]
    assert stats and stats[-1]["latency_p50_ms"] == 20.0
    assert REGISTRY.get_sample_value("marketpipe_feed_receive_latency_ms",
                                     {"provider": "infoway", "quantile": "0.5"}) == 20.0
    assert REGISTRY.get_sample_value("marketpipe_feed_status_events_total",
                                     {"provider": "infoway", "kind": "gap"}) >= 1


def test_backfilled_history_does_not_make_a_silent_symbol_fresh() -> None:
    """A muted symbol's klines fetched after a reconnect are history, not life: it still goes stale."""
    import json

    from marketpipe.processors.decode import RawFrame, decode
    from marketpipe.processors.status import StatusHook
    from marketpipe.rawframe import H_BACKFILL, H_KLINE_TYPES

    clock = FakeClock(OPEN_S)
    hook, out = StatusHook(FeedMonitor(clock, stale_factor=5, min_stale_seconds=3)), ListOut()
    seq = 0

    def push(symbol: str, backfill: bool = False) -> None:
        nonlocal seq
        seq += 1
        t_ms = int(clock.t * 1000)
        if backfill:
            row = {"t": str(t_ms // 60_000 * 60), "h": "2", "o": "1", "l": "1", "c": "2", "v": "5", "vw": "9",
                   "pc": "0.1%", "pca": "0.1"}
            body = {"ret": 200, "msg": "success", "traceId": "x", "data": [{"s": symbol, "respList": [row]}]}
            extra = ((H_KLINE_TYPES, "1"), (H_BACKFILL, f"/crypto/batch_kline/1/2/{symbol}"))
        else:
            body = {"code": 10002, "data": {"p": "10.5", "s": symbol, "t": t_ms - 20, "td": 1, "v": "1", "vw": "9"}}
            extra = ()
        meta = RawMeta("infoway", "iw-1", seq, 1, t_ms * 1_000_000, "text", "data", extra)
        frame = RawFrame("infoway", json.dumps(body).encode(), meta, "raw.infoway", 0, seq)
        records = decode(frame)
        assert records and all(r.key == symbol for r in records)
        hook.frame(out, "infoway", frame, records)

    for _ in range(10):
        clock.t += 1
        push("BTCUSDT")
        push("ETHUSDT")
        hook.batch(out)
    for t in range(8):  # BTCUSDT falls silent; its klines are backfilled two seconds in
        clock.t += 1
        push("ETHUSDT")
        if t == 2:
            push("BTCUSDT", backfill=True)
        hook.batch(out)
    stale = [r for _, _, _, r, _ in out.sent if r["kind"] == "stale"]
    assert [r["symbol"] for r in stale] == ["BTCUSDT"] and stale[0]["silent_ms"] > 3000


def test_trade_numbers_going_back_are_a_duplicate_or_reordered_once_per_quiet_period() -> None:
    clock = FakeClock(OPEN_S)
    mon = FeedMonitor(clock, disorder_quiet_seconds=60)

    def frame(offset: int, numbers: list[int]) -> list[dict[str, Any]]:
        mon.frame("jvquant", meta(offset + 1, conn="jv-1"), "raw.jvquant", 0, offset)
        return mon.trades("jvquant", "600519.SH", numbers)

    assert frame(0, [1, 2, 3]) + frame(1, [4, 5]) == []
    [dup] = frame(2, [4, 5])  # the previous frame again
    assert (dup["kind"], dup["symbol"]) == ("duplicate", "600519.SH") and "2 trade numbers at or below 5" in dup["reason"]
    assert frame(3, [8, 9]) == []
    [late] = frame(4, [6, 7])  # numbers never seen, below the highest: out of order
    assert late["kind"] == "reordered"
    assert frame(5, [12]) + frame(6, [10, 11]) == []  # reordered again within the quiet period: said once
    clock.t += 61
    assert [r["kind"] for r in frame(7, [15]) + frame(8, [13, 14])] == ["reordered"]
    # another symbol has its own numbers
    mon.frame("jvquant", meta(10, conn="jv-1"), "raw.jvquant", 0, 9)
    assert mon.trades("jvquant", "000001.SZ", [1]) == []
    clock.t += 61
    # a replayed frame (an offset this worker judged) judges nothing
    mon.frame("jvquant", meta(1, conn="jv-1"), "raw.jvquant", 0, 3)
    assert mon.trades("jvquant", "600519.SH", [1]) == []
    mon.frame("jvquant", meta(11, conn="jv-1"), "raw.jvquant", 0, 10)
    assert [r["kind"] for r in mon.trades("jvquant", "600519.SH", [1])] == ["reordered"]


def line_meta(line: str, seq: int, recv_ms: int, session: int = 1) -> RawMeta:
    return RawMeta("infoway", "infoway-ab", seq, session, recv_ms * 1_000_000, "text", "data", (("line", line),))


def test_two_lines_of_one_connection_are_numbered_each_and_interleave_without_a_gap() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S))
    out = frames(mon, [line_meta("A", 1, 1_000), line_meta("B", 1, 1_001), line_meta("A", 2, 1_100),
                       line_meta("B", 2, 1_102), line_meta("B", 3, 1_200), line_meta("A", 3, 1_201)])
    assert out == []


class Lines:
    """Frames of an A/B pair fed in partition order (one offset after another, across calls)."""

    def __init__(self, mon: FeedMonitor) -> None:
        self.mon, self.offset = mon, 0

    def __call__(self, *metas: RawMeta) -> list[dict[str, Any]]:
        out = []
        for m in metas:
            out += self.mon.frame("infoway", m, "raw.infoway", 0, self.offset)
            self.offset += 1
        return out


def test_a_gap_of_one_line_while_the_other_delivered_is_the_lines_health_not_a_data_gap() -> None:
    feed = Lines(FeedMonitor(FakeClock(OPEN_S), line_skew_ms=100))
    out = feed(line_meta("A", 1, 1_000), line_meta("B", 1, 1_001), line_meta("B", 2, 2_000),
               line_meta("B", 3, 3_000), line_meta("A", 5, 3_001))  # A lost seq 2..4
    assert [(r["kind"], r["line"], r["seq_from"], r["seq_to"]) for r in out] == [("line_gap", "A", 2, 4)]
    assert "the other line delivered" in out[0]["reason"]


def test_a_gap_both_lines_missed_is_reported_over_their_overlap() -> None:
    feed = Lines(FeedMonitor(FakeClock(OPEN_S), line_skew_ms=100))
    assert [r["kind"] for r in feed(line_meta("A", 1, 1_000), line_meta("B", 1, 1_001), line_meta("B", 2, 2_000),
                                    line_meta("B", 3, 2_999), line_meta("A", 5, 3_000))] == ["line_gap"]
    out = feed(line_meta("B", 6, 6_000))  # B missed 2_000..6_000; A delivered until 3_000
    assert [(r["kind"], r["line"], r["gap_start"], r["gap_end"], r["connection"]) for r in out] == \
        [("gap", "B", 2_999, 6_000, "infoway-ab")]  # from B's last frame: A had missed until 3_000
    assert "both lines" in out[0]["reason"]


def test_a_line_down_then_a_gap_on_the_other_is_a_data_gap_and_line_up_when_it_returns() -> None:
    mon = FeedMonitor(FakeClock(OPEN_S), line_down_ms=1_000, line_skew_ms=100)
    feed = Lines(mon)
    assert feed(line_meta("A", 1, 1_000), line_meta("B", 1, 1_001), line_meta("B", 2, 1_500)) == []
    assert [r for r in mon.tick() if r["kind"].startswith("line")] == []  # 500 ms behind: not yet down
    feed(line_meta("B", 3, 2_500))
    down = [r for r in mon.tick() if r["kind"].startswith("line")]
    assert [(r["kind"], r["line"], r["gap_start"], r["silent_ms"]) for r in down] == [("line_down", "A", 1_000, 1_500)]
    assert [r for r in mon.tick() if r["kind"].startswith("line")] == []  # once
    # B is killed and restarted under the same id while A is down: nobody delivered 2_500..9_000
    out = feed(line_meta("B", 1, 9_000))
    assert [(r["kind"], r["line"], r["gap_start"], r["gap_end"]) for r in out] == [("gap", "B", 2_500, 9_000)]
    out = feed(line_meta("A", 2, 9_100))  # A was silent, not cut off: its numbering goes on
    assert [(r["kind"], r["line"], r["gap_start"], r["gap_end"]) for r in out] == [("line_up", "A", 1_000, 9_100)]
