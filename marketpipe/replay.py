"""Decoding a time range of a raw topic again with today's decoders (``marketpipe replay``).

The raw topics keep every frame as received for three days, so a parser fix can be applied to
history. :func:`replay` reads ``[since, until)`` of one provider's raw topic (offsets found by
timestamp) up to the end offsets it saw when it started, and writes the md.* records, with the
current ``parser_version``, through the same Normalizer the live processor uses, under the live
topic prefix or another one (to compare a parser change side by side). Each record keeps its
``source`` (raw topic, partition, offset, index), the dedupe key downstream.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger
from marketpipe.kafka.topicrange import plan, read
from marketpipe.settings import Settings


def target_settings(settings: Settings, to_prefix: str | None) -> Settings:
    return settings if to_prefix is None else settings.with_env(MARKETPIPE_TOPIC_PREFIX=to_prefix)


def progress_bar(total: int, what: str, enabled: bool) -> Any:
    """A rich progress bar (frames, rate, ETA) on a terminal; silent otherwise."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                   TextColumn("{task.fields[rate]:>8} frames/s"), TimeRemainingColumn(),
                   disable=not enabled, transient=False)
    task = bar.add_task(what, total=total, rate="-")
    return bar, task


@dataclass(frozen=True)
class Replayed:
    """What a replay read and wrote."""

    raw_topic: str
    target: str  # the md.* topics written, as a pattern (md.* under the target prefix)
    frames: int
    records: int
    rejects: int
    problem: str | None  # why not every record was acknowledged, when that happened


def replay(settings: Settings, provider: str, since_ms: int, until_ms: int | None, *,
           symbols: frozenset[str] | None = None, to_prefix: str | None = None, progress: bool = False) -> Replayed:
    """Decode ``[since_ms, until_ms)`` of ``provider``'s raw topic again (up to the end offsets seen at
    the start when ``until_ms`` is None) and write the records under ``to_prefix`` (default: the
    live topics, whose missing ones are then not created). ``progress``: a progress bar on stderr."""
    from confluent_kafka import Consumer

    from marketpipe.processors.arbitrate import Arbiter
    from marketpipe.processors.normalize import Normalizer, RawRecord, decoder_state
    from marketpipe.processors.output import Output

    raw_topic = settings.topic(topics.RAW_TOPICS[provider])
    target = target_settings(settings, to_prefix)
    if to_prefix is not None and to_prefix != settings.topic_prefix:
        topics.create_topics(target.kafka.client_config(), prefix=to_prefix)
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-replay-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out = Output(target)
    # the same copy of an A/B pair's record wins as in the live processor: both read the partition in order
    normalizer = Normalizer(out, decoder_state(settings), symbols=symbols,
                            arbiter=Arbiter(settings.processor.ab_window_ms))
    frames = records = rejects = 0
    try:
        ranges = plan(consumer, raw_topic, since_ms, until_ms, FIRST_ANSWER_SECONDS)
        total = sum(r.size for r in ranges)
        bar, task = progress_bar(total, f"replay {raw_topic} → {target.topic('md.*')}", enabled=progress)
        started = time.monotonic()
        with bar:
            def advance(n: int) -> None:
                elapsed = max(time.monotonic() - started, 1e-3)
                bar.update(task, advance=n, rate=f"{frames / elapsed:,.0f}")

            for msg in read(consumer, raw_topic, ranges, advance):
                done = normalizer.process(provider, RawRecord.of(msg))
                frames += 1
                records += done.records
                rejects += done.rejects
                if frames % 5000 == 0:
                    out.producer.poll(0)
        problem = out.flush_now()
    finally:
        consumer.close()
    out.report()
    return Replayed(raw_topic, target.topic("md.*"), frames, records, rejects, problem or None)


def parser_version() -> str:
    from marketpipe.processors.decode.base import PARSER_VERSION

    return PARSER_VERSION
