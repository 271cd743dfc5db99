"""The declared list of topics: one place for names, partition counts and configs.

Why these numbers:

* Raw topics keep frames exactly as received. They are keyed by connection id so
  one connection's frames stay in order in one partition. Six partitions leave
  room for six processor workers; three days of retention allow a replay after a
  parser fix (raw frames are small and compressed on the producer).
* ``md.*`` topics are keyed by canonical symbol, so every consumer of one symbol
  sees its records in order. Ticks and quotes are the busiest topics, hence 12
  partitions. Depth snapshots are bulky and only useful while fresh: one day.
* Bars and klines are small and are looked back at: 30 days. ``md.bar.state`` is the bar
  aggregator's memory (open windows per provider and symbol): compacted, as many partitions as
  ``md.tick`` so a big symbol universe restores quickly.
* ``md.status`` is small (a few records per provider and minute) and answers "was the feed
  healthy then?": two weeks, like the dead letters it helps to explain.
* ``md.completeness`` answers "is this range complete, and where are the holes?" for as long as
  bars are kept and longer: compacted, one record per provider, symbol and trading day (a few
  hundred bytes each), so it keeps every day's latest word without a retention clock.
* ``md.dlq`` keeps the failed frames for two weeks so they can be fixed and replayed. It takes
  records as large as the raw topics' (8 MiB) plus room for the reason, so a dead letter never
  fails for its size; an oversize one still carries a digest instead (``DEAD_LETTER_SAFE_BYTES``).
* Order topics: commands and events keep 90 days (an audit trail); the ledger is
  compacted (one latest state per command id, forever) because it is the trade
  consumer's durable memory of "this command may have reached the broker". The
  control topic (kill switch) and positions are compacted: only the latest value
  per key matters.
* Replication is decided by the cluster, not declared here, so the same list works on a one-node
  development broker and on a cluster: with three or more brokers ``topics create`` makes every
  topic RF 3 with ``min.insync.replicas=2`` and no unclean leader election
  (:mod:`marketpipe.kafka.durability`); a single broker keeps its defaults (RF 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from marketpipe import providers
from marketpipe.kafka import clients

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    doc: str = ""


def _delete(days: float) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(int(days * DAY_MS))}


COMPACT = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}

MIB = 1024 * 1024
#: Largest frame a raw topic takes: a provider frame is stored whole, whatever its size.
RAW_MAX_MESSAGE_BYTES = 8 * MIB
#: md.dlq takes a dead letter carrying the largest raw frame plus reason, headers and source.
DLQ_MAX_MESSAGE_BYTES = RAW_MAX_MESSAGE_BYTES + MIB
#: ``message.max.bytes`` of every producer writing raw topics or md.dlq: a record the topic
#: accepts must not be refused by the client first.
PRODUCER_MAX_MESSAGE_BYTES = DLQ_MAX_MESSAGE_BYTES
#: A dead letter larger than this keeps the frame's SHA-256 and length instead of its bytes (the
#: frame itself stays on its raw topic at ``source``). It fits Kafka's 1 MB default, so a dead
#: letter is written even to an md.dlq created before the limit above was declared.
DEAD_LETTER_SAFE_BYTES = 900_000

MD_TICK = "md.tick"
MD_DEPTH = "md.depth"
MD_KLINE = "md.kline"
MD_QUOTE = "md.quote"
MD_BAR = "md.bar"
MD_DLQ = "md.dlq"
MD_BAR_STATE = "md.bar.state"
MD_STATUS = "md.status"
MD_COMPLETENESS = "md.completeness"
ORDER_COMMANDS = "order.commands"
ORDER_EVENTS = "order.events"
ORDER_LEDGER = "order.ledger"
ORDER_CONTROL = "order.control"
ORDER_POSITIONS = "order.positions"

#: provider -> its raw topic, from the provider registry
RAW_TOPICS = {p.name: p.raw_topic for p in providers.PROVIDERS}

TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(p.raw_topic, 6, {**_delete(3), "max.message.bytes": str(RAW_MAX_MESSAGE_BYTES)}, p.raw_topic_doc)
      for p in providers.PROVIDERS),
    TopicSpec(MD_TICK, 12, _delete(7), "Trades (Tick), keyed by symbol"),
    TopicSpec(MD_DEPTH, 12, _delete(1), "Order-book snapshots (Depth), keyed by symbol"),
    TopicSpec(MD_KLINE, 6, _delete(30), "Provider klines (Kline), keyed by symbol"),
    TopicSpec(MD_QUOTE, 12, _delete(1), "Level-1 snapshots (Quote), keyed by symbol"),
    TopicSpec(MD_BAR, 6, _delete(30), "OHLCV bars computed from md.tick (Bar), first emission and corrections"),
    TopicSpec(MD_BAR_STATE, 12, COMPACT, "Open bar windows per provider|symbol (compacted): restored after a restart"),
    TopicSpec(MD_STATUS, 3, _delete(14), "Feed health (FeedStatus), keyed by provider: connects, gaps, stale symbols, "
              "per-minute rate and latency"),
    TopicSpec(MD_COMPLETENESS, 6, COMPACT, "Completeness ledger (Completeness), keyed by provider|symbol|trading day "
              "(compacted): the day's intervals, complete, gap, filled or unfillable"),
    TopicSpec(MD_DLQ, 3, {**_delete(14), "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
              "Frames that could not be parsed (DeadLetter) with the reason"),
    TopicSpec(ORDER_COMMANDS, 6, _delete(90), "Signed order commands (OrderCommand), keyed by account"),
    TopicSpec(ORDER_EVENTS, 6, _delete(90), "Every order state change (OrderEvent), keyed by command id"),
    TopicSpec(ORDER_LEDGER, 6, COMPACT, "Trade consumer's intent ledger, keyed by command id (compacted)"),
    # LogAppendTime: the broker stamps a control record, so an old signed resume written again reads as stale
    TopicSpec(ORDER_CONTROL, 1, {**COMPACT, "message.timestamp.type": "LogAppendTime"},
              "Kill switch and other trader controls (compacted)"),
    TopicSpec(ORDER_POSITIONS, 3, COMPACT, "Position snapshots, keyed by account and symbol (compacted)"),
)


def by_name(name: str) -> TopicSpec:
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}; declared: {', '.join(s.name for s in TOPICS)}")


def create_topics(
    client_config: Mapping[str, str],
    prefix: str = "",
    specs: tuple[TopicSpec, ...] = TOPICS,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create the declared topics that do not exist yet; returns {topic: 'created'|'exists'}.

    ``replication_factor=-1`` means: RF 3, ``min.insync.replicas=2`` and no unclean leader election
    on a cluster of three or more brokers (counted from its metadata), else the broker's
    ``default.replication.factor`` and defaults.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    from marketpipe.kafka.durability import durable_topic_config, replication_for

    admin = clients.admin(client_config)
    md = admin.list_topics(timeout=timeout)
    existing = set(md.topics)
    brokers = len(md.brokers)
    durable = durable_topic_config(brokers)
    if replication_factor == -1 and durable:
        replication_factor = replication_for(brokers)
    result: dict[str, str] = {}
    wanted = []
    for spec in specs:
        name = prefix + spec.name
        if name in existing:
            result[name] = "exists"
        else:
            wanted.append(NewTopic(name, num_partitions=spec.partitions,
                                   replication_factor=replication_factor, config={**durable, **spec.config}))
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result(timeout)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    result[name] = "exists"
                else:
                    raise
        _wait_for_leaders(admin, [t for t, state in result.items() if state == "created"], timeout)
    return result


def _wait_for_leaders(admin: Any, names: list[str], timeout: float) -> None:
    """Return once every partition of the new topics has a leader: a client that starts right after
    ``topics create`` then finds them usable instead of retrying on stale metadata."""
    import time

    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        md = admin.list_topics(timeout=timeout).topics
        pending = {n for n in pending
                   if n not in md or md[n].error is not None or not md[n].partitions
                   or any(p.leader < 0 for p in md[n].partitions.values())}
        if pending:
            time.sleep(0.1)
    if pending:
        log.warning("topics without a leader after %.0f s: %s", timeout, ", ".join(sorted(pending)))


def describe_created(result: Mapping[str, str], prefix: str) -> Iterator[str]:
    """One line per topic of a :func:`create_topics` result: its state, name, partitions and config."""
    for name, state in result.items():
        spec = by_name(name[len(prefix):])
        yield (f"{state:8} {name:32} partitions={spec.partitions} " +
               " ".join(f"{k}={v}" for k, v in spec.config.items()))
