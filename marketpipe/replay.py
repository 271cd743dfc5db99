"""``marketpipe replay``: decode a time range of a raw topic again with today's decoders.

The raw topics keep every frame as received for three days, so a parser fix can be applied to
history. Replay reads ``[--since, --until)`` of one provider's raw topic (offsets found by
timestamp) up to the end offsets it saw when it started, and writes the md.* records, with the
current ``parser_version``, through the same Normalizer the live processor uses. ``--to-prefix``
writes under another topic prefix, so a parser change can be compared side by side before it
goes live. It can run while the live processors run: each record keeps its ``source`` (raw
topic, partition, offset, index), the dedupe key downstream.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger
from marketpipe.kafka.topicrange import parse_time_ms, plan, read
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import Consumer

    from marketpipe.processors.normalize import Normalizer, RawRecord, decoder_state
    from marketpipe.processors.output import Output

    now_ms = int(time.time() * 1000)
    since = parse_time_ms(args.since, now_ms, "--since")
    until = parse_time_ms(args.until, now_ms, "--until") if args.until else None
    raw_topic = settings.topic(topics.RAW_TOPICS[args.provider])
    target = target_settings(settings, args.to_prefix)
    if args.to_prefix is not None and args.to_prefix != settings.topic_prefix:
        topics.create_topics(target.kafka.client_config(), prefix=args.to_prefix)
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-replay-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out = Output(target)
    normalizer = Normalizer(out, decoder_state(settings), symbols=frozenset(args.symbols) if args.symbols else None)
    frames = records = rejects = 0
    try:
        ranges = plan(consumer, raw_topic, since, until, FIRST_ANSWER_SECONDS)
        total = sum(r.size for r in ranges)
        bar, task = progress_bar(total, f"replay {raw_topic} → {target.topic('md.*')}",
                                 enabled=not args.quiet and sys.stderr.isatty())
        started = time.monotonic()
        with bar:
            def advance(n: int) -> None:
                elapsed = max(time.monotonic() - started, 1e-3)
                bar.update(task, advance=n, rate=f"{frames / elapsed:,.0f}")

            for msg in read(consumer, raw_topic, ranges, advance):
                done = normalizer.process(args.provider, RawRecord.of(msg))
                frames += 1
                records += done.records
                rejects += done.rejects
                if frames % 5000 == 0:
                    out.producer.poll(0)
        problem = out.flush_now()
    finally:
        consumer.close()
    out.report()
    print(f"replayed {frames} frames of {raw_topic}: {records} records and {rejects} dead letters "
          f"to {target.topic('md.*')} (parser {parser_version()})")
    if problem:
        print(f"marketpipe replay: {problem}", file=sys.stderr)
        return 1
    return 0


def parser_version() -> str:
    from marketpipe.processors.decode.base import PARSER_VERSION

    return PARSER_VERSION


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="decode a time range of a raw topic again with today's decoders",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=sorted(topics.RAW_TOPICS), help="whose raw topic to replay")
    p.add_argument("--since", required=True,
                   help="start: ISO time (2026-11-26T09:30+08:00; no offset means UTC), a duration ago (15m, 2h) "
                        "or epoch ms")
    p.add_argument("--until", help="end (exclusive), same forms; default: the end of the topic when replay starts")
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="only these canonical symbols (600519.SH ...)")
    p.add_argument("--to-prefix", help="write under this topic prefix instead of the live one (its topics are "
                                       "created), to compare a parser change side by side")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
