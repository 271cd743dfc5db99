"""The processor's completeness ledger: ``md.completeness`` from what the normalize path already
knows about each connection (its frames, and the gaps :class:`~marketpipe.processors.status.FeedMonitor`
finds in their headers), the stale spells of its symbols, and the producers' ``filled`` records.

* **Coverage.** A connection's frames follow each other without a gap until the monitor reports
  one; every symbol the connection carried is ``complete`` from the frame it first appeared in to
  the connection's latest frame (a quiet symbol on a live connection lost nothing). Coverage is
  kept per connection and painted onto the symbols' days every ``flush_ms`` (one write per symbol
  and day then, not one per frame).
* **Gaps** of a connection (reconnect, missing frames, a producer restarted) mark every symbol it
  carried over ``gap_start``..``gap_end``: ``unfillable`` for a provider without history (the
  registry's ``fills_gaps``), else ``gap`` until the producer reports it ``filled``. Those are
  written at the next batch, not after ``flush_ms``.
* **Stale spells** (a symbol silent past its limit while its market is open, then ``fresh``) are
  gaps of that symbol alone: the pipeline cannot tell a quiet symbol from a lost subscription,
  so it does not claim completeness. Their times are the processor's clock (the monitor's).

Marks merge monotonically (:func:`marketpipe.completeness.normalized`), so merging any two versions
of a day loses nothing of either: a worker loads the topic before it writes and merges what other
workers write, which covers a connection moving to another worker. Two connections carrying one
symbol on different workers can still overwrite each other's newest additions between two reads
(one connection per symbol is assumed; the A/B lines of issue 21 item 3 will need their own merge).

:class:`CompletenessBook` is the pure state (times in, :class:`DayLedger` versions out);
:class:`CompletenessFeed` reads and writes the topics.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from marketpipe.completeness import DayLedger, Mark, ledger_key, normalized, paint, split_days

log = logging.getLogger(__name__)


@dataclass
class _Span:
    """A connection's coverage not yet painted onto its symbols' days."""

    provider: str
    start: int  # receive time (ms) the unpainted coverage starts at
    last: int  # receive time of the connection's latest frame
    symbols: dict[str, int] = field(default_factory=dict)  # symbol -> receive time it first appeared


@dataclass
class CompletenessBook:
    #: providers that fill their gaps (the others' gaps are unfillable at once)
    filling: frozenset[str]
    flush_ms: int = 5000
    #: a day is forgotten (after being written) once it ended this long ago: only a replay of
    #: the last commit interval reaches back, and a forgotten day is never written again
    keep_ms: int = 2 * 86_400_000
    spans: dict[str, _Span] = field(default_factory=dict)  # connection -> coverage
    days: dict[str, DayLedger] = field(default_factory=dict)  # ledger key -> the day
    dirty: set[str] = field(default_factory=set)
    stale: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, symbol) -> silent since
    urgent: bool = False
    next_flush: int = 0

    # ---- what happened ------------------------------------------------------------------------
    def frame(self, provider: str, connection: str, recv_ms: int, symbols: Iterable[str]) -> None:
        span = self.spans.get(connection)
        if span is None:
            span = self.spans[connection] = _Span(provider, recv_ms, recv_ms)
        span.last = max(span.last, recv_ms)
        for symbol in symbols:
            span.symbols.setdefault(symbol, recv_ms)

    def gap(self, provider: str, connection: str, start: int, end: int) -> None:
        """The monitor's gap of a connection (before the first frame after it is counted)."""
        span = self.spans.get(connection)
        if span is None:
            return  # a connection this worker has not seen carry anything
        self._paint_span(span, min(span.last, start))
        for symbol in span.symbols:
            self._paint(provider, symbol, start, end, self._missing(provider))
        span.start = span.last = max(span.last, end)
        self.urgent = True

    def filled(self, provider: str, connection: str, start: int, end: int) -> None:
        span = self.spans.get(connection)
        if span is None:
            return  # another worker's connection: that worker paints it
        for symbol in span.symbols:
            self._paint(provider, symbol, start, end, Mark.FILLED)
        self.urgent = True

    def went_stale(self, provider: str, symbol: str, since: int) -> None:
        """A symbol silent past its limit: from ``since`` its coverage is painted as missing until
        :meth:`came_back`, so a code that never comes back is not complete either."""
        self.stale[(provider, symbol)] = since
        self._paint(provider, symbol, since, since + 1, self._missing(provider))
        self.urgent = True

    def came_back(self, provider: str, symbol: str, start: int, end: int) -> None:
        """The stale spell ``[start, end)`` ended (``fresh``)."""
        self.stale.pop((provider, symbol), None)
        self._paint(provider, symbol, start, end, self._missing(provider))
        self.urgent = True

    def merge(self, other: DayLedger) -> None:
        """Another version of a day (loaded, or written by another worker): keep what both say."""
        mine = self.days.get(other.key)
        if mine is None:
            self.days[other.key] = other
            return
        if other.intervals == mine.intervals:
            return  # our own write read back (the common case)
        merged = normalized(mine.intervals + other.intervals)
        if merged != mine.intervals:
            self.days[other.key] = replace(mine, intervals=merged)
            if merged != other.intervals:
                self.dirty.add(other.key)  # the topic lacks part of what we know

    # ---- what to write ------------------------------------------------------------------------
    def due(self, now_ms: int) -> list[DayLedger]:
        """The days to write now: every ``flush_ms``, or at once after a gap or fill."""
        if now_ms < self.next_flush and not self.urgent:
            return []
        for span in self.spans.values():
            self._paint_span(span, span.last)
        out = []
        for key in sorted(self.dirty):
            day = self.days[key] = replace(self.days[key], updated_time=now_ms)
            out.append(day)
        self.dirty.clear()
        self.urgent, self.next_flush = False, now_ms + self.flush_ms
        self._forget(now_ms)
        return out

    # ---- inside -------------------------------------------------------------------------------
    def _missing(self, provider: str) -> Mark:
        return Mark.GAP if provider in self.filling else Mark.UNFILLABLE

    def _paint_span(self, span: _Span, until: int) -> None:
        for symbol, first in span.symbols.items():
            start = max(span.start, first)
            since = self.stale.get((span.provider, symbol))
            if since is not None:
                self._paint(span.provider, symbol, max(start, since), until, self._missing(span.provider))
                until_good = max(start, min(until, since))
            else:
                until_good = until
            self._paint(span.provider, symbol, start, until_good, Mark.COMPLETE)
        span.start = max(span.start, until)

    def _paint(self, provider: str, symbol: str, start: int, end: int, mark: Mark) -> None:
        for day, a, b in split_days(symbol, start, end):
            key = ledger_key(provider, symbol, day)
            current = self.days.get(key) or DayLedger(provider, symbol, day, ())
            intervals = paint(current.intervals, a, b, mark)
            if intervals != current.intervals:
                self.days[key] = replace(current, intervals=intervals)
                self.dirty.add(key)

    def _forget(self, now_ms: int) -> None:
        old = [k for k, d in self.days.items() if k not in self.dirty and d.intervals
               and d.intervals[-1].end < now_ms - self.keep_ms]
        for key in old:
            del self.days[key]


