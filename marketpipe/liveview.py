"""What the demo shows: a pure state fed with decoded records, and its rendering with rich.

:class:`LiveState` only counts and remembers (testable without a terminal or Kafka);
:func:`render` turns it into a rich layout refreshed in place.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass
class RateMeter:
    """Events per second over a sliding window."""

    window: float = 5.0
    stamps: deque[float] = field(default_factory=deque)

    def add(self, n: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for _ in range(n):
            self.stamps.append(now)
        self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        return len(self.stamps) / self.window

    def _trim(self, now: float) -> None:
        while self.stamps and self.stamps[0] < now - self.window:
            self.stamps.popleft()


def nearest_rank(ordered: list[float], p: float) -> float | None:
    """The ``p``-th percentile of sorted values (the nearest one), None without values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class Percentiles:
    """Keeps a bounded sorted sample of latencies (reservoir of the newest values)."""

    def __init__(self, cap: int = 20000) -> None:
        self.cap = cap
        self.recent: deque[float] = deque()
        self.sorted: list[float] = []

    def add(self, value: float) -> None:
        self.recent.append(value)
        bisect.insort(self.sorted, value)
        if len(self.recent) > self.cap:
            old = self.recent.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def pct(self, p: float) -> float | None:
        return nearest_rank(self.sorted, p)

    def __len__(self) -> int:
        return len(self.sorted)


@dataclass
class LiveState:
    watch_symbols: int = 8
    counts: Counter[str] = field(default_factory=Counter)  # records per logical topic
    frame_rates: dict[str, RateMeter] = field(default_factory=dict)  # per provider
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    bars: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    orders: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10))
    dlq: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=3))
    latency_ms: Percentiles = field(default_factory=Percentiles)
    #: the tick latencies read in the last ``recent_s`` seconds (read time ns, ms): the start-up's
    #: first minute (a new broker is slow then) fills the whole run's tail, not this one
    recent_s: float = 30.0
    latency_recent: deque[tuple[int, float]] = field(default_factory=deque)
    # frames received before this view started (a replay after a restart, an earlier run's backlog)
    # say nothing about this run's latency
    since_ns: int = field(default_factory=time.time_ns)
    replayed: int = 0
    # False until the reader has drained its first backlog: records it reads late because its own
    # consumer was still starting would be charged to the pipeline
    measuring: bool = True
    # per topic, how its records are framed: "id 7" (registry schema id) or "single-object"
    framings: dict[str, set[str]] = field(default_factory=dict)

    def on_raw(self, provider: str, now: float | None = None) -> None:
        self.counts[f"raw.{provider}"] += 1
        self.frame_rates.setdefault(provider, RateMeter()).add(1, now)

    def on_record(self, topic: str, schema: str, record: dict[str, Any], read_ns: int | None = None,
                  schema_id: int | None = None) -> None:
        self.counts[topic] += 1
        self.framings.setdefault(topic, set()).add(f"{schema} id {schema_id}" if schema_id is not None
                                                   else f"{schema} single-object")
        if schema == "Tick":
            received = record.get("receive_time_ns") or 0
            if received >= self.since_ns and self.measuring:
                read = read_ns or time.time_ns()
                ms = (read - received) / 1e6
                self.latency_ms.add(ms)
                recent = self.latency_recent
                recent.append((read, ms))
                horizon = read - int(self.recent_s * 1e9)
                while recent[0][0] < horizon:
                    recent.popleft()
            elif received:
                self.replayed += 1
        elif schema == "Quote":
            sym = record["symbol"]
            if sym in self.quotes or len(self.quotes) < self.watch_symbols:
                self.quotes[sym] = record
        elif schema == "Bar":
            self.bars.appendleft(record)
        elif schema == "OrderEvent":
            self.orders.appendleft(record)
        elif schema == "DeadLetter":
            self.dlq.appendleft(record)

    def summary(self) -> dict[str, Any]:
        return {
            "records": dict(sorted(self.counts.items())),
            "dlq": self.counts.get("md.dlq", 0),
            "latency_ms_p50": self.latency_ms.pct(50),
            "latency_ms_p90": self.latency_ms.pct(90),
            "latency_ms_p99": self.latency_ms.pct(99),
            "latency_ms_max": self.latency_ms.pct(100),
            "latency_samples": len(self.latency_ms),
            "latency_recent_s": self.recent_s,
            "latency_recent_ms_p99": nearest_rank(sorted(ms for _, ms in self.latency_recent), 99),
            "latency_recent_samples": len(self.latency_recent),
            "framings": {topic: ", ".join(sorted(f)) for topic, f in sorted(self.framings.items())},
        }


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def _hms(ms: int | None, symbol: str) -> str:
    """The market's own clock time with its zone: 09:31:05 CST for an A-share, 09:31:05 EDT for a US stock."""
    if not ms:
        return "-"
    from marketpipe.market.markethours import local_time

    return local_time(ms, symbol).strftime("%H:%M:%S %Z")


