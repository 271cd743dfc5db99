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
* a window that overlaps a known, unfilled gap of its feed (``gaps``: [start, end] pairs from the
  GapRegistry in marketpipe/processors/status.py) is emitted with ``gap=True``; when the known gaps
  change (:meth:`BarBook.regap`: a gap reported after the bar went out, or filled later) an emitted
  bar within the horizon is corrected (``revision`` + 1) with the new flag.

A book snapshots to JSON (:meth:`BarBook.to_json`) for the compacted ``md.bar.state`` topic, so
open windows survive a restart or a rebalance; earlier snapshot layouts are upgraded on load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

PARSER_VERSION = "bars/1"
STATE_VERSION = 3  # layout of a BarBook snapshot on md.bar.state (see BarBook.from_json)


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


@dataclass(slots=True)
class Aggregate:
    """One window's running OHLCV. ``first``/``last`` are :func:`order` keys of the ticks that set
    open and close; volume and amount are exact sums kept as Shewchuk partials (None: unknown)."""

    open: float
    high: float
    low: float
    close: float
    volume: list[float]
    amount: list[float] | None
    count: int
    first: list[Any]
    last: list[Any]
    last_recv_ns: int

    @classmethod
    def of(cls, tick: dict[str, Any]) -> "Aggregate":
        p, key = tick["price"], order(tick)
        amount = tick.get("amount")
        return cls(p, p, p, p, [tick["size"]], None if amount is None else [amount], 1, key, key,
                   tick.get("receive_time_ns", 0))

    def add(self, tick: dict[str, Any]) -> None:
        p, key = tick["price"], order(tick)
        if key < self.first:
            self.open, self.first = p, key  # an earlier tick arriving late becomes the open
        if key > self.last:
            self.close, self.last = p, key
        self.high = max(self.high, p)
        self.low = min(self.low, p)
        exact_add(self.volume, tick["size"])
        if self.amount is not None and tick.get("amount") is not None:
            exact_add(self.amount, tick["amount"])
        else:
            self.amount = None  # one tick without an amount leaves the bar's amount unknown
        self.count += 1
        self.last_recv_ns = max(self.last_recv_ns, tick.get("receive_time_ns", 0))

    def to_json(self) -> dict[str, Any]:
        return {"o": self.open, "h": self.high, "l": self.low, "c": self.close, "v": self.volume,
                "a": self.amount, "n": self.count, "f": self.first, "t": self.last, "r": self.last_recv_ns}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Aggregate":
        return cls(raw["o"], raw["h"], raw["l"], raw["c"], raw["v"], raw["a"], raw["n"], raw["f"], raw["t"],
                   raw["r"])

    @classmethod
    def from_slots(cls, slots: list[Any], version: int) -> "Aggregate":
        """The positional layout of snapshot versions 1 and 2 (v1: plain float sums, bare event times)."""
        o, h, low, c, vol, amount, n, first, last, recv = slots
        if version == 1:
            vol, amount = [vol], None if amount is None else [amount]
            first = first if isinstance(first, list) else [first, "", 0, 0, 0]
            last = last if isinstance(last, list) else [last, "", 0, 0, 0]
        return cls(o, h, low, c, vol, amount, n, first, last, recv)


@dataclass(slots=True)
class Emitted:
    """A window already emitted, kept until the correction horizon passes."""

    agg: Aggregate
    revision: int = 0
    dirty: bool = False  # a late tick or a change of known gaps is due for a correction
    gap: bool = False  # emitted as overlapping a known gap of its feed


def overlaps_gap(start: int, end: int, gaps: Iterable[tuple[int, int]]) -> bool:
    """Whether the window [start, end) overlaps any gap [gap_start, gap_end]."""
    return any(gs < end and ge >= start for gs, ge in gaps)


def to_bar(provider: str, symbol: str, start: int, interval: int, agg: Aggregate, revision: int,
           gap: bool = False) -> dict[str, Any]:
    return {
        "provider": provider, "symbol": symbol, "interval_ms": interval, "window_start": start,
        "window_end": start + interval, "event_time": start + interval - 1, "receive_time_ns": agg.last_recv_ns,
        "open": agg.open, "high": agg.high, "low": agg.low, "close": agg.close, "volume": math.fsum(agg.volume),
        "amount": None if agg.amount is None else math.fsum(agg.amount),
        "trade_count": agg.count, "revision": revision, "parser_version": PARSER_VERSION, "gap": gap,
    }


