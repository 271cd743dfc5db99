"""The completeness ledger's interval logic: painting marks, judging a range, trading days."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.completeness import (
    RANK,
    DayLedger,
    Hole,
    Interval,
    Mark,
    day_bounds,
    holes,
    judge,
    ledger_key,
    normalized,
    paint,
    split_days,
    trading_day,
)

C, G, U, F = Mark.COMPLETE, Mark.GAP, Mark.UNFILLABLE, Mark.FILLED


def test_coverage_grows_and_merges() -> None:
    day = paint((), 0, 10, C)
    day = paint(day, 10, 20, C)
    assert day == (Interval(0, 20, C),)


def test_a_gap_splits_coverage_and_coverage_never_paints_over_it() -> None:
    day = paint(paint((), 0, 100, C), 40, 60, G)
    assert day == (Interval(0, 40, C), Interval(40, 60, G), Interval(60, 100, C))
    assert paint(day, 0, 100, C) == day


def test_a_fill_beats_a_gap_and_unfillable_beats_a_gap() -> None:
    day = paint(paint((), 0, 100, C), 40, 60, G)
    assert paint(day, 40, 60, F) == (Interval(0, 40, C), Interval(40, 60, F), Interval(60, 100, C))
    assert paint(day, 30, 70, U) == (Interval(0, 30, C), Interval(30, 70, U), Interval(70, 100, C))
    assert paint(paint(day, 40, 60, F), 40, 60, G)[1] == Interval(40, 60, F)  # a late gap record: still filled


def test_holes_name_gaps_unfillable_and_unobserved_time() -> None:
    day = (Interval(100, 200, C), Interval(200, 250, U), Interval(250, 300, C), Interval(400, 500, G))
    assert holes(day, 100, 300) == (Hole(200, 250, "unfillable"),)
    assert holes(day, 0, 600) == (Hole(0, 100, "unobserved"), Hole(200, 250, "unfillable"),
                                  Hole(300, 400, "unobserved"), Hole(400, 500, "gap"), Hole(500, 600, "unobserved"))
    assert holes(day, 120, 180) == ()


def test_judge_is_complete_only_without_holes_and_lists_what_was_filled() -> None:
    day = (Interval(0, 50, C), Interval(50, 60, F), Interval(60, 100, C))
    answer = judge("BTCUSDT", day, 10, 90)
    assert answer.complete and answer.holes == () and answer.filled == (Interval(50, 60, F),)
    assert not judge("BTCUSDT", day, 10, 120).complete


def test_two_providers_overlapping_one_covers_the_others_hole() -> None:
    a = (Interval(0, 100, C), Interval(100, 120, U), Interval(120, 200, C))
    b = (Interval(90, 130, C),)
    assert holes(a + b, 0, 200) == ()
    assert holes(a + (Interval(90, 110, C),), 0, 200) == (Hole(110, 120, "unfillable"),)


intervals = st.lists(st.builds(lambda s, n, m: Interval(s, s + n, m), st.integers(0, 1000), st.integers(0, 200),
                               st.sampled_from(list(Mark))), max_size=12)


@given(intervals, st.integers(0, 1200), st.integers(0, 1200))
def test_painting_is_disjoint_and_each_point_has_the_best_mark(items: list[Interval], a: int, b: int) -> None:
    day = normalized(items)
    assert all(x.end <= y.start for x, y in zip(day, day[1:]))
    assert all(not (x.end == y.start and x.mark is y.mark) for x, y in zip(day, day[1:]))
    for point in {a, b, *(i.start for i in items)}:
        covering = [i.mark for i in items if i.start <= point < i.end]
        mine = [i.mark for i in day if i.start <= point < i.end]
        assert mine == ([max(covering, key=RANK.__getitem__)] if covering else [])
    lo, hi = min(a, b), max(a, b)
    found = holes(day, lo, hi)
    for point in range(lo, hi, 7):
        in_hole = any(h.start <= point < h.end for h in found)
        good = any(i.start <= point < i.end and i.mark in (C, F) for i in day)
        assert in_hole != good


def test_trading_days_are_counted_in_the_markets_zone() -> None:
    # 2026-12-06 17:00 UTC is already Monday 7 December in Shanghai, still Sunday for crypto (UTC)
    ms = 1_796_576_400_000
    assert trading_day("600519.SH", ms) == date(2026, 12, 7)
    assert trading_day("BTCUSDT", ms) == date(2026, 12, 6)
    start, end = day_bounds("600519.SH", date(2026, 12, 7))
    assert end - start == 86_400_000 and start == 1_796_572_800_000  # 16:00 UTC the day before
    assert [d for d, _, _ in split_days("600519.SH", start - 10, start + 10)] == [date(2026, 12, 6), date(2026, 12, 7)]
    assert ledger_key("jvquant", "600519.SH", date(2026, 12, 7)) == "jvquant|600519.SH|2026-12-07"


def test_the_avro_record_round_trips_through_the_codec() -> None:
    from marketpipe.schemas.codec import Codec

    day = DayLedger("jvquant", "600519.SH", date(2026, 12, 7), (Interval(0, 5, C), Interval(5, 9, U)), 42)
    codec = Codec()
    back = codec.decode(codec.encode("Completeness", day.to_record()), expect="Completeness").record
    assert DayLedger.from_record(back) == day


# ---- marketpipe status --gaps ---------------------------------------------------------------------

def test_status_gaps_reports_holes_per_symbol_and_keeps_the_unwritten_tail_apart() -> None:
    from marketpipe.feedstatus import gap_lines, gaps_of

    jv = DayLedger("jvquant", "600519.SH", date(2026, 12, 7), (Interval(1000, 5000, C), Interval(5000, 8000, U),
                                                              Interval(8000, 97_000, C)))
    iw = DayLedger("infoway", "BTCUSDT", date(2026, 12, 7), (Interval(0, 99_000, C),))
    old = DayLedger("jvquant", "000001.SZ", date(2026, 12, 6), (Interval(-9000, -5000, C),))
    rows = gaps_of([jv, iw, old], 2000, 100_000, pending_ms=5000)
    assert [r.answer.symbol for r in rows] == ["600519.SH", "BTCUSDT"]  # 000001.SZ has nothing in the range
    moutai, btc = rows
    assert moutai.answer.holes == (Hole(5000, 8000, "unfillable"),) and moutai.pending_from == 97_000
    assert btc.answer.complete and btc.pending_from == 99_000
    # a feed that stopped long ago is a hole, not pending; an asked symbol the ledger lacks is unobserved
    [late] = gaps_of([jv], 2000, 200_000, pending_ms=5000)
    assert late.answer.holes[-1] == Hole(97_000, 200_000, "unobserved") and late.pending_from is None
    [unknown] = gaps_of([], 0, 10, pending_ms=5, symbols=["AAPL.US"])
    assert unknown.answer.holes == (Hole(0, 10, "unobserved"),)
    text = list(gap_lines(rows))
    assert text[0].startswith("600519.SH") and "INCOMPLETE: 1 holes, 3.0 s" in text[0] and "written until" in text[0]
    assert "unfillable" in text[1] and text[2].startswith("BTCUSDT") and "complete" in text[2]


def test_the_readme_shows_the_completeness_example_verbatim() -> None:
    import re

    from tests.support.paths import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## For downstream services", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert (ROOT / "examples" / "downstream" / "complete_bars.py").read_text(encoding="utf-8") in blocks


@given(intervals, st.integers(0, 1200), st.integers(0, 300), st.sampled_from(list(Mark)))
def test_painting_one_interval_is_painting_each_point(items: list[Interval], start: int, length: int,
                                                      mark: Mark) -> None:
    """The one-pass paint against the definition: every point takes the best mark covering it."""
    day = paint(normalized(items), start, start + length, mark)
    everything = [*items, Interval(start, start + length, mark)]
    assert all(x.end <= y.start for x, y in zip(day, day[1:]))
    assert all(not (x.end == y.start and x.mark is y.mark) for x, y in zip(day, day[1:]))
    for point in range(0, 1500, 3):
        covering = [i.mark for i in everything if i.start <= point < i.end]
        mine = [i.mark for i in day if i.start <= point < i.end]
        assert mine == ([max(covering, key=RANK.__getitem__)] if covering else [])
