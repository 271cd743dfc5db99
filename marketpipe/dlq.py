"""``marketpipe dlq list`` and ``marketpipe dlq redrive``: what was dead-lettered, and a second try.

``list`` summarises ``md.dlq`` by provider and reason. ``redrive`` decodes the frames of those
dead letters again with today's decoders (a dead letter too large to carry its frame is
re-read from its raw topic at ``source``), publishes what now parses to the md.* topics, and
reports how many were fixed and how many still fail. Redrive never writes dead letters of its
own: what still fails stays where it is.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

from marketpipe.kafka import topics
from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger
from marketpipe.kafka.topicrange import parse_time_ms, plan, read
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


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.tail import iso_ms

    summary = summarise(settings, _filter(args))
    total = sum(summary.by_reason.values())
    for (provider, reason), n in summary.by_reason.most_common():
        span = f"{iso_ms(summary.first_ms[(provider, reason)])} .. {iso_ms(summary.last_ms[(provider, reason)])}"
        print(f"{n:>8}  {provider:<8} {span}  {reason}")
    print(f"{total} dead letters in {len(summary.by_reason)} reasons"
          + (f"; {summary.unreadable} records on md.dlq are not readable dead letters" if summary.unreadable else ""))
    return 0


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


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.replay import parser_version, target_settings

    result = redrive(settings, _filter(args), target_settings(settings, args.to_prefix))
    print(f"redrive with parser {parser_version()}: {result.fixed} fixed ({result.records} records published), "
          f"{result.still_failing} still failing")
    return 0


def _filter(args: argparse.Namespace) -> Filter:
    now_ms = int(time.time() * 1000)
    return Filter(parse_time_ms(args.since, now_ms, "--since"),
                  parse_time_ms(args.until, now_ms, "--until") if args.until else None,
                  args.provider, args.reason)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dlq", help="summarise dead letters, or decode them again with today's decoders",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = p.add_subparsers(dest="dlq_command", metavar="list|redrive", required=True)
    for name, func, text in (("list", cmd_list, "count dead letters by provider and reason"),
                             ("redrive", cmd_redrive, "decode dead letters again; publish what now parses")):
        q = dsub.add_parser(name, help=text, description=text)
        q.add_argument("--since", default="72h", help="from: ISO time, a duration ago (15m, 2h, 72h) or epoch ms "
                                                      "(default 72h: the raw topics' retention)")
        q.add_argument("--until", help="to (exclusive), same forms; default: now")
        q.add_argument("--provider", choices=sorted(topics.RAW_TOPICS), help="only this provider's dead letters")
        q.add_argument("--reason", help="only dead letters whose reason contains this text")
        if name == "redrive":
            q.add_argument("--to-prefix", help="publish under this topic prefix instead of the live one")
        q.set_defaults(func=func)
