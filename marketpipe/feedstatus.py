"""The providers' feed health side by side, from ``md.status`` (FeedStatus records): the library
of ``marketpipe status``.

One row per provider: connections up / known, reconnects, the longest silence of a reconnect,
gaps and their total length, stale symbols (while their market is open), frames per second and
receive latency p50/p99 of the last full minute, and the latest event. :class:`StatusView` is
the pure state, fed one record at a time; :func:`show` reads md.status and prints it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

from marketpipe.completeness import UNOBSERVED, Completeness, DayLedger, judge
from marketpipe.settings import Settings


@dataclass
class ProviderStatus:
    provider: str
    connections: dict[str, bool] = field(default_factory=dict)  # connection -> up?
    reconnects: int = 0
    longest_silence_ms: int = 0
    gaps: int = 0
    gap_ms: int = 0
    filled: int = 0
    resubscribes: int = 0  # silent subscriptions re-subscribed by a producer
    recycles: int = 0  # connections a producer recycled for a subscription that stayed silent
    stale: set[str] = field(default_factory=set)
    lines_down: set[str] = field(default_factory=set)  # A/B capture: "connection/line" behind its pair
    line_gaps: int = 0  # A/B capture: gaps of one line the other line covered (no data lost)
    rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    last_kind: str = ""
    last_reason: str = ""
    last_time: int = 0

    def row(self) -> dict[str, Any]:
        return {"provider": self.provider, "up": sum(self.connections.values()), "connections": len(self.connections),
                "reconnects": self.reconnects, "longest_silence_ms": self.longest_silence_ms, "gaps": self.gaps,
                "gap_ms": self.gap_ms, "filled": self.filled, "resubscribes": self.resubscribes,
                "recycles": self.recycles, "stale": sorted(self.stale), "lines_down": sorted(self.lines_down),
                "line_gaps": self.line_gaps, "rate": self.rate,
                "latency_p50_ms": self.latency_p50_ms, "latency_p99_ms": self.latency_p99_ms,
                "last": self.last_kind, "last_reason": self.last_reason, "last_time": self.last_time}


@dataclass
class StatusView:
    providers: dict[str, ProviderStatus] = field(default_factory=dict)

    def on_record(self, rec: dict[str, Any]) -> None:
        p = self.providers.setdefault(rec["provider"], ProviderStatus(rec["provider"]))
        kind, conn = rec["kind"], rec.get("connection", "")
        if kind == "connected":
            p.connections[conn] = True
        elif kind == "disconnected":
            p.connections[conn] = False
        elif kind == "reconnected":
            p.connections[conn] = True
            p.reconnects += 1
            p.longest_silence_ms = max(p.longest_silence_ms, rec.get("silent_ms", 0))
        elif kind == "gap":
            p.gaps += 1
            p.gap_ms += rec.get("silent_ms", 0)
        elif kind == "filled":
            p.filled += 1
        elif kind == "resubscribed":
            p.resubscribes += 1
        elif kind == "recycled":
            p.recycles += 1
        elif kind == "stale":
            p.stale.add(rec["symbol"])
        elif kind == "fresh":
            p.stale.discard(rec["symbol"])
        elif kind == "line_down":
            p.lines_down.add(f"{conn}/{rec.get('line', '')}")
        elif kind == "line_up":
            p.lines_down.discard(f"{conn}/{rec.get('line', '')}")
        elif kind == "line_gap":
            p.line_gaps += 1
        elif kind == "stats":
            p.rate, p.latency_p50_ms, p.latency_p99_ms = rec["rate"], rec["latency_p50_ms"], rec["latency_p99_ms"]
        if kind != "stats":
            p.last_kind, p.last_reason, p.last_time = kind, rec.get("reason", ""), rec["event_time"]

    def rows(self) -> list[dict[str, Any]]:
        return [self.providers[k].row() for k in sorted(self.providers)]


def _num(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:,.{nd}f}"


def render(view: StatusView) -> Any:
    from rich.table import Table

    from marketpipe.tail import iso_ms

    table = Table(title="feed status (md.status)", expand=True)
    for col, justify in (("provider", "left"), ("up", "right"), ("reconnects", "right"),
                         ("longest silence", "right"), ("gaps", "right"), ("gap time", "right"),
                         ("filled", "right"), ("resub/recycle", "right"), ("lines down", "left"), ("stale symbols", "left"),
                         ("frames/s", "right"),
                         ("latency p50 ms", "right"), ("p99 ms", "right"), ("latest", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in view.rows():
        stale = ", ".join(r["stale"][:4]) + (" …" if len(r["stale"]) > 4 else "") if r["stale"] else "-"
        latest = f"{r['last']} {iso_ms(r['last_time'])[11:19]}Z {r['last_reason'][:40]}" if r["last_time"] else "-"
        table.add_row(r["provider"], f"{r['up']}/{r['connections']}", str(r["reconnects"]),
                      f"{r['longest_silence_ms'] / 1000:.1f} s", str(r["gaps"]), f"{r['gap_ms'] / 1000:.1f} s",
                      str(r["filled"]), f"{r['resubscribes']}/{r['recycles']}", ", ".join(r["lines_down"]) or "-",
                      stale, _num(r["rate"]), _num(r["latency_p50_ms"]),
                      _num(r["latency_p99_ms"]), latest)
    return table


def _topic_consumer(settings: Settings, logical: str) -> tuple[Any, Any]:
    """A group-less consumer and the metadata of ``logical``, asked once within the command's first
    answer time: no broker or no topic is one line and exit 1, not a retry loop."""
    import uuid

    from confluent_kafka import Consumer

    from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger

    topic = settings.topic(logical)
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-status-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "latest"})
    meta = consumer.list_topics(topic, timeout=FIRST_ANSWER_SECONDS).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        consumer.close()
        raise SystemExit(f"marketpipe status: topic {topic!r} does not exist (marketpipe topics create)")
    return consumer, meta


def _consumer(settings: Settings, minutes: float) -> tuple[Any, dict[int, int]]:
    """A group-less consumer on every md.status partition from ``minutes`` ago, and the end offsets."""
    from confluent_kafka import TopicPartition

    from marketpipe.kafka import topics

    topic = settings.topic(topics.MD_STATUS)
    consumer, meta = _topic_consumer(settings, topics.MD_STATUS)
    since = int((time.time() - minutes * 60) * 1000)
    wanted = consumer.offsets_for_times([TopicPartition(topic, p, since) for p in meta.partitions], timeout=15)
    consumer.assign(wanted)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in meta.partitions}
    return consumer, ends


def read(consumer: Any, codec: Any, view: StatusView, timeout: float) -> int:
    n = 0
    for msg in consumer.consume(500, timeout=timeout):
        if msg.error() is None and msg.value():
            try:
                view.on_record(codec.decode(msg.value(), expect="FeedStatus").record)
                n += 1
            except ValueError as exc:
                print(f"marketpipe status: record {msg.partition()}@{msg.offset()} unreadable: {exc}", file=sys.stderr)
    return n


def caught_up(consumer: Any, ends: dict[int, int]) -> bool:
    positions = {tp.partition: tp.offset for tp in consumer.position(consumer.assignment())}
    return all(end <= 0 or positions.get(p, -1) >= end for p, end in ends.items())


def show(settings: Settings, *, minutes: float = 60, once: bool = False, as_json: bool = False,
         seconds: float = 0) -> int:
    """Read md.status from ``minutes`` ago and print the table: ``once`` (as JSON lines with
    ``as_json``) after catching up, else refreshed in place until Ctrl-C or ``seconds``."""
    from marketpipe.schemas import codec as codec_mod

    codec, view = codec_mod.from_settings(settings), StatusView()
    consumer, ends = _consumer(settings, minutes)
    try:
        if once:
            deadline = time.monotonic() + 30
            while not caught_up(consumer, ends) and time.monotonic() < deadline:
                read(consumer, codec, view, 0.3)
            if as_json:
                for row in view.rows():
                    print(json.dumps(row, ensure_ascii=False))
            else:
                from rich.console import Console

                Console().print(render(view))
            return 0
        from rich.live import Live

        stop_at = time.monotonic() + seconds if seconds else None
        with Live(render(view), refresh_per_second=2) as live:
            while stop_at is None or time.monotonic() < stop_at:
                if read(consumer, codec, view, 0.5):
                    live.update(render(view))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()


# ---- marketpipe status --gaps: the completeness ledger --------------------------------------------

@dataclass(frozen=True)
class SymbolGaps:
    """One symbol's answer over the asked range, with the unobserved tail the processor has not
    written yet (it writes coverage every MARKETPIPE_COMPLETENESS_INTERVAL) kept apart."""

    answer: Completeness
    pending_from: int | None = None  # start of that tail, when there is one

    def row(self) -> dict[str, Any]:
        a = self.answer
        return {"symbol": a.symbol, "start": a.start, "end": a.end, "complete": a.complete,
                "holes": [{"start": h.start, "end": h.end, "state": h.state} for h in a.holes],
                "filled": [{"start": i.start, "end": i.end} for i in a.filled], "pending_from": self.pending_from}


def gaps_of(days: Iterable[DayLedger], start: int, end: int, pending_ms: int,
            symbols: Iterable[str] = ()) -> list[SymbolGaps]:
    """Per symbol (those asked, else those the ledger has over the range): the answer over
    ``[start, end)``; a trailing unobserved hole shorter than ``pending_ms`` is pending, not a hole."""
    by_symbol: dict[str, list[Any]] = {s: [] for s in symbols}
    for day in days:
        inside = [i for i in day.intervals if i.end > start and i.start < end]
        if inside or day.symbol in by_symbol:
            by_symbol.setdefault(day.symbol, []).extend(day.intervals)
    out = []
    for symbol in sorted(by_symbol):
        answer = judge(symbol, by_symbol[symbol], start, end)
        tail = answer.holes[-1] if answer.holes else None
        if tail is not None and tail.state == UNOBSERVED and tail.end == end and end - tail.start <= pending_ms \
                and by_symbol[symbol]:
            out.append(SymbolGaps(replace(answer, holes=answer.holes[:-1]), tail.start))
        else:
            out.append(SymbolGaps(answer))
    return out


def gap_lines(rows: Iterable[SymbolGaps]) -> Iterator[str]:
    from marketpipe.tail import iso_ms

    for r in rows:
        a = r.answer
        missing = sum(h.end - h.start for h in a.holes) / 1000
        verdict = "complete" if a.complete else f"INCOMPLETE: {len(a.holes)} holes, {missing:.1f} s"
        pending = f" (written until {iso_ms(r.pending_from)[11:23]}Z)" if r.pending_from is not None else ""
        yield f"{a.symbol:12} {iso_ms(a.start)} .. {iso_ms(a.end)}  {verdict}{pending}"
        for h in a.holes:
            yield f"    {h.state:10} {iso_ms(h.start)} .. {iso_ms(h.end)}  {(h.end - h.start) / 1000:.1f} s"
        for i in a.filled:
            yield f"    {'filled':10} {iso_ms(i.start)} .. {iso_ms(i.end)}  {(i.end - i.start) / 1000:.1f} s (backfilled)"


def show_gaps(settings: Settings, *, minutes: float, symbols: Iterable[str] = (), as_json: bool = False) -> int:
    """``marketpipe status --gaps``: each symbol's completeness over the last ``minutes``, from
    md.completeness; exit 1 when any has a hole."""
    from marketpipe import client
    from marketpipe.kafka import topics

    _topic_consumer(settings, topics.MD_COMPLETENESS)[0].close()  # a missing broker or topic: one line
    asked = tuple(symbols)
    end = int(time.time() * 1000)
    start = end - int(minutes * 60_000)
    days = client.ledger(asked or None, settings=settings)
    pending = 2 * settings.processor.completeness_flush_ms + 5_000  # two writes and a batch's delay
    rows = gaps_of(days, start, end, pending, asked)
    for line in (json.dumps(r.row()) for r in rows) if as_json else gap_lines(rows):
        print(line)
    if not rows:
        print("marketpipe status --gaps: the ledger (md.completeness) has nothing for that range", file=sys.stderr)
    return 0 if all(r.answer.complete for r in rows) else 1
