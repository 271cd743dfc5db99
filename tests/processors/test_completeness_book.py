"""The processor's completeness book, fed by hand: connection coverage, gaps (unfillable or to be
filled), stale spells, the write cadence, and merging another worker's version of a day."""

from __future__ import annotations

from datetime import date

from marketpipe.completeness import DayLedger, Interval, Mark
from marketpipe.processors.completeness import CompletenessBook

C, G, U, F = Mark.COMPLETE, Mark.GAP, Mark.UNFILLABLE, Mark.FILLED
T0 = 1_796_601_600_000  # 2026-12-07 08:00 China time
DAY = date(2026, 12, 7)


def book() -> CompletenessBook:
    return CompletenessBook(frozenset({"infoway"}), flush_ms=5000)


def frames(b: CompletenessBook, provider: str, conn: str, times: range, symbols: tuple[str, ...]) -> None:
    for t in times:
        b.frame(provider, conn, T0 + t, symbols)


def days(out: list[DayLedger]) -> dict[str, tuple[Interval, ...]]:
    return {d.key: tuple(Interval(i.start - T0, i.end - T0, i.mark) for i in d.intervals) for d in out}


def test_a_live_connection_covers_every_symbol_it_carried_from_its_first_frame() -> None:
    b = book()
    frames(b, "jvquant", "c1", range(0, 4000, 100), ("600519.SH",))
    frames(b, "jvquant", "c1", range(4000, 9001, 100), ("600519.SH", "000001.SZ"))
    got = days(b.due(T0 + 9001))
    assert got == {"jvquant|600519.SH|2026-12-07": (Interval(0, 9000, C),),
                   "jvquant|000001.SZ|2026-12-07": (Interval(4000, 9000, C),)}
    assert all(d.updated_time == T0 + 9001 for d in b.days.values())


def test_a_gap_of_a_provider_without_history_is_unfillable_and_written_at_once() -> None:
    b = book()
    frames(b, "jvquant", "c1", range(0, 5001, 100), ("600519.SH",))
    assert b.due(T0 + 5001)  # the first write
    frames(b, "jvquant", "c1", range(5100, 6001, 100), ("600519.SH",))
    assert b.due(T0 + 6001) == []  # coverage waits for the flush interval
    b.gap("jvquant", "c1", T0 + 6000, T0 + 9000)
    frames(b, "jvquant", "c1", range(9000, 9501, 100), ("600519.SH",))
    [day] = b.due(T0 + 9501)  # a gap is urgent
    assert days([day])[day.key] == (Interval(0, 6000, C), Interval(6000, 9000, U), Interval(9000, 9500, C))


def test_an_infoway_gap_stays_a_gap_until_the_producer_reports_it_filled() -> None:
    b = book()
    frames(b, "infoway", "c2", range(0, 3001, 100), ("BTCUSDT",))
    b.gap("infoway", "c2", T0 + 3000, T0 + 4000)
    frames(b, "infoway", "c2", range(4000, 5001, 100), ("BTCUSDT",))
    [day] = b.due(T0 + 5001)
    assert [i.mark for i in day.intervals] == [C, G, C]
    b.filled("infoway", "c2", T0 + 3000, T0 + 4000)
    b.filled("infoway", "other-workers-conn", T0, T0 + 1)  # not ours: nothing to paint
    [day] = b.due(T0 + 5002)
    assert day.intervals == (Interval(T0, T0 + 3000, C), Interval(T0 + 3000, T0 + 4000, F),
                             Interval(T0 + 4000, T0 + 5000, C))


def test_a_stale_symbol_is_missing_from_when_it_went_silent_even_if_it_never_comes_back() -> None:
    b = book()
    frames(b, "jvquant", "c1", range(0, 20001, 500), ("600519.SH", "000001.SZ"))
    b.went_stale("jvquant", "000001.SZ", T0 + 8000)
    got = days(b.due(T0 + 20001))
    assert got["jvquant|000001.SZ|2026-12-07"] == (Interval(0, 8000, C), Interval(8000, 20000, U))
    assert got["jvquant|600519.SH|2026-12-07"] == (Interval(0, 20000, C),)
    b.came_back("jvquant", "000001.SZ", T0 + 8000, T0 + 21000)
    frames(b, "jvquant", "c1", range(21000, 30001, 500), ("600519.SH", "000001.SZ"))
    got = days(b.due(T0 + 30001))
    assert got["jvquant|000001.SZ|2026-12-07"] == (Interval(0, 8000, C), Interval(8000, 21000, U),
                                                   Interval(21000, 30000, C))


def test_coverage_across_midnight_of_the_market_is_two_days() -> None:
    b = book()
    midnight = 16 * 3_600_000  # 2026-12-08 00:00 China time
    frames(b, "jvquant", "c1", range(midnight - 2000, midnight + 2001, 1000), ("600519.SH",))
    got = days(b.due(T0 + midnight + 2001))
    assert got == {"jvquant|600519.SH|2026-12-07": (Interval(midnight - 2000, midnight, C),),
                   "jvquant|600519.SH|2026-12-08": (Interval(midnight, midnight + 2000, C),)}


def test_another_workers_version_is_merged_and_rewritten_only_when_the_topic_lacks_something() -> None:
    b = book()
    theirs = DayLedger("jvquant", "600519.SH", DAY, (Interval(T0, T0 + 5000, C), Interval(T0 + 5000, T0 + 6000, U)))
    b.merge(theirs)  # loaded: nothing new to write
    assert b.due(T0 + 1) == []
    b.merge(theirs)
    assert b.dirty == set()
    frames(b, "jvquant", "c1", range(6000, 9001, 1000), ("600519.SH",))  # the connection moved to us
    [day] = b.due(T0 + 9001)
    assert day.intervals == (Interval(T0, T0 + 5000, C), Interval(T0 + 5000, T0 + 6000, U),
                             Interval(T0 + 6000, T0 + 9000, C))
    # an older version of theirs arriving late changes nothing
    b.merge(theirs)
    assert b.dirty == set() and b.days[day.key].intervals == day.intervals
