"""The bar agent's state: one :class:`~marketpipe.processors.bars.book.BarBook` per (provider, symbol), the md.tick
partitions whose books this worker holds, and a clock per partition.

Each touched book is snapshotted to the compacted ``md.bar.state`` topic in the same flush as the
bars of its batch. When this worker is given md.tick partitions (start, restart, rebalance) it loads
the latest snapshots of the books on them before it bins a tick, so windows open at a crash still
close; when it loses partitions it forgets their books (their new owner loads them). Each book
remembers the raw source position it has applied, so ticks replayed after a crash count once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import orjson

from marketpipe.kafka import topics
from marketpipe.kafka.compacted import read_to_end
from marketpipe.processors import metrics
from marketpipe.processors.bars import book as barlib
from marketpipe.processors.deadletter import dead_letter
from marketpipe.processors.decode import RawFrame
from marketpipe.processors.decode.base import MAX_REASON
from marketpipe.processors.normalize import RawMessage, headers_of
from marketpipe.processors.output import Output
from marketpipe.rawframe import header_dict, parse_meta
from marketpipe.schemas.codec import CodecError
from marketpipe.settings import ProcessorSettings, Settings

log = logging.getLogger("processors")

#: a tick dated further ahead of the wall clock is binned but moves no clock
WATERMARK_FUTURE_MS = 60_000

BookLoader = Callable[[set[int]], dict[str, barlib.BarBook]]


class GapSource(Protocol):
    def poll(self, books: dict[str, barlib.BarBook], interval_ms: int) -> None: ...

    def gaps(self, provider: str) -> list[tuple[int, int]]: ...


@dataclass
class Watermark:
    """Largest event time seen on one md.tick partition, and when (monotonic seconds) it was seen."""

    event_ms: int = 0
    seen_at: float = 0.0

    def at(self, now: float) -> int:
        """The clock advances with wall time while the partition is idle, so quiet windows close."""
        return int(self.event_ms + max(0.0, now - self.seen_at) * 1000)


@dataclass
class BarState:
    """Books, owned partitions, clocks and idle times of one worker's bar agent."""

    config: ProcessorSettings
    out: Output
    state_topic: str  # physical name of md.bar.state
    load: BookLoader  # latest snapshots of the books on some md.tick partitions
    gaps: GapSource | None = None  # known gaps of the feeds (md.status): bars over them say so
    monotonic: Callable[[], float] = time.monotonic
    wall_ms: Callable[[], float] = lambda: time.time() * 1000
    books: dict[str, barlib.BarBook] = field(default_factory=dict)
    owned: set[int] = field(default_factory=set)  # md.tick partitions whose books are loaded here
    watermarks: dict[int, Watermark] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)  # book key -> monotonic time of its latest tick
    late_dropped: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # the agent and the idle timer share the books

    def watermark(self, partition: int) -> int:
        mark = self.watermarks.get(partition)
        return 0 if mark is None else mark.at(self.monotonic())

    async def own(self, partitions: set[int]) -> None:
        """Load the books of md.tick partitions this worker was just given (off the event loop)."""
        new = partitions - self.owned
        if new:
            books = await asyncio.get_running_loop().run_in_executor(None, self.load, new)
            self.adopt(new, books)

    def adopt(self, partitions: set[int], books: dict[str, barlib.BarBook]) -> None:
        now = self.monotonic()
        for key, book in books.items():
            self.books[key] = book
            self.last_seen[key] = now  # idle clocks restart now: open windows close ``grace`` after we are back
            mark = self.watermarks.setdefault(book.partition, Watermark(0, now))
            mark.event_ms = max(mark.event_ms, book.max_event_time)
        self.owned.update(partitions)
        log.info("md.tick partitions %s: %d bar books loaded from %s", sorted(partitions), len(books),
                 self.state_topic)

    def disown(self, partitions: Iterable[int]) -> None:
        lost = set(partitions) & self.owned
        for key in [k for k, b in self.books.items() if b.partition in lost]:
            del self.books[key]
            self.last_seen.pop(key, None)
        for p in lost:
            self.watermarks.pop(p, None)
        self.owned.difference_update(lost)

    def save(self, key: str, book: barlib.BarBook, bars: list[dict[str, Any]]) -> None:
        for bar in bars:
            self.out.send(topics.MD_BAR, "Bar", bar["symbol"], bar, bar["event_time"])
        self.out.produce(self.state_topic, key.encode(), orjson.dumps(book.to_json()))

    def _refresh_gaps(self) -> None:
        if self.gaps is not None:
            self.gaps.poll(self.books, self.config.bar_interval_ms)

    def _gaps_of(self, provider: str) -> list[tuple[int, int]]:
        return self.gaps.gaps(provider) if self.gaps is not None else []

    def bin(self, messages: Iterable[RawMessage]) -> None:
        """Bin a batch of md.tick records; an unreadable one is dead-lettered and skipped."""
        self._refresh_gaps()
        touched: set[str] = set()
        self._bin_ticks(messages, touched)
        self._snapshot(touched)

    async def bin_yielding(self, messages: list[RawMessage], chunk: int) -> None:
        """:meth:`bin`, returning to the event loop after every ``chunk`` ticks and snapshots.

        In a worker that also normalizes, a bar batch of thousands of ticks held the loop for tens
        of milliseconds while fetched raw frames waited (bench/README.md); the books are the same
        as one :meth:`bin` of the whole batch, one snapshot per touched book. Books disowned by a
        rebalance during a pause are not snapshotted (their new owner loads its own)."""
        self._refresh_gaps()
        touched: set[str] = set()
        for start in range(0, len(messages), chunk):
            if start:
                await asyncio.sleep(0)
            self._bin_ticks(messages[start:start + chunk], touched)
        keys = sorted(touched)
        for start in range(0, len(keys), chunk):
            await asyncio.sleep(0)
            self._snapshot(keys[start:start + chunk])

    def _bin_ticks(self, messages: Iterable[RawMessage], touched: set[str]) -> None:
        c = self.config
        wall_ms = self.wall_ms()
        late, first_late = 0, None
        for msg in messages:
            try:
                tick = self.out.codec.decode(bytes(msg.value or b""), expect="Tick").record
            except CodecError as exc:
                self.out.dead_letter(unreadable_tick(msg, exc), "")
                continue
            now = self.monotonic()
            mark = self.watermarks.setdefault(msg.partition, Watermark(0, now))
            if mark.event_ms < tick["event_time"] <= wall_ms + WATERMARK_FUTURE_MS:
                mark.event_ms, mark.seen_at = tick["event_time"], now
            key = f"{tick['provider']}|{tick['symbol']}"
            book = self.books.get(key)
            if book is None:
                book = self.books[key] = barlib.BarBook(tick["provider"], tick["symbol"], partition=msg.partition)
            self.last_seen[key] = now
            if book.seen_before(tick):
                continue  # a replay: already counted (and in the snapshot)
            book.partition = msg.partition
            touched.add(key)
            if not book.add(tick, c.bar_interval_ms, c.bar_horizon_ms, self.watermark(msg.partition) - c.bar_grace_ms):
                late += 1
                first_late = first_late or (key, tick["event_time"])
        if first_late is not None:  # one line per batch: a record per tick held the loop on a late backlog
            self.late_dropped += late
            metrics.LATE.inc(late)
            log.warning("%d in this batch later than the %d ms correction horizon, counted, not binned (the first: "
                        "%s at %d; late total %d)", late, c.bar_horizon_ms, *first_late, self.late_dropped)

    def _snapshot(self, keys: Iterable[str]) -> None:
        """Close what the clocks allow and snapshot each of these books."""
        c = self.config
        for key in keys:
            book = self.books.get(key)
            if book is None:
                continue  # disowned meanwhile
            self.save(key, book, book.close(self.watermark(book.partition), c.bar_interval_ms, c.bar_grace_ms,
                                            c.bar_horizon_ms, self._gaps_of(book.provider)))

    def close_idle(self) -> int:
        """Close windows of owned symbols that went quiet: a book's clock advances with wall time while
        it is idle. After a restart a book's last-seen time is the restart, so its open windows close
        ``grace`` after the worker came back even if no new tick arrives. Returns the bars emitted."""
        c = self.config
        self._refresh_gaps()
        now = self.monotonic()
        emitted = 0
        for key, book in list(self.books.items()):
            if book.partition not in self.owned or not book.pending:
                continue
            clock = book.max_event_time + int((now - self.last_seen.setdefault(key, now)) * 1000)
            bars = book.close(clock, c.bar_interval_ms, c.bar_grace_ms, c.bar_horizon_ms, self._gaps_of(book.provider))
            if bars:
                self.save(key, book, bars)
                emitted += len(bars)
        return emitted