@dataclass
class BarBook:
    """Windows of one (provider, symbol): ``open`` windows and recently ``emitted`` ones, by start."""

    provider: str
    symbol: str
    open: dict[int, Aggregate] = field(default_factory=dict)
    emitted: dict[int, Emitted] = field(default_factory=dict)
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

    @property
    def pending(self) -> bool:
        """Something is still to be emitted: an open window or a corrected one."""
        return bool(self.open) or any(e.dirty for e in self.emitted.values())

    def to_json(self) -> dict[str, Any]:
        return {"v": STATE_VERSION, "p": self.provider, "s": self.symbol,
                "o": {str(k): v.to_json() for k, v in self.open.items()},
                "e": {str(k): {"g": e.agg.to_json(), "rev": e.revision, "d": e.dirty, "gap": e.gap}
                      for k, e in self.emitted.items()},
                "m": self.max_event_time, "part": self.partition, "a": self.applied}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "BarBook":
        """A book from its snapshot; snapshots written by earlier state layouts are upgraded, so a
        worker upgrade does not meet its predecessor's windows as something it cannot read."""
        version = raw.get("v", 1)
        if version > STATE_VERSION:
            raise ValueError(f"bar state version {version} is newer than this worker's ({STATE_VERSION})")
        if version < 3:  # positional layouts
            open_ = {int(k): Aggregate.from_slots(v, version) for k, v in raw["o"].items()}
            emitted = {int(k): Emitted(Aggregate.from_slots(v[0], version), v[1], v[2], len(v) > 3 and bool(v[3]))
                       for k, v in raw["e"].items()}
        else:
            open_ = {int(k): Aggregate.from_json(v) for k, v in raw["o"].items()}
            emitted = {int(k): Emitted(Aggregate.from_json(v["g"]), v["rev"], v["d"], v.get("gap", False))
                       for k, v in raw["e"].items()}
        return cls(raw["p"], raw["s"], open_, emitted, raw["m"], raw.get("part", -1), raw.get("a", {}))

    def add(self, tick: dict[str, Any], interval: int, horizon: int, watermark: int) -> bool:
        """Add a tick; False when it is later than the correction horizon (the caller counts it)."""
        t = tick["event_time"]
        start = t // interval * interval
        if start + interval + horizon < watermark and start not in self.open:
            return False
        self.max_event_time = max(self.max_event_time, t)
        if start in self.open:
            self.open[start].add(tick)
        elif start in self.emitted:
            entry = self.emitted[start]
            entry.agg.add(tick)
            entry.dirty = True
        else:
            self.open[start] = Aggregate.of(tick)
        return True

    def regap(self, gaps: Iterable[tuple[int, int]], interval: int) -> bool:
        """The feed's known gaps changed: emitted bars whose gap flag is now wrong become due for a
        correction (at the next :meth:`close`). True when any did."""
        gaps = list(gaps)
        changed = False
        for start, entry in self.emitted.items():
            if overlaps_gap(start, start + interval, gaps) != entry.gap:
                entry.dirty = changed = True
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
            self.emitted[start] = Emitted(agg, gap=gap)
        for start, entry in sorted(self.emitted.items()):
            if entry.dirty and start + interval + grace <= watermark:
                entry.revision += 1
                entry.dirty = False
                entry.gap = overlaps_gap(start, start + interval, gaps)
                out.append(to_bar(self.provider, self.symbol, start, interval, entry.agg, entry.revision, entry.gap))
        for start in [s for s in self.emitted if s + interval + horizon < watermark]:
            del self.emitted[start]  # past the correction horizon: nothing can change it any more
        return out


def offline_bars(ticks: Iterable[dict[str, Any]], interval: int) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Reference implementation: final bars from a complete set of ticks, order-independent."""
    books: dict[tuple[str, str, int], Aggregate] = {}
    for tick in sorted(ticks, key=order):
        key = (tick["provider"], tick["symbol"], tick["event_time"] // interval * interval)
        if key in books:
            books[key].add(tick)
        else:
            books[key] = Aggregate.of(tick)
    return {k: to_bar(k[0], k[1], k[2], interval, agg, 0) for k, agg in books.items()}
