"""The completeness ledger's intervals (pure): what ``md.completeness`` holds per provider, symbol and
trading day, and how a range is judged from it.

A day is a list of disjoint intervals ``[start, end)`` (UTC epoch ms, the producers' receive time),
each marked:

* ``complete``: the connection carrying the symbol delivered every frame (its ``seq`` went up by
  one; a quiet market within such a span is complete too: nothing was lost);
* ``gap``: frames were lost or a symbol was silent past its limit while its market was open, and
  the provider may still fill it (Infoway: the REST kline backfill);
* ``unfillable``: the same, for a provider that offers no history (jvQuant, Jin10);
* ``filled``: a gap the producer backfilled (Infoway: klines; its trades stay missing).

Time no interval covers was not observed (no connection carried the symbol then): a question
about it is answered ``unobserved``, never "complete". Marks only get worse or filled, never
quietly better: painting ``complete`` over a gap leaves the gap (:data:`RANK`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from marketpipe.market import markethours


class Mark(enum.Enum):
    COMPLETE = "complete"
    GAP = "gap"
    UNFILLABLE = "unfillable"
    FILLED = "filled"


#: which mark wins where two overlap: a gap is never painted over by coverage; a backfill fills a
#: gap, and "unfillable" is the final word on a gap that no backfill came for
RANK = {Mark.COMPLETE: 0, Mark.GAP: 1, Mark.UNFILLABLE: 2, Mark.FILLED: 3}
#: marks under which the data is there
GOOD = frozenset({Mark.COMPLETE, Mark.FILLED})
UNOBSERVED = "unobserved"


@dataclass(frozen=True)
class Interval:
    start: int  # inclusive, UTC epoch ms
    end: int  # exclusive
    mark: Mark


@dataclass(frozen=True)
class Hole:
    """A part of an asked range whose data is missing: ``gap``, ``unfillable`` or ``unobserved``."""

    start: int
    end: int
    state: str


@dataclass(frozen=True)
class Completeness:
    """The answer for ``symbol`` over ``[start, end)``: complete when it has no hole."""

    symbol: str
    start: int
    end: int
    holes: tuple[Hole, ...]
    #: backfilled parts of the range (complete, but from the provider's history, e.g. klines only)
    filled: tuple[Interval, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.holes


def paint(intervals: Iterable[Interval], start: int, end: int, mark: Mark) -> tuple[Interval, ...]:
    """``intervals`` (disjoint, sorted) with ``[start, end)`` marked ``mark`` where it outranks what
    is there; adjacent intervals of one mark are merged. One pass: the processor paints every
    symbol's coverage every few seconds."""
    if end <= start:
        return tuple(intervals)
    out: list[Interval] = []
    cursor = start  # the next point of [start, end) not yet placed
    for i in intervals:
        if i.end <= start:
            out.append(i)
            continue
        if i.start >= end:
            if cursor < end:
                out.append(Interval(cursor, end, mark))
                cursor = end
            out.append(i)
            continue
        if i.start < start:
            out.append(Interval(i.start, start, i.mark))
        a, b = max(i.start, start), min(i.end, end)
        if cursor < a:
            out.append(Interval(cursor, a, mark))
        out.append(Interval(a, b, max(i.mark, mark, key=RANK.__getitem__)))
        cursor = b
        if i.end > end:
            out.append(Interval(end, i.end, i.mark))
    if cursor < end:
        out.append(Interval(cursor, end, mark))
    return _merged(out)


