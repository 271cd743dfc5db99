"""Feed health from the raw headers and the decoded records: pure state, fed per frame, with an
injected clock; it returns ``FeedStatus`` records (marketpipe/schemas/FeedStatus.avsc) for ``md.status``.

* **Gaps** (per connection). Producers number every frame of a connection ``seq`` 1, 2, 3, ...
  across reconnects, and count sessions (``session``): see marketpipe/rawframe.py. So after a
  frame ``(session s, seq n)`` the next one must be ``seq n+1``:

  - ``seq n+1`` in a new session: a reconnect; nothing was lost between the sockets but the time
    without data is a gap of the feed (the producer reports the reconnect itself too);
  - ``seq > n+1``: frames were lost (``seq_from``..``seq_to``);
  - ``seq <= n`` with a later Kafka offset: the producer process started again (``kill -9``, a
    crash) under the same connection id without a clean goodbye: the frames it held are lost,
    how many is unknown.

  A frame at or below the last Kafka offset seen on its partition is a replay (this worker
  restarted) and judges nothing. A connection seen for the first time is only remembered.
  The gap's window (``gap_start``..``gap_end``) is in receive time: last frame before, first after.
* **A/B lines** (``produce --line``): the two lines of a connection share its id and are numbered
  each. A gap of one line that the other line covered is ``line_gap`` (the line's health, no data
  lost); only what neither line delivered is a ``gap``. A line ``line_down_ms`` behind the other
  (receive time) is ``line_down``, then ``line_up`` when it delivers again.
* **Stale symbols**: a symbol whose market is open (marketpipe/market/markethours.py) and that had no
  record for ``stale_factor`` times its usual interval (an average of its recent intervals while
  open, at least ``min_stale_seconds``) is reported once as ``stale``, and ``fresh`` when records
  come again. A closed market is never stale, and the night does not count as an interval.
* **Order of trades** (jvQuant level 2: trades carry the exchange's trade number, which goes up):
  a frame with numbers at or below the highest seen for its symbol is ``duplicate`` when they
  were in the symbol's previous frame (the provider sent a frame twice) and ``reordered``
  otherwise (a repeat of an older frame reads as reordered too); reported once per symbol and kind
  per ``disorder_quiet_seconds``.
* **Stats** (per provider and clock minute): frames, frames per second, and receive latency
  (producer receive time - event time) p50/p99 of the minute's trades and quotes.

:class:`GapRegistry` is what the bar side knows about gaps: ``gap`` and ``filled`` records in,
the unfilled gap windows of a provider out.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from marketpipe.market import markethours
from marketpipe.rawframe import H_BACKFILL, RawMeta, extra_header, line_of

if TYPE_CHECKING:
    from marketpipe.processors.completeness import CompletenessFeed

#: record schemas whose event_time is the moment of the event (a kline's is its bar start)
LATENCY_SCHEMAS = frozenset({"Tick", "Quote", "Depth"})
MAX_LATENCY_SAMPLES = 20_000  # per provider and minute; beyond that every k-th sample is kept


def calendar_for_symbol(symbol: str) -> Any:
    """Market calendar of a canonical symbol (markethours.for_symbol)."""
    return markethours.for_symbol(symbol)


def status_record(provider: str, kind: str, event_time: int, **fields: Any) -> dict[str, Any]:
    """A ``FeedStatus`` record; unnamed fields take the schema defaults."""
    return {"provider": provider, "kind": kind, "event_time": int(event_time), **fields}


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    idx = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[idx]


@dataclass
class _Conn:
    session: int
    seq: int
    recv_ms: int


@dataclass
class _Line:
    first_ms: int  # receive time of the line's first frame seen
    down: bool = False
    gaps: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=32))  # its recent gaps (receive ms)


@dataclass
class _Pair:
    provider: str
    lines: dict[str, _Line] = field(default_factory=dict)  # "A" / "B" -> its state


@dataclass
class _Symbol:
    last: float  # clock seconds of the latest record
    interval: float = 0.0  # running average of the intervals while open (s)
    samples: int = 0
    stale: bool = False


@dataclass
class _Order:
    highest: int = -1  # the highest trade number seen for the symbol
    previous: list[int] = field(default_factory=list)  # the numbers of its previous frame (a handful)
    quiet_until: dict[str, float] = field(default_factory=dict)  # kind -> no report before


@dataclass
class _Minute:
    start: int  # clock minute (epoch s // 60)
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    seen: int = 0


class FeedMonitor:
    def __init__(self, clock: Callable[[], float] = time.time, *, stale_factor: float = 5.0,
                 min_stale_seconds: float = 10.0, min_samples: int = 5, max_interval_seconds: float = 300.0,
                 calendar_of: Callable[[str], Any] = calendar_for_symbol,
                 disorder_quiet_seconds: float = 60.0, line_down_ms: int = 5_000, line_skew_ms: int = 2_000) -> None:
        self.clock = clock
        self.stale_factor = stale_factor
        self.min_stale_seconds = min_stale_seconds
        self.min_samples = min_samples
        self.max_interval_seconds = max_interval_seconds
        self.calendar_of = calendar_of
        self.conns: dict[str, _Conn] = {}  # connection id, or "connection/line" for an A/B line
        self.pairs: dict[str, _Pair] = {}  # A/B capture: connection id -> its lines
        self.line_down_ms = line_down_ms
        self.line_skew_ms = line_skew_ms
        self.offsets: dict[tuple[str, int], int] = {}  # (raw topic, partition) -> last offset judged
        self.symbols: dict[tuple[str, str], _Symbol] = {}
        self.minutes: dict[str, _Minute] = {}
        self.calendars: dict[str, Any] = {}
        self.open_at: dict[str, tuple[int, bool]] = {}  # symbol -> (second asked, open?)
        self.disorder_quiet_seconds = disorder_quiet_seconds
        self.order: dict[tuple[str, str], _Order] = {}
        #: the last :meth:`frame` was a replay (this worker judged it before): it judges nothing
        self.replayed = False

    # ---- per frame --------------------------------------------------------------------------
    def frame(self, provider: str, meta: RawMeta, topic: str = "", partition: int = 0,
              offset: int = -1) -> list[dict[str, Any]]:
        """One raw frame (its headers and Kafka position); a ``gap`` record when one shows."""
        now = self.clock()
        self._minute(provider, now).messages += 1
        self.replayed = False
        if offset >= 0:
            pos = (topic, partition)
            if offset <= self.offsets.get(pos, -1):
                self.replayed = True
                return []  # a replay of frames already judged
            self.offsets[pos] = offset
        if not meta.connection or meta.seq <= 0:
            return []  # frames from elsewhere (a capture replayed without headers)
        recv_ms = meta.recv_ns // 1_000_000 if meta.recv_ns else int(now * 1000)
        line = line_of(meta)
        if line:
            return self._line_frame(provider, meta, line, recv_ms, now)
        gap = self._gap(provider, meta.connection, meta, recv_ms, now)
        return [gap] if gap is not None else []

    def _gap(self, provider: str, key: str, meta: RawMeta, recv_ms: int, now: float) -> dict[str, Any] | None:
        """The frame's place in its connection's (or line's) numbering: a ``gap`` record when frames
        or time are missing before it."""
        last = self.conns.get(key)
        if last is None:
            self.conns[key] = _Conn(meta.session, meta.seq, recv_ms)
            return None
        if meta.seq == last.seq + 1 and meta.session == last.session:  # the hot path: no allocation
            last.seq, last.recv_ms = meta.seq, recv_ms
            return None
        self.conns[key] = _Conn(meta.session, meta.seq, recv_ms)
        if meta.seq == last.seq + 1:
            reason = f"reconnect: session {last.session} -> {meta.session}"
            seq_from = seq_to = 0
        elif meta.seq > last.seq + 1:
            reason = f"{meta.seq - last.seq - 1} frames missing"
            seq_from, seq_to = last.seq + 1, meta.seq - 1
        else:
            reason = (f"producer restarted without a clean disconnect: seq {last.seq} -> {meta.seq}, "
                      f"session {last.session} -> {meta.session}; frames it held are lost")
            seq_from, seq_to = last.seq + 1, 0
        return status_record(provider, "gap", int(now * 1000), connection=meta.connection,
                             session=meta.session, reason=reason, silent_ms=max(0, recv_ms - last.recv_ms),
                             gap_start=last.recv_ms, gap_end=recv_ms, seq_from=seq_from, seq_to=seq_to)

    # ---- A/B lines --------------------------------------------------------------------------
    def _line_frame(self, provider: str, meta: RawMeta, line: str, recv_ms: int, now: float) -> list[dict[str, Any]]:
        """A frame of one line of an A/B pair: the line's own numbering, its return after
        ``line_down``, and a gap of it judged against the other line (:meth:`_both_missed`)."""
        conn = meta.connection
        key = f"{conn}/{line}"  # the two lines share the connection id but number their frames each
        pair = self.pairs.get(conn)
        if pair is None:
            pair = self.pairs[conn] = _Pair(provider)
        state = pair.lines.get(line)
        if state is None:
            state = pair.lines[line] = _Line(recv_ms)
        out: list[dict[str, Any]] = []
        if state.down:
            state.down = False
            before = self.conns[key].recv_ms if key in self.conns else recv_ms
            out.append(status_record(provider, "line_up", int(now * 1000), connection=conn, line=line,
                                     session=meta.session, silent_ms=max(0, recv_ms - before), gap_start=before,
                                     gap_end=recv_ms, reason=f"line {line} delivers again"))
        gap = self._gap(provider, key, meta, recv_ms, now)
        if gap is None:
            return out
        gap["line"] = line
        start, end = gap["gap_start"], gap["gap_end"]
        hole = self._both_missed(pair, conn, line, start, end)
        state.gaps.append((start, end))
        if hole is None:  # the other line delivered over it: the line's health, not the data's
            gap["kind"], gap["reason"] = "line_gap", f"line {line}: {gap['reason']}; the other line delivered"
        else:
            gap["gap_start"], gap["gap_end"] = hole
            gap["silent_ms"] = hole[1] - hole[0]
            gap["reason"] = f"both lines missed it (line {line}: {gap['reason']})"
        out.append(gap)
        return out

    def _both_missed(self, pair: _Pair, conn: str, line: str, start: int, end: int) -> tuple[int, int] | None:
        """The part of ``line``'s gap [start, end] that no other line covered, or None. A line covers
        from its first frame to its latest (plus ``line_skew_ms``: the lines' frames interleave in
        the partition only as closely as their hosts' receive times), less its own gaps."""
        holes: list[tuple[int, int]] = []
        for other, state in pair.lines.items():
            if other == line:
                continue
            last = self.conns[f"{conn}/{other}"].recv_ms
            uncovered = [(start, min(end, state.first_ms))] if state.first_ms > start + self.line_skew_ms else []
            uncovered += [(max(start, s), min(end, e)) for s, e in state.gaps if s < end and e > start]
            if last + self.line_skew_ms < end:
                uncovered.append((max(start, last), end))
            if not uncovered:
                return None  # one line covered all of it
            holes += uncovered
        if not holes:
            return (start, end)  # no other line known: a gap as without A/B
        return (min(s for s, _ in holes), max(e for _, e in holes))

    def lines(self) -> list[dict[str, Any]]:
        """``line_down`` for a line silent ``line_down_ms`` (receive time) behind the other line of its pair."""
        out: list[dict[str, Any]] = []
        now_ms = int(self.clock() * 1000)
        for conn, pair in self.pairs.items():
            if len(pair.lines) < 2:
                continue
            last = {line: self.conns[f"{conn}/{line}"].recv_ms for line in pair.lines}
            newest = max(last.values())
            for line, state in pair.lines.items():
                silent = newest - last[line]
                if not state.down and silent > self.line_down_ms:
                    state.down = True
                    out.append(status_record(pair.provider, "line_down", now_ms, connection=conn, line=line,
                                             silent_ms=silent, gap_start=last[line],
                                             reason=f"line {line} silent {silent} ms while the other line delivers"))
        return out

    # ---- per record -------------------------------------------------------------------------
    def record(self, provider: str, schema: str, symbol: str, event_time: int, recv_ns: int) -> list[dict[str, Any]]:
        """One decoded record: its symbol is alive; trades and quotes give a latency sample."""
        now = self.clock()
        self.latency(provider, schema, event_time, recv_ns, now)
        return self.alive(provider, symbol, now) if symbol else []

    def latency(self, provider: str, schema: str, event_time: int, recv_ns: int, now: float) -> None:
        """A latency sample (receive time - event time) for the minute of ``now``, of a trade or quote
        only: a kline's event time is its bar's start."""
        if schema not in LATENCY_SCHEMAS or not (recv_ns and event_time):
            return
        minute = self._minute(provider, now)
        minute.seen += 1
        stride = 1 + minute.seen // MAX_LATENCY_SAMPLES
        if minute.seen % stride == 0:
            minute.latencies.append((recv_ns - event_time * 1_000_000) / 1e6)  # exact in ints first

    def alive(self, provider: str, symbol: str, now: float) -> list[dict[str, Any]]:
        """``symbol`` had a record at ``now``: a ``fresh`` record when it was stale. Once per symbol and
        frame is enough: records of one frame share its ``now``, so a second one adds no interval."""
        key = (provider, symbol)
        st = self.symbols.get(key)
        if st is None:
            self.symbols[key] = _Symbol(now)
            return []
        gap = now - st.last
        if 0 < gap <= self.max_interval_seconds and self._is_open(symbol, st.last):
            st.samples += 1
            st.interval += (gap - st.interval) / min(st.samples, 20)  # mean, then a moving average
        st.last = now
        if st.stale:
            st.stale = False
            return [status_record(provider, "fresh", int(now * 1000), symbol=symbol, silent_ms=int(gap * 1000))]
        return []

    def trades(self, provider: str, symbol: str, numbers: list[int]) -> list[dict[str, Any]]:
        """The trade numbers one frame carried for ``symbol``: a ``duplicate`` or ``reordered``
        record when some are at or below the highest seen before."""
        if self.replayed or not numbers:
            return []
        st = self.order.get((provider, symbol))
        if st is None:
            st = self.order[(provider, symbol)] = _Order()
        if min(numbers) > st.highest:  # in order, as nearly every frame is: nothing to compare
            st.highest, st.previous = max(numbers), numbers
            return []
        late = [n for n in numbers if n <= st.highest]
        kind = "duplicate" if all(n in st.previous for n in late) else "reordered"
        highest_before = st.highest
        st.highest, st.previous = max(st.highest, *numbers), numbers
        now = self.clock()
        if st.quiet_until.get(kind, 0.0) > now:
            return []
        st.quiet_until[kind] = now + self.disorder_quiet_seconds
        what = "again (a frame sent twice)" if kind == "duplicate" else "after higher ones (frames out of order)"
        return [status_record(provider, kind, int(now * 1000), symbol=symbol,
                              reason=f"{len(late)} trade numbers at or below {highest_before} arrived {what}")]

    # ---- on the clock -----------------------------------------------------------------------
    def tick(self) -> list[dict[str, Any]]:
        """Stale symbols and finished minutes; call often (each batch, each second)."""
        now = self.clock()
        out: list[dict[str, Any]] = self.lines() if self.pairs else []
        for (provider, symbol), st in self.symbols.items():
            if st.stale or st.samples < self.min_samples:
                continue
            limit = max(self.min_stale_seconds, self.stale_factor * st.interval)
            silent = now - st.last
            if silent > limit and self._is_open(symbol, now):
                st.stale = True
                out.append(status_record(provider, "stale", int(now * 1000), symbol=symbol,
                                         silent_ms=int(silent * 1000),
                                         reason=f"no update for {silent:.0f} s, usually every {st.interval:.1f} s"))
        minute_now = int(now // 60)
        for provider, minute in list(self.minutes.items()):
            if minute.start < minute_now:
                out.append(self._stats(provider, minute))
                del self.minutes[provider]
        return out

    def _stats(self, provider: str, minute: _Minute) -> dict[str, Any]:
        lat = sorted(minute.latencies)
        return status_record(provider, "stats", (minute.start + 1) * 60_000 - 1, messages=minute.messages,
                             rate=minute.messages / 60.0, latency_p50_ms=percentile(lat, 50),
                             latency_p99_ms=percentile(lat, 99))

    def _minute(self, provider: str, now: float) -> _Minute:
        minute = self.minutes.get(provider)
        if minute is None:
            minute = self.minutes[provider] = _Minute(int(now // 60))
        return minute

    def _is_open(self, symbol: str, at: float) -> bool:
        second = int(at)
        cached = self.open_at.get(symbol)
        if cached is not None and cached[0] == second:
            return cached[1]  # the calendar is asked once a second per symbol, not once per record
        cal = self.calendars.get(symbol)
        if cal is None:
            cal = self.calendars[symbol] = self.calendar_of(symbol)
        is_open = bool(cal.is_open_at(at))
        self.open_at[symbol] = (second, is_open)
        return is_open


@dataclass
class GapRegistry:
    """Known gaps per provider from ``gap`` / ``filled`` records; bars ask for the unfilled ones.

    A gap is identified by its connection and ``gap_start`` (receive time of the connection's last
    frame before it, which the producer that fills it knows too); ``filled`` names the same pair
    (e.g. after a kline backfill covered it), and may arrive before the gap itself. Gaps older
    than ``keep_ms`` before the newest one are forgotten: no bar that old can still be corrected.
    """

    keep_ms: int = 3_600_000
    #: provider -> (connection, gap_start) -> [gap_end, filled]
    gaps: dict[str, dict[tuple[str, int], list[Any]]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> bool:
        """Take one FeedStatus record; True when the provider's unfilled gaps changed."""
        kind = record.get("kind")
        if kind not in ("gap", "filled") or not record.get("gap_start"):
            return False
        known = self.gaps.setdefault(record["provider"], {})
        key = (record.get("connection", ""), int(record["gap_start"]))
        entry = known.get(key)
        if kind == "filled":
            if entry is not None and entry[1]:
                return False
            known[key] = [entry[0] if entry else int(record.get("gap_end") or record["gap_start"]), True]
            changed = entry is not None
        else:
            if entry is not None:
                return False  # seen already (a replay), or filled before it was reported
            known[key] = [int(record.get("gap_end") or record["gap_start"]), False]
            changed = True
        newest = max(end for end, _ in known.values())
        for old in [k for k, (end, _) in known.items() if end < newest - self.keep_ms]:
            del known[old]
        return changed

    def open_gaps(self, provider: str) -> list[tuple[int, int]]:
        """Unfilled gap windows [start, end] (receive time, ms) of the provider."""
        return sorted((start, end) for (_, start), (end, filled) in self.gaps.get(provider, {}).items()
                      if not filled)



class StatusHook:
    """The processor's side of feed health: feeds a :class:`FeedMonitor` from the normalize path and
    writes what it says to ``md.status`` (through the agent's output, in the batch's flush) and to
    the Prometheus gauges. ``out`` is anything with ``send(topic, schema, key, record, timestamp)``."""

    def __init__(self, monitor: FeedMonitor | None = None, completeness: CompletenessFeed | None = None) -> None:
        self.monitor = monitor or FeedMonitor()
        self.stale: dict[str, set[str]] = {}
        self.completeness = completeness  # the completeness ledger (the live processor only)

    def frame(self, out: Any, provider: str, frame: Any, records: Iterable[Any]) -> None:
        """One raw frame (a ``RawFrame``) and the records decoded from it."""
        meta = frame.meta
        found = self.monitor.frame(provider, meta, frame.topic, frame.partition, frame.offset)
        book = self.completeness.book if self.completeness is not None else None
        if book is not None:
            for gap in found:  # before the frame: the gap ends where this frame's coverage starts
                if gap["kind"] == "gap":  # not a line's own (A/B): the other line delivered
                    book.gap(provider, gap["connection"], gap["gap_start"], gap["gap_end"])
        monitor = self.monitor
        # a backfilled frame is history fetched after a gap: it says nothing about whether its
        # symbols are alive now (a muted symbol's backfilled klines must not make it fresh)
        live = extra_header(meta, H_BACKFILL) is None
        now = monitor.clock() if live else 0.0  # once per frame: its records share it
        symbols: dict[str, None] = {}  # in record order: the order of any ``fresh`` records
        numbers: dict[str, list[int]] = {}
        for rec in records:
            symbols[rec.key] = None
            if live:
                r = rec.record
                monitor.latency(provider, rec.schema, r.get("event_time", 0), r.get("receive_time_ns", 0), now)
                trade_id = r.get("trade_id") if rec.schema == "Tick" else None
                if trade_id and trade_id.isdigit():
                    numbers.setdefault(rec.key, []).append(int(trade_id))
        if live:
            for symbol in symbols:
                if symbol:
                    found += monitor.alive(provider, symbol, now)
            for symbol, ids in numbers.items():
                found += monitor.trades(provider, symbol, ids)
        if book is not None and meta.connection and meta.recv_ns:
            book.frame(provider, meta.connection, meta.recv_ns // 1_000_000, symbols)
        if found:
            self.send(out, found)

    def batch(self, out: Any) -> None:
        """Once per batch: stale symbols and finished minutes; the completeness ledger's due days."""
        found = self.monitor.tick()
        if found:
            self.send(out, found)
        if self.completeness is not None:
            self.completeness.write(out)

    def send(self, out: Any, records: list[dict[str, Any]]) -> None:
        from marketpipe.kafka import topics
        from marketpipe.processors import metrics

        for rec in records:
            provider, kind = rec["provider"], rec["kind"]
            metrics.STATUS_EVENTS.labels(provider, kind).inc()
            if kind == "gap":
                metrics.FEED_GAP_SECONDS.labels(provider).inc(rec["silent_ms"] / 1000)
            elif kind in ("stale", "fresh"):
                stale = self.stale.setdefault(provider, set())
                (stale.add if kind == "stale" else stale.discard)(rec["symbol"])
                metrics.FEED_STALE.labels(provider).set(len(stale))
                self._stale_spell(rec)
            elif kind == "stats":
                metrics.FEED_RATE.labels(provider).set(rec["rate"])
                for q, name in (("0.5", "latency_p50_ms"), ("0.99", "latency_p99_ms")):
                    if rec[name] is not None:
                        metrics.FEED_LATENCY.labels(provider, q).set(rec[name])
            out.send(topics.MD_STATUS, "FeedStatus", provider, rec, rec["event_time"])

    def _stale_spell(self, rec: dict[str, Any]) -> None:
        """A stale spell is a gap of its symbol in the completeness ledger."""
        if self.completeness is None:
            return
        book, since = self.completeness.book, rec["event_time"] - rec["silent_ms"]
        if rec["kind"] == "stale":
            book.went_stale(rec["provider"], rec["symbol"], since)
        else:
            book.came_back(rec["provider"], rec["symbol"], since, rec["event_time"])