def render(state: LiveState, processes: Iterable[tuple[str, int, str]], elapsed: float) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    procs = Table(title="processes", expand=True)
    for col in ("name", "pid", "state"):
        procs.add_column(col)
    for name, pid, st in processes:
        procs.add_row(name, str(pid), st)

    rates = Table(title="raw frames/s", expand=True)
    rates.add_column("provider")
    rates.add_column("frames/s", justify="right")
    rates.add_column("total", justify="right")
    for provider, meter in sorted(state.frame_rates.items()):
        rates.add_row(provider, f"{meter.rate():.0f}", str(state.counts.get(f"raw.{provider}", 0)))

    quotes = Table(title="latest quotes (md.quote)", expand=True)
    for col in ("symbol", "provider", "last", "chg%", "cum vol", "time"):
        quotes.add_column(col)
    for sym, q in sorted(state.quotes.items()):
        quotes.add_row(sym, q.get("provider", ""), _fmt(q.get("last"), 3), _fmt(q.get("change_pct")),
                       _fmt(q.get("cum_volume"), 0), _hms(q.get("event_time"), sym))

    bars = Table(title="closed bars (md.bar)", expand=True)
    for col in ("symbol", "start", "open", "high", "low", "close", "volume", "n", "rev"):
        bars.add_column(col)
    for b in state.bars:
        bars.add_row(b["symbol"], _hms(b.get("window_start"), b["symbol"]), _fmt(b["open"], 3), _fmt(b["high"], 3),
                     _fmt(b["low"], 3), _fmt(b["close"], 3), _fmt(b["volume"], 0), str(b["trade_count"]),
                     str(b.get("revision", 0)))

    orders = Table(title="order events (order.events)", expand=True)
    for col in ("command", "state", "symbol", "side", "price", "vol", "filled", "rule / reason"):
        orders.add_column(col)
    for e in state.orders:
        orders.add_row(e["command_id"][-12:], e["state"], e["symbol"], e.get("side") or "-", _fmt(e.get("price")),
                       str(e.get("volume", "")), str(e.get("filled_volume", "")),
                       " ".join(x for x in (e.get("rule"), e.get("reason")) if x)[:60])

    framing = Table(title="schemas (Confluent wire format: registry id; else Avro single-object)", expand=True)
    framing.add_column("topic")
    framing.add_column("schema and id")
    for topic, text in state.summary()["framings"].items():
        framing.add_row(topic, text)

    footer = status_line(state, elapsed) + " · Ctrl-C to stop"
    return Group(procs, rates, quotes, bars, orders, framing, Panel(footer))


def status_line(state: LiveState, elapsed: float) -> str:
    """One plain line of what the view shows: the demo prints it every few seconds when its
    output is not a terminal (``make demo | tee demo.log``)."""
    s = state.summary()
    p50, p99 = s["latency_ms_p50"], s["latency_ms_p99"]
    return (f"elapsed {elapsed:.0f}s · records " + ", ".join(f"{k}={v}" for k, v in s["records"].items()) +
            f" · DLQ {s['dlq']} · tick latency p50 {_fmt(p50, 1)} ms p99 {_fmt(p99, 1)} ms")
