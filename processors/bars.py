"""OHLCV bars from ticks on event time: pure state and functions (the agent only stores and sends).

Per (provider, symbol) a :class:`BarBook` holds the open windows and the recently emitted ones:

* a tick goes into window ``[start, start + interval)`` with ``start = event_time // interval * interval``;
* a window is emitted once, when the **watermark** passes ``end + grace`` (the watermark is the
  largest event time seen on the stream, advanced by wall-clock time while the stream is idle so
  windows close when a symbol or the whole feed goes quiet);
* a late tick for an emitted window, within ``horizon`` after its end, updates it and produces a
  correction (``revision`` + 1) when the watermark next passes; later than that it is counted as
  dropped-late (returned to the caller, which logs and counts it) — never silently;
* windows without ticks produce nothing: no empty bars (hence no lunch-break bars);
* a window that overlaps a known, unfilled gap of its feed (``gaps``: [start, end] pairs from
  processors/status.py GapRegistry) is emitted with ``gap=True``; when the known gaps change
  (:meth:`BarBook.regap`: a gap reported after the bar went out, or filled later) an emitted bar
  within the horizon is corrected (``revision`` + 1) with the new flag.

State is plain dicts and lists so it can live in a changelogged Faust table and survive restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

PARSER_VERSION = "bars/1"
STATE_VERSION = 2  # layout of a BarBook snapshot on md.bar.state (see BarBook.from_json)


def order(tick: dict[str, Any]) -> list[Any]:
    """Position of a tick in time: event time, then its raw source position. Trades in the same
    millisecond are common; ranking them by source makes open and close independent of the order
    in which ticks arrive (several raw partitions, replays)."""
    src = tick.get("source") or {}
    return [tick["event_time"], src.get("topic", ""), src.get("partition", 0), src.get("offset", 0),
            src.get("index", 0)]


def exact_add(partials: list[float], x: float) -> None:
    """Add ``x`` to a sum kept as non-overlapping float partials (Shewchuk), so the sum is exact.

    Float addition is not associative: summing the same sizes in another order (ticks arriving
    over several partitions, or after a restart) would change a bar's volume in the last bits.
    ``math.fsum(partials)`` is the correctly rounded exact sum, whatever the order of arrival.
    """
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def new_agg(tick: dict[str, Any]) -> list[Any]:
    """[open, high, low, close, volume partials, amount partials|None, count, first, last, last_recv_ns];
    first/last are :func:`order` keys."""
    p, key = tick["price"], order(tick)
    amount = tick.get("amount")
    return [p, p, p, p, [tick["size"]], None if amount is None else [amount], 1, key, key,
            tick.get("receive_time_ns", 0)]


def add(agg: list[Any], tick: dict[str, Any]) -> None:
    p, key = tick["price"], order(tick)
    if key < agg[7]:
        agg[0], agg[7] = p, key  # an earlier tick arriving late becomes the open
    if key > agg[8]:
        agg[3], agg[8] = p, key
    agg[1] = max(agg[1], p)
    agg[2] = min(agg[2], p)
    exact_add(agg[4], tick["size"])
    if agg[5] is not None and tick.get("amount") is not None:
        exact_add(agg[5], tick["amount"])
    else:
        agg[5] = None  # one tick without an amount leaves the bar's amount unknown
    agg[6] += 1
    agg[9] = max(agg[9], tick.get("receive_time_ns", 0))


def overlaps_gap(start: int, end: int, gaps: Iterable[tuple[int, int]]) -> bool:
    """Whether the window [start, end) overlaps any gap [gap_start, gap_end]."""
    return any(gs < end and ge >= start for gs, ge in gaps)


def to_bar(provider: str, symbol: str, start: int, interval: int, agg: list[Any], revision: int,
           gap: bool = False) -> dict[str, Any]:
    return {
        "provider": provider, "symbol": symbol, "interval_ms": interval, "window_start": start,
        "window_end": start + interval, "event_time": start + interval - 1, "receive_time_ns": agg[9],
        "open": agg[0], "high": agg[1], "low": agg[2], "close": agg[3], "volume": math.fsum(agg[4]),
        "amount": None if agg[5] is None else math.fsum(agg[5]),
        "trade_count": agg[6], "revision": revision, "parser_version": PARSER_VERSION, "gap": gap,
    }


@dataclass
class BarBook:
    """Windows of one (provider, symbol). ``open``: start -> agg; ``emitted``: start -> [agg, revision, dirty,
    gap] (``gap`` missing in snapshots written before gaps were known: False)."""

    provider: str
    symbol: str
    open: dict[int, list[Any]] = field(default_factory=dict)
    emitted: dict[int, list[Any]] = field(default_factory=dict)
    max_event_time: int = 0
    partition: int = -1  # md.tick partition of this symbol
    # per raw source "topic:partition": [offset, index] of the last tick applied. Ticks from one raw
    # partition reach md.tick in order, so anything at or below it is a replay (after a crash of
    # this worker or of the normalizer upstream) and must not be counted twice.
    applied: dict[str, list[int]] = field(default_factory=dict)

    def seen_before(self, tick: dict[str, Any]) -> bool:
        src = tick.get("source")
        if not src:
            return False
        key = f"{src['topic']}:{src['partition']}"
        pos = [src["offset"], src["index"]]
        last = self.applied.get(key)
        if last is not None and pos <= last:
            return True
        self.applied[key] = pos
        return False

    def to_json(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "p": self.provider, "s": self.symbol,
                "o": {str(k): v for k, v in self.open.items()},
                "e": {str(k): v for k, v in self.emitted.items()}, "m": self.max_event_time,
                "part": self.partition, "a": self.applied}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "BarBook":
        """A book from its snapshot; snapshots written by the previous state layout are upgraded, so a
        worker upgrade does not meet its predecessor's windows as something it cannot read."""
        version = raw.get("v", 1)
        if version > STATE_VERSION:
            raise ValueError(f"bar state version {version} is newer than this worker's ({STATE_VERSION})")
        open_ = {int(k): v for k, v in raw["o"].items()}
        emitted = {int(k): v for k, v in raw["e"].items()}
        if version == 1:  # v1: plain float sums and bare event times as first/last
            for agg in [*open_.values(), *(entry[0] for entry in emitted.values())]:
                agg[4] = [agg[4]]
                agg[5] = None if agg[5] is None else [agg[5]]
                agg[7] = agg[7] if isinstance(agg[7], list) else [agg[7], "", 0, 0, 0]
                agg[8] = agg[8] if isinstance(agg[8], list) else [agg[8], "", 0, 0, 0]
        return cls(raw["p"], raw["s"], open_, emitted, raw["m"], raw.get("part", -1), raw.get("a", {}))

    def add(self, tick: dict[str, Any], interval: int, horizon: int, watermark: int) -> bool:
        """Add a tick; False when it is later than the correction horizon (the caller counts it)."""
        t = tick["event_time"]
        start = t // interval * interval
        if start + interval + horizon < watermark and start not in self.open:
            return False
        self.max_event_time = max(self.max_event_time, t)
        if start in self.open:
            add(self.open[start], tick)
        elif start in self.emitted:
            add(self.emitted[start][0], tick)
            self.emitted[start][2] = True
        else:
            self.open[start] = new_agg(tick)
        return True

    def regap(self, gaps: Iterable[tuple[int, int]], interval: int) -> bool:
        """The feed's known gaps changed: emitted bars whose gap flag is now wrong become due for a
        correction (at the next :meth:`close`). True when any did."""
        gaps = list(gaps)
        changed = False
        for start, entry in self.emitted.items():
            if overlaps_gap(start, start + interval, gaps) != (len(entry) > 3 and entry[3]):
                entry[2] = changed = True
        return changed

    def close(self, watermark: int, interval: int, grace: int, horizon: int,
              gaps: Iterable[tuple[int, int]] = ()) -> list[dict[str, Any]]:
        """Bars (first emissions and corrections) whose time has come at ``watermark``; ``gaps``: the
        feed's unfilled gap windows."""
        gaps = list(gaps)
        out = []
        for start in sorted(s for s in self.open if s + interval + grace <= watermark):
            agg = self.open.pop(start)
            gap = overlaps_gap(start, start + interval, gaps)
            out.append(to_bar(self.provider, self.symbol, start, interval, agg, 0, gap))
            self.emitted[start] = [agg, 0, False, gap]
        for start, entry in sorted(self.emitted.items()):
            if entry[2] and start + interval + grace <= watermark:
                gap = overlaps_gap(start, start + interval, gaps)
                entry[1] += 1
                entry[2] = False
                entry[3:] = [gap]
                out.append(to_bar(self.provider, self.symbol, start, interval, entry[0], entry[1], gap))
        for start in [s for s in self.emitted if s + interval + horizon < watermark]:
            del self.emitted[start]  # past the correction horizon: nothing can change it any more
        return out


def offline_bars(ticks: Iterable[dict[str, Any]], interval: int) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Reference implementation: final bars from a complete set of ticks, order-independent."""
    books: dict[tuple[str, str, int], list[Any]] = {}
    for tick in sorted(ticks, key=order):
        key = (tick["provider"], tick["symbol"], tick["event_time"] // interval * interval)
        if key in books:
            add(books[key], tick)
        else:
            books[key] = new_agg(tick)
    return {k: to_bar(k[0], k[1], k[2], interval, agg, 0) for k, agg in books.items()}
