"""What was dead-lettered on ``md.dlq`` (:func:`summarise`), and a second try with today's
decoders (:func:`redrive`): the library of ``marketpipe dlq``.

Redrive decodes the frames of dead letters again (a dead letter too large to carry its frame is
re-read from its raw topic at ``source``) and publishes what now parses to the md.* topics. It
never writes dead letters of its own: what still fails stays where it is.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

from marketpipe.kafka import topics
from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger
from marketpipe.kafka.topicrange import plan, read
from marketpipe.settings import Settings


@dataclass(frozen=True)
class Filter:
    since_ms: int
    until_ms: int | None = None
    provider: str | None = None
    reason: str | None = None  # substring of the reason, case-insensitive

    def wants(self, letter: dict[str, Any]) -> bool:
        return ((self.provider is None or letter["provider"] == self.provider)
                and (self.reason is None or self.reason.lower() in letter["reason"].lower()))


@dataclass
class Summary:
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    last_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    unreadable: int = 0

    def add(self, letter: dict[str, Any]) -> None:
        key = (letter["provider"] or "-", letter["reason"])
        self.by_reason[key] += 1
        self.first_ms.setdefault(key, letter["event_time"])
        self.last_ms[key] = max(self.last_ms.get(key, 0), letter["event_time"])


def letters(settings: Settings, wanted: Filter) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """(message, dead letter) of md.dlq in the filter's time range; None for an unreadable record."""
    from confluent_kafka import Consumer

    from marketpipe.schemas.codec import CodecError, from_settings

    codec = from_settings(settings)
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-dlq-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    topic = settings.topic(topics.MD_DLQ)
    try:
        for msg in read(consumer, topic, plan(consumer, topic, wanted.since_ms, wanted.until_ms, FIRST_ANSWER_SECONDS)):
            try:
                letter = codec.decode(msg.value() or b"", expect="DeadLetter").record
            except CodecError:
                yield msg, None
                continue
            if wanted.wants(letter):
                yield msg, letter
    finally:
        consumer.close()


def summarise(settings: Settings, wanted: Filter) -> Summary:
    summary = Summary()
    for _, letter in letters(settings, wanted):
        if letter is None:
            summary.unreadable += 1
        else:
            summary.add(letter)
    return summary


@dataclass(frozen=True)
class Redriven:
    fixed: int
    still_failing: int
    records: int


def raw_of(letter: dict[str, Any], settings: Settings) -> bytes | None:
    """The frame of a dead letter: carried in it, or (digest form) read back from its raw topic."""
    if letter["raw"] or letter.get("raw_length", -1) in (-1, 0):
        return bytes(letter["raw"])
    from confluent_kafka import Consumer, TopicPartition

    src = letter["source"]
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-dlq-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(src["topic"], src["partition"], src["offset"])])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.offset() == src["offset"]:
                return bytes(msg.value() or b"")
            if msg is not None and not msg.error() and msg.offset() > src["offset"]:
                break
    finally:
        consumer.close()
    return None  # the raw frame is gone (past retention)


def redrive(settings: Settings, wanted: Filter, target: Settings | None = None) -> Redriven:
    from marketpipe.processors.normalize import Normalizer, RawRecord, decoder_state
    from marketpipe.processors.output import Output

    out = Output(target or settings)
    normalizer = Normalizer(out, decoder_state(settings), write_dead_letters=False)
    fixed = still = records = 0
    for _, letter in letters(settings, wanted):
        if letter is None:
            continue
        raw = raw_of(letter, settings)
        if raw is None:
            still += 1
            continue
        src = letter["source"]
        headers = [(k, v.encode()) for k, v in letter["headers"].items()]
        done = normalizer.process(letter["provider"], RawRecord(src["topic"], src["partition"], src["offset"], raw,
                                                                headers))
        records += done.records
        if done.rejects:
            still += 1
        else:
            fixed += 1
    problem = out.flush_now()
    if problem:
        raise RuntimeError(problem)
    out.report()
    return Redriven(fixed, still, records)
