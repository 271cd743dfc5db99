"""The bar agent's reader of ``md.status``: which windows of a feed overlap a gap (the Kafka side;
the pure registry of gaps is :class:`~marketpipe.processors.status.GapRegistry`)."""

from __future__ import annotations

import time
from typing import Any

from marketpipe.processors.status import GapRegistry


class GapFeed:
    """The bar side's view of ``md.status``: every partition, read without a consumer group (each bar
    worker needs the gaps of every provider, whichever md.tick partitions it owns), from
    ``lookback_ms`` ago so a restarted worker knows the recent gaps again. Non-blocking after the
    first call; books of a provider whose gaps changed are marked for correction."""

    def __init__(self, settings: Any, lookback_ms: int) -> None:
        self.settings = settings
        self.lookback_ms = lookback_ms
        self.registry = GapRegistry(keep_ms=max(lookback_ms, 60_000))
        self.consumer: Any = None
        self.codec: Any = None

    def _start(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from marketpipe.kafka import topics
        from marketpipe.kafka.quietlog import rdkafka_logger
        from marketpipe.schemas import codec as codec_mod

        topic = self.settings.topic(topics.MD_STATUS)
        consumer = Consumer({**self.settings.kafka.client_config(), **rdkafka_logger(),
                             "group.id": self.settings.group_id("marketpipe-gap-feed"),
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        md = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if md is None or md.error is not None:
            raise RuntimeError(f"{topic} is missing (marketpipe topics create)")
        since = int(time.time() * 1000) - self.lookback_ms
        wanted = [TopicPartition(topic, p, since) for p in md.partitions]
        consumer.assign(consumer.offsets_for_times(wanted, timeout=30))
        self.consumer, self.codec = consumer, codec_mod.from_settings(self.settings)

    def poll(self, books: dict[str, Any], interval_ms: int) -> None:
        if self.consumer is None:
            self._start()
        changed: set[str] = set()
        while True:
            msgs = self.consumer.consume(1000, timeout=0)
            for msg in msgs:
                if msg.error() is None and msg.value():
                    try:
                        rec = self.codec.decode(msg.value(), expect="FeedStatus").record
                    except ValueError:
                        continue  # an unreadable status record must not stop the bars
                    if self.registry.add(rec):
                        changed.add(rec["provider"])
            if len(msgs) < 1000:
                break
        for book in books.values():
            if book.provider in changed:
                book.regap(self.registry.open_gaps(book.provider), interval_ms)

    def gaps(self, provider: str) -> list[tuple[int, int]]:
        return self.registry.open_gaps(provider)