class CompletenessFeed:
    """The Kafka side: loads ``md.completeness`` (in a thread: the event loop must not wait for
    it) before the first write, then follows it and ``md.status`` (for the producers' ``filled``)
    without blocking, and writes the book's due days through the normalize path's output (flushed
    with the batch, before its offsets are committed). A broker that cannot be read delays the
    writes (the book keeps everything) and is asked again every ``retry_seconds``; it never stops
    the normalize path."""

    def __init__(self, settings: Any, book: CompletenessBook, clock: Callable[[], float] = time.time,
                 retry_seconds: float = 30.0) -> None:
        self.settings = settings
        self.book = book
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.consumer: Any = None
        self.codec: Any = None
        self._loading: threading.Thread | None = None
        self._loaded: list[DayLedger] = []
        self._following = False  # the load is merged into the book; the consumer is followed
        self._retry_at = 0.0

    def _load(self) -> None:
        """In the loading thread: the whole ledger topic, then a consumer following it and md.status."""
        from confluent_kafka import Consumer, TopicPartition

        from marketpipe.kafka import compacted, topics
        from marketpipe.kafka.quietlog import rdkafka_logger
        from marketpipe.schemas import codec as codec_mod

        s = self.settings
        self.codec = codec_mod.from_settings(s)
        ledger, status = s.topic(topics.MD_COMPLETENESS), s.topic(topics.MD_STATUS)
        group = s.group_id("marketpipe-processors-completeness")
        loaded: list[DayLedger] = []
        try:
            n = compacted.read_to_end(s.kafka.client_config(), ledger, group,
                                      lambda msg: self._decode_ledger(msg, loaded.append), timeout=60)
            consumer = Consumer({**s.kafka.client_config(), **rdkafka_logger(), "group.id": group,
                                 "enable.auto.commit": False, "auto.offset.reset": "latest"})
            md = consumer.list_topics(timeout=30).topics
            since = int(self.clock() * 1000) - self.book.keep_ms
            wanted = consumer.offsets_for_times([TopicPartition(status, p, since) for p in md[status].partitions],
                                                timeout=30)
            # the ledger from where the load ended: what other workers write from now on
            ends = [TopicPartition(ledger, p, consumer.get_watermark_offsets(TopicPartition(ledger, p), timeout=30)[1])
                    for p in md[ledger].partitions]
            consumer.assign(wanted + ends)
        except Exception as exc:  # noqa: BLE001 - the ledger waits; the market data must not
            log.warning("completeness ledger: %s cannot be read (%s); retrying in %.0f s", ledger, exc,
                        self.retry_seconds)
            return
        log.info("completeness ledger: %d records loaded from %s", n, ledger)
        self._loaded, self.consumer = loaded, consumer

    def _decode_ledger(self, msg: Any, take: Callable[[DayLedger], None]) -> None:
        if msg.value():
            try:
                take(DayLedger.from_record(self.codec.decode(msg.value(), expect="Completeness").record))
            except ValueError as exc:
                log.warning("md.completeness record %d@%d unreadable: %s", msg.partition(), msg.offset(), exc)

    def _take_status(self, msg: Any) -> None:
        try:
            rec = self.codec.decode(msg.value(), expect="FeedStatus").record
        except ValueError:
            return  # an unreadable status record must not stop the ledger
        if rec["kind"] == "filled" and rec.get("gap_start"):
            self.book.filled(rec["provider"], rec.get("connection", ""), rec["gap_start"], rec["gap_end"])

    def ready(self) -> bool:
        """Loaded and following (starts or restarts the load when it is not)."""
        if self.consumer is not None:
            return True
        if self._loading is not None and self._loading.is_alive():
            return False
        if self._loading is not None:  # the load ended without a consumer: it failed
            self._loading, self._retry_at = None, time.monotonic() + self.retry_seconds
            return False
        if time.monotonic() >= self._retry_at:
            self._loading = threading.Thread(target=self._load, name="completeness-load", daemon=True)
            self._loading.start()
        return False

    def poll(self) -> bool:
        """Take what the topics brought since the last call (non-blocking); False until loaded."""
        if not self._following:
            if not self.ready():
                return False
            for day in self._loaded:
                self.book.merge(day)
            self._loaded, self._following = [], True
        from marketpipe.kafka import topics

        ledger = self.settings.topic(topics.MD_COMPLETENESS)
        while True:
            msgs = self.consumer.consume(1000, timeout=0)
            for msg in msgs:
                if msg.error() is None and msg.value():
                    if msg.topic() == ledger:
                        self._decode_ledger(msg, self.book.merge)
                    else:
                        self._take_status(msg)
            if len(msgs) < 1000:
                return True

    def write(self, out: Any) -> None:
        """Poll, then write the days that are due through ``out`` (the batch's output)."""
        from marketpipe.kafka import topics

        if not self.poll():
            return
        for day in self.book.due(int(self.clock() * 1000)):
            out.send(topics.MD_COMPLETENESS, "Completeness", day.key, day.to_record(), day.updated_time)