def _merged(intervals: list[Interval]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for i in intervals:
        if out and out[-1].end == i.start and out[-1].mark is i.mark:
            out[-1] = Interval(out[-1].start, i.end, i.mark)
        else:
            out.append(i)
    return tuple(out)


def normalized(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Overlapping intervals made disjoint (the highest :data:`RANK` wins each point) and merged."""
    out: tuple[Interval, ...] = ()
    for i in intervals:
        out = paint(out, i.start, i.end, i.mark)
    return out


def holes(intervals: Iterable[Interval], start: int, end: int) -> tuple[Hole, ...]:
    """The parts of ``[start, end)`` without good data. ``intervals`` may overlap (several providers
    or days): a point any of them has as complete or filled is no hole; otherwise it is the worst
    mark there, or ``unobserved``."""
    items = [i for i in intervals if i.end > start and i.start < end]
    cuts = sorted({start, end, *(max(start, min(end, t)) for i in items for t in (i.start, i.end))})
    out: list[Hole] = []
    for a, b in zip(cuts, cuts[1:]):
        marks = [i.mark for i in items if i.start <= a and i.end >= b]
        if any(m in GOOD for m in marks):
            continue
        state = max(marks, key=RANK.__getitem__).value if marks else UNOBSERVED
        if out and out[-1].end == a and out[-1].state == state:
            out[-1] = Hole(out[-1].start, b, state)
        else:
            out.append(Hole(a, b, state))
    return tuple(out)


def judge(symbol: str, intervals: Iterable[Interval], start: int, end: int) -> Completeness:
    items = list(intervals)
    filled = tuple(Interval(max(start, i.start), min(end, i.end), i.mark) for i in items
                   if i.mark is Mark.FILLED and i.end > start and i.start < end)
    return Completeness(symbol, start, end, holes(items, start, end), filled)


# ---- trading days ----------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of(symbol: str) -> ZoneInfo:
    """The time zone a symbol's trading day is counted in (its market's: China for A-shares, UTC for crypto)."""
    return _zone(markethours.for_symbol(symbol).tz)


def trading_day(symbol: str, epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, zone_of(symbol)).date()


def day_bounds(symbol: str, day: date) -> tuple[int, int]:
    """``[start, end)`` of a local day of the symbol's market, UTC epoch ms."""
    tz = zone_of(symbol)
    first = datetime(day.year, day.month, day.day, tzinfo=tz)
    after = first + timedelta(days=1)
    nxt = datetime(after.year, after.month, after.day, tzinfo=tz)  # a DST day is 23 or 25 h long
    return int(first.timestamp() * 1000), int(nxt.timestamp() * 1000)


def split_days(symbol: str, start: int, end: int) -> Iterator[tuple[date, int, int]]:
    """``[start, end)`` cut at the symbol's day boundaries: (day, start, end) per day touched."""
    while start < end:
        day = trading_day(symbol, start)
        _, day_end = day_bounds(symbol, day)
        yield day, start, min(end, day_end)
        start = day_end


def ledger_key(provider: str, symbol: str, day: date) -> str:
    """The ``md.completeness`` key: ``jvquant|600519.SH|2026-12-07``."""
    return f"{provider}|{symbol}|{day.isoformat()}"


# ---- the Avro record (marketpipe/schemas/Completeness.avsc) -------------------------------------

@dataclass(frozen=True)
class DayLedger:
    provider: str
    symbol: str
    day: date
    intervals: tuple[Interval, ...]
    updated_time: int = 0

    @property
    def key(self) -> str:
        return ledger_key(self.provider, self.symbol, self.day)

    def to_record(self) -> dict[str, object]:
        return {"provider": self.provider, "symbol": self.symbol, "trading_day": self.day.isoformat(),
                "intervals": [{"start": i.start, "end": i.end, "state": i.mark.name} for i in self.intervals],
                "updated_time": self.updated_time}

    @classmethod
    def from_record(cls, rec: dict[str, object]) -> DayLedger:
        raw = rec["intervals"]
        assert isinstance(raw, list)
        intervals = tuple(Interval(int(i["start"]), int(i["end"]), Mark[i["state"]]) for i in raw)
        updated = rec.get("updated_time", 0)
        return cls(str(rec["provider"]), str(rec["symbol"]), date.fromisoformat(str(rec["trading_day"])), intervals,
                   int(updated) if isinstance(updated, int) else 0)
