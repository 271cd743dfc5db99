"""Read a time range of a topic to the end offsets seen when the read began.

``marketpipe replay`` and ``marketpipe dlq`` read history while the live pipeline keeps writing:
they find the first offset at or after ``since`` by timestamp, stop at ``until`` or at the end
offsets they saw when they started (never chasing new records), and report progress.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from marketpipe.settings import SettingsError, parse_duration_ms

T = TypeVar("T")


def parse_time_ms(text: str, now_ms: int, name: str = "--since") -> int:
    """UTC epoch ms from ``2026-11-26T09:30:00+08:00`` (no offset: UTC), ``15m``/``2h`` (that long
    ago), or epoch milliseconds."""
    raw = text.strip()
    if raw.isdigit() and len(raw) >= 12:
        return int(raw)
    try:
        return now_ms - parse_duration_ms(raw, name)
    except SettingsError:
        pass
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a time (examples: 2026-11-26T09:30+08:00, 15m, "
                            "1790000000000)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int  # first offset to read
    end: int  # first offset not to read

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


#: transient answers while a broker (re)elects partition leaders, e.g. around topic creation and deletion
_SETTLING = frozenset({"NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART"})


def _settled(call: Callable[[], T], sleep: Callable[[float], None], attempts: int = 20) -> T:
    """``call()``, asked again (up to ~10 s) while the broker answers that leaders are still settling."""
    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if attempt == attempts - 1 or getattr(err, "name", lambda: "")() not in _SETTLING:
                raise
            sleep(0.5)
    raise AssertionError("unreachable")


def plan(consumer: Any, topic: str, since_ms: int, until_ms: int | None, timeout: float = 30.0,
         sleep: Callable[[float], None] = time.sleep) -> list[PartitionRange]:
    """Offsets of ``[since, until)`` per partition, bounded by the end offsets of this moment."""
    from confluent_kafka import TopicPartition

    md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if md is None or md.error is not None:
        raise SettingsError(f"topic {topic} does not exist")
    parts = sorted(md.partitions)

    def end_of(p: int) -> int:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1])

    ends = {p: _settled(functools.partial(end_of, p), sleep) for p in parts}

    def at(ms: int) -> dict[int, int]:
        found = _settled(lambda: consumer.offsets_for_times([TopicPartition(topic, p, ms) for p in parts],
                                                            timeout=timeout), sleep)
        # -1: no record at or after that time: the range starts (or ends) at the current end
        return {tp.partition: ends[tp.partition] if tp.offset < 0 else tp.offset for tp in found}

    starts = at(since_ms)
    stops = at(until_ms) if until_ms is not None else ends
    return [PartitionRange(p, starts[p], min(stops[p], ends[p])) for p in parts if starts[p] < min(stops[p], ends[p])]


def read(consumer: Any, topic: str, ranges: list[PartitionRange],
         progress: Callable[[int], None] = lambda n: None, idle_timeout: float = 30.0) -> Iterator[Any]:
    """Every record of the ranges (per partition in order); ``progress(n)`` after each poll."""
    from confluent_kafka import TopicPartition

    ends = {r.partition: r.end for r in ranges}
    pending = {r.partition for r in ranges if r.size}
    consumer.assign([TopicPartition(topic, r.partition, r.start) for r in ranges if r.size])
    quiet_since = time.monotonic()
    while pending:
        batch = consumer.consume(1000, timeout=0.5)
        if not batch:
            # the last offsets of a range may not exist (compaction, transaction markers): done once
            # the consumer's position has passed the end
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
            if pending and time.monotonic() - quiet_since > idle_timeout:
                raise TimeoutError(f"{topic}: nothing read for {idle_timeout:.0f} s with partitions "
                                   f"{sorted(pending)} unfinished")
            continue
        quiet_since = time.monotonic()
        taken = 0
        for msg in batch:
            if msg.error():
                continue
            p = msg.partition()
            if p not in pending or msg.offset() >= ends[p]:
                continue
            taken += 1
            yield msg
            if msg.offset() + 1 >= ends[p]:
                pending.discard(p)
        progress(taken)
