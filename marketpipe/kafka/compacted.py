"""Read a (compacted) topic from its beginning to its end: how a process rebuilds its memory
(the trader's ledger, the bar aggregator's open windows) before it starts working.

"The end" is each partition's high watermark when the read begins: records written meanwhile
are for the caller's live consumer. A partition is done when a record at or past its end
arrived or the consumer reports the partition's end (a transaction marker or a compacted-away
record may hold the last offset, so that record never arrives). Tombstones (value None) are
passed on too: they delete a key.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)


class TopicMissing(RuntimeError):
    pass


class ReadIncomplete(RuntimeError):
    pass


def read_to_end(client_config: Mapping[str, Any], topic: str, group_id: str, on_record: Callable[[Any], None],
                timeout: float = 30.0, what: str | None = None) -> int:
    """Call ``on_record(msg)`` for every record of ``topic`` up to its end; returns how many.

    Raises :class:`TopicMissing` when the topic does not exist and :class:`ReadIncomplete` when
    some partition was not read to its end within ``timeout`` seconds (``what`` names the topic
    in those messages).
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    from marketpipe.kafka.quietlog import rdkafka_logger

    what = what or topic
    start = time.monotonic()
    deadline = start + timeout
    meta_timeout = max(timeout, 10.0)  # metadata answers get their usual time even for a short read
    consumer = Consumer({**client_config, "group.id": group_id, "enable.auto.commit": False,
                         "enable.partition.eof": True, **rdkafka_logger()})
    count = 0
    try:
        md = consumer.list_topics(topic, timeout=meta_timeout).topics.get(topic)
        if md is None or md.error is not None:
            raise TopicMissing(f"{what} is missing (marketpipe topics create)")
        ends = {p: _high_watermark(consumer, TopicPartition(topic, p), start + meta_timeout) for p in md.partitions}
        pending = {p for p, end in ends.items() if end > 0}
        if pending:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    else:
                        log.warning("reading %s: %s", what, err)
                    continue
                if msg.partition() not in pending:
                    continue  # past the end this read is about
                on_record(msg)
                count += 1
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
        if pending:
            raise ReadIncomplete(f"{what} not fully read in {timeout:.0f} s (partitions {sorted(pending)})")
    finally:
        consumer.close()
    return count


def _high_watermark(consumer: Any, partition: Any, deadline: float) -> int:
    """A just-created topic may have no leader yet: ask again until the deadline."""
    from confluent_kafka import KafkaException

    while True:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=5)[1])
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