def unreadable_tick(msg: RawMessage, error: Exception) -> dict[str, Any]:
    """The dead letter of an md.tick record the bar agent cannot read (not binned, partition moves on)."""
    headers = headers_of(msg)
    frame = RawFrame("", bytes(msg.value or b""), parse_meta(headers), msg.topic, msg.partition, msg.offset)
    return {**dead_letter(frame, error, int(time.time() * 1000), header_dict(headers)),
            "reason": f"unreadable md.tick record, not binned: {' '.join(str(error).split())}"[:MAX_REASON],
            "error_type": type(error).__name__}


def load_books(s: Settings, group_id: str, partitions: set[int]) -> dict[str, barlib.BarBook]:
    """The latest snapshot of every book on the given md.tick partitions, from md.bar.state."""
    topic = s.topic(topics.MD_BAR_STATE)
    books: dict[str, barlib.BarBook] = {}

    def on_record(msg: Any) -> None:
        key = msg.key().decode()
        if msg.value() is None:  # a tombstone: the book is gone
            books.pop(key, None)
            return
        try:
            book = barlib.BarBook.from_json(orjson.loads(msg.value()))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # one unreadable snapshot must not crash-loop the worker: that book starts afresh (its
            # open windows are lost, loudly) and the others load
            log.error("bar state for %s at %s[%d]@%d unreadable, starting it afresh: %s",
                      key, topic, msg.partition(), msg.offset(), exc)
            books.pop(key, None)
            return
        if book.partition in partitions:
            books[key] = book
        else:
            books.pop(key, None)  # the symbol moved (partition count changed)

    read_to_end(s.kafka.client_config(), topic, f"{group_id}-bar-restore", on_record, timeout=120,
                what=f"bar state {topic}")
    return books
