"""Bar windows as pure state: emission, corrections, horizon, replays, and no empty bars."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from marketpipe.processors.bars.book import BarBook, offline_bars
from tests.support.pipeline import final_bars

MIN = 60_000
SHANGHAI = timezone(timedelta(hours=8))


def tick(t: int, price: float, size: float = 100.0, offset: int = 0, partition: int = 0) -> dict[str, Any]:
    return {"provider": "jvquant", "symbol": "600519.SH", "event_time": t, "price": price, "size": size,
            "amount": price * size, "receive_time_ns": t * 1_000_000,
            "source": {"topic": "raw.jvquant", "partition": partition, "offset": offset, "index": 0}}


def final(bars: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Latest revision per window, revision numbers set aside (offline bars have none)."""
    return {k: {**v, "revision": 0} for k, v in final_bars(bars).items()}


def run(book: BarBook, ticks: list[dict[str, Any]], grace: int = 2000, horizon: int = 10 * MIN) -> list[dict[str, Any]]:
    """Feed ticks one by one with the watermark = largest event time so far, then close everything."""
    out, wm = [], 0
    for t in ticks:
        wm = max(wm, t["event_time"])
        if not book.seen_before(t):
            book.add(t, MIN, horizon, wm - grace)
        out += book.close(wm, MIN, grace, horizon)
    out += book.close(wm + MIN + grace, MIN, grace, horizon)
    return out


def test_a_window_is_emitted_once_when_the_watermark_passes_its_end_plus_grace() -> None:
    book = BarBook("jvquant", "600519.SH")
    base = 1_790_000_000_000 // MIN * MIN
    book.add(tick(base + 1000, 10.0), MIN, 10 * MIN, 0)
    book.add(tick(base + 5000, 12.0), MIN, 10 * MIN, 0)
    assert book.close(base + MIN + 1999, MIN, 2000, 10 * MIN) == []
    [bar] = book.close(base + MIN + 2000, MIN, 2000, 10 * MIN)
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"], bar["trade_count"]) == \
        (10.0, 12.0, 10.0, 12.0, 200.0, 2)
    assert bar["window_start"] == base and bar["window_end"] == base + MIN and bar["revision"] == 0
    assert book.close(base + 2 * MIN + 2000, MIN, 2000, 10 * MIN) == []


def test_a_late_tick_within_the_horizon_gives_one_correction_and_beyond_it_is_refused() -> None:
    book = BarBook("jvquant", "600519.SH")
    base = 1_790_000_000_000 // MIN * MIN
    bars = run(book, [tick(base + 1000, 10.0, offset=1), tick(base + 3 * MIN, 11.0, offset=2)], horizon=5 * MIN)
    assert [b["revision"] for b in bars] == [0, 0]
    assert book.add(tick(base + 2000, 9.0, offset=3), MIN, 5 * MIN, base + 3 * MIN)
    [fix] = book.close(base + 3 * MIN + 3000, MIN, 2000, 5 * MIN)
    assert fix["revision"] == 1 and fix["low"] == 9.0 and fix["close"] == 9.0 and fix["trade_count"] == 2
    # past end + horizon the window is gone: the caller is told, nothing is binned silently
    assert not book.add(tick(base + 1500, 8.0, offset=4), MIN, 5 * MIN, base + 7 * MIN)


def test_replayed_ticks_count_once() -> None:
    book = BarBook("jvquant", "600519.SH")
    base = 1_790_000_000_000 // MIN * MIN
    ticks = [tick(base + i * 100, 10 + i, offset=i) for i in range(20)]
    replayed = ticks[:12] + ticks[5:]  # a crash after offset 11: offsets 5..11 come again
    [bar] = run(book, replayed)
    assert bar["trade_count"] == 20 and bar["volume"] == 2000.0


def test_no_bars_for_the_lunch_break() -> None:
    morning = int(datetime(2026, 11, 24, 11, 29, 50, tzinfo=SHANGHAI).timestamp() * 1000)
    afternoon = int(datetime(2026, 11, 24, 13, 0, 5, tzinfo=SHANGHAI).timestamp() * 1000)
    bars = run(BarBook("jvquant", "600519.SH"), [tick(morning, 10.0, offset=1), tick(afternoon, 10.1, offset=2)])
    starts = [datetime.fromtimestamp(b["window_start"] / 1000, SHANGHAI).strftime("%H:%M") for b in bars]
    assert starts == ["11:29", "13:00"]


def test_state_survives_a_json_round_trip_mid_window() -> None:
    import orjson

    base = 1_790_000_000_000 // MIN * MIN
    ticks = [tick(base + i * 7_000, 10 + i % 5, offset=i) for i in range(30)]
    book = BarBook("jvquant", "600519.SH")
    first = []
    wm = 0
    for t in ticks[:13]:
        wm = max(wm, t["event_time"])
        book.seen_before(t)
        book.add(t, MIN, 10 * MIN, wm - 2000)
        first += book.close(wm, MIN, 2000, 10 * MIN)
    restored = BarBook.from_json(orjson.loads(orjson.dumps(book.to_json())))
    rest = run(restored, ticks[10:])  # the restart replays a few ticks
    assert final(first + rest) == offline_bars(ticks, MIN)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5 * MIN), st.integers(1, 500), st.integers(1, 9)), min_size=1, max_size=80),
       st.randoms(use_true_random=False))
def test_any_arrival_order_within_the_horizon_ends_at_the_offline_bars(raw, rnd) -> None:
    base = 1_790_000_000_000 // MIN * MIN
    ticks = [tick(base + t, p / 10, size=s * 100, offset=i) for i, (t, p, s) in enumerate(raw)]
    # within one raw partition ticks arrive in order; one partition per tick makes any shuffle legal
    for i, t in enumerate(ticks):
        t["source"]["partition"] = i
    arrival = list(ticks)
    rnd.shuffle(arrival)
    bars = run(BarBook("jvquant", "600519.SH"), arrival)
    assert final(bars) == offline_bars(ticks, MIN)
    assert all(b["volume"] > 0 for b in bars)  # never an empty bar


def test_a_snapshot_of_the_previous_layout_is_upgraded_and_keeps_binning() -> None:
    base = 1_790_000_000_000 // MIN * MIN
    v1 = {"p": "jvquant", "s": "600519.SH", "m": base + 5000, "part": 3, "a": {"raw.jvquant:0": [7, 0]},
          "o": {str(base): [10.0, 11.0, 9.5, 10.5, 300.0, 3150.0, 3, base + 1000, base + 5000, 1]},
          "e": {str(base - MIN): [[9.0, 9.0, 9.0, 9.0, 100.0, None, 1, base - 2000, base - 2000, 1], 0, False]}}
    book = BarBook.from_json(v1)
    book.add(tick(base + 6000, 12.0, offset=8), MIN, 10 * MIN, base + 6000)
    [bar] = book.close(base + MIN + 2000, MIN, 2000, 10 * MIN)
    assert (bar["open"], bar["high"], bar["close"], bar["volume"], bar["amount"], bar["trade_count"]) == \
        (10.0, 12.0, 12.0, 400.0, 3150.0 + 1200.0, 4)
    assert book.to_json()["v"] == 3
    import orjson

    again = BarBook.from_json(orjson.loads(orjson.dumps(book.to_json())))
    assert again == book
    import pytest

    with pytest.raises(ValueError):
        BarBook.from_json({**v1, "v": 99})
