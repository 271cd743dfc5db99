"""A small typed API for services that consume marketpipe's topics.

Reading market data::

    from marketpipe.client import MarketDataConsumer, Tick

    with MarketDataConsumer(["md.tick"], group_id="my-service", start="latest",
                            symbols=["600519.SH"]) as consumer:
        for tick in consumer.records(timeout=1.0):   # Tick, Quote, Depth, ... dataclasses
            ...
            consumer.commit()                         # when *you* choose (auto-commit is off)

* Records are frozen dataclasses mirroring ``marketpipe/schemas/*.avsc`` field for field (a test compares
  them), decoded with :mod:`marketpipe.schemas.codec`, so both framings work: Confluent wire format (with
  ``SCHEMA_REGISTRY_URL``) and Avro single-object encoding (without).
* ``group_id`` given: the consumer joins that group (``subscribe``) and ``start`` applies to a
  partition the first time this consumer gets it (``"committed"`` keeps the group's offsets).
  ``group_id=None``: every partition is assigned directly and nothing is committed.
* ``start``: ``"committed"``, ``"latest"``, ``"earliest"``, or a time (``datetime`` or UTC epoch
  ms), found with ``offsets_for_times`` (md.* messages are timestamped with the event time, except a
  record whose event time the broker would refuse or delete at once: one over 30 minutes ahead, or a
  replayed one older than its topic's retention, is timestamped when it was written).
* Duplicates: the processors are at-least-once; a replay rewrites byte-identical records with
  the same ``source``. The consumer drops a record whose identity (:func:`identity`) it saw within
  ``dedupe_seconds`` (default 300 s; ``0`` keeps every copy).
* ``Quote.interval_volume`` (volume since the symbol's previous quote) is derived here, in the order
  this consumer reads (:class:`IntervalVolumes`): the processor leaves it empty so that a replayed
  quote is the same bytes. A symbol's first quote, and the first after a counter reset, has None.

Orders::

    from marketpipe.client import OrderClient

    orders = OrderClient(signing_key=..., account="000000000042")
    command_id = orders.place("600519.SH", "buy", "1500.00", 100)
    event = orders.wait_for(command_id, states={"FILLED", "REJECTED"}, timeout=30)

Settings come from :mod:`marketpipe.settings` (environment), or pass ``settings=``, or override
``bootstrap_servers=`` / ``topic_prefix=`` / ``config=`` (librdkafka properties) explicitly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
import typing
import uuid
from collections import OrderedDict
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, Sequence, TypeVar

from confluent_kafka.serialization import Deserializer

from marketpipe import settings as settings_mod
from marketpipe.completeness import (  # noqa: F401 - Hole, Interval, Mark: what completeness() answers with
    Completeness,
    DayLedger,
    Hole,
    Interval,
    Mark,
    judge,
)
from marketpipe.kafka import topics as topics_mod
from marketpipe.kafka.clients import durable_producer_config, readable_now
from marketpipe.market.volume import VolumeState, derive

# ---------------------------------------------------------------------------------------------
# Records: one dataclass per Avro record schema, fields in the schema's order.


@dataclass(frozen=True)
class SourceRef:
    """The raw frame a record was derived from; unique per record (the dedupe key)."""

    topic: str
    partition: int
    offset: int
    index: int


@dataclass(frozen=True)
class Level:
    price: float
    size: float


@dataclass(frozen=True)
class Tick:
    provider: str
    symbol: str
    venue_symbol: str
    event_time: int
    receive_time_ns: int
    price: float
    size: float
    amount: float | None
    side: str  # BUY | SELL | UNKNOWN
    trade_id: str | None
    session: str | None
    parser_version: str
    source: SourceRef


@dataclass(frozen=True)
class Quote:
    provider: str
    symbol: str
    venue_symbol: str
    event_time: int
    receive_time_ns: int
    name: str | None
    last: float
    prev_close: float | None
    change_pct: float | None
    open: float | None
    high: float | None
    low: float | None
    cum_volume: float | None
    cum_amount: float | None
    interval_volume: float | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    field_order: str | None
    parser_version: str
    source: SourceRef


@dataclass(frozen=True)
class Depth:
    provider: str
    symbol: str
    venue_symbol: str
    event_time: int
    receive_time_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    parser_version: str
    source: SourceRef


@dataclass(frozen=True)
class Kline:
    provider: str
    symbol: str
    venue_symbol: str
    event_time: int
    receive_time_ns: int
    interval: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float | None
    parser_version: str
    source: SourceRef
    backfilled: bool = False  # fetched from the provider's history after a gap, not pushed live


@dataclass(frozen=True)
class Bar:
    provider: str
    symbol: str
    interval_ms: int
    window_start: int
    window_end: int
    event_time: int
    receive_time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float | None
    trade_count: int
    revision: int  # keep the highest per (provider, symbol, window_start)
    parser_version: str
    gap: bool = False  # the window overlaps a known gap of its feed: trades may be missing


@dataclass(frozen=True)
class DeadLetter:
    provider: str
    symbol: str
    event_time: int
    receive_time_ns: int
    reason: str
    error_type: str
    raw: bytes
    source: SourceRef
    headers: Mapping[str, str]
    parser_version: str
    raw_length: int = -1  # length of the frame; with an empty ``raw``: too large, see ``raw_sha256``
    raw_sha256: str = ""  # digest of a frame too large to carry (it stays on its raw topic at ``source``)


@dataclass(frozen=True)
class OrderEvent:
    event_id: str
    command_id: str
    account: str
    provider: str
    state: str  # ACCEPTED | REJECTED | SUBMITTED | CANCEL_REQUESTED | CANCELLED | PARTIALLY_FILLED | FILLED | FAILED | UNKNOWN
    rule: str | None
    reason: str | None
    broker_order_id: str | None
    symbol: str
    side: str | None
    price: Decimal | None
    volume: int
    filled_volume: int
    avg_fill_price: Decimal | None
    event_time: int
    receive_time_ns: int


@dataclass(frozen=True)
class FeedStatus:
    """Feed health on md.status: kind is connected, disconnected, reconnected, resubscribed, recycled
    (a producer's action on one silent subscription: ``symbol`` is the provider's code), gap,
    filled, stale, fresh or stats; the other fields are filled as the kind needs."""

    provider: str
    kind: str
    event_time: int
    connection: str = ""
    session: int = 0
    symbol: str = ""
    reason: str = ""
    silent_ms: int = 0
    gap_start: int = 0
    gap_end: int = 0
    seq_from: int = 0
    seq_to: int = 0
    messages: int = 0
    rate: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    line: str = ""  # A/B capture: the line of line_down / line_up / line_gap, and of a gap both lines missed


#: Avro schema name -> record class (the schemas a consumer of marketpipe's topics meets).
RECORD_TYPES: dict[str, type] = {cls.__name__: cls for cls in (Tick, Quote, Depth, Kline, Bar, DeadLetter, OrderEvent,
                                                                  FeedStatus)}
#: Nested record types, checked against their own schemas too.
NESTED_TYPES: dict[str, type] = {"SourceRef": SourceRef, "Level": Level}

#: Logical topic -> the record schema it carries.
TOPIC_SCHEMAS: dict[str, str] = {
    topics_mod.MD_TICK: "Tick", topics_mod.MD_QUOTE: "Quote", topics_mod.MD_DEPTH: "Depth",
    topics_mod.MD_KLINE: "Kline", topics_mod.MD_BAR: "Bar", topics_mod.MD_DLQ: "DeadLetter",
    topics_mod.ORDER_EVENTS: "OrderEvent", topics_mod.MD_STATUS: "FeedStatus",
}

#: Topics whose Kafka key is the canonical symbol (a symbol filter can skip others undecoded).
KEYED_BY_SYMBOL = frozenset({topics_mod.MD_TICK, topics_mod.MD_QUOTE, topics_mod.MD_DEPTH, topics_mod.MD_KLINE,
                             topics_mod.MD_BAR})

Record = Tick | Quote | Depth | Kline | Bar | DeadLetter | OrderEvent | FeedStatus
R = TypeVar("R")

TERMINAL_STATES = frozenset({"REJECTED", "CANCELLED", "FILLED", "FAILED", "UNKNOWN"})


class IntervalVolumes:
    """Fills ``Quote.interval_volume`` (volume since the symbol's previous quote) in the order a
    reader sees the quotes; the processor leaves it empty, since a replay could not repeat it
    (marketpipe/market/volume.py has the rules: a new trading day, reordered or reset snapshots). The first
    quote of each symbol, and one after a reset, stays None. :class:`TopicConsumer` uses one."""

    def __init__(self) -> None:
        self.states: dict[str, VolumeState] = {}

    def fill(self, quote: Quote) -> Quote:
        if quote.interval_volume is not None:  # written by an older processor: kept as it is
            return quote
        interval, state = derive(self.states.get(quote.symbol), quote.cum_volume, quote.event_time)
        if state is not None:
            self.states[quote.symbol] = state
        return dataclasses.replace(quote, interval_volume=interval)


def _tuple_of(item: Callable[[Any], Any], values: Any) -> tuple[Any, ...]:
    return tuple(item(x) for x in values)


def _builder(cls: type) -> Callable[[Mapping[str, Any]], Any]:
    """``dict -> cls`` converting nested records (SourceRef, lists of Level) by the type hints."""
    hints = typing.get_type_hints(cls)
    steps: list[tuple[str, Callable[[Any], Any] | None]] = []
    for f in fields(cls):
        hint = hints[f.name]
        if is_dataclass(hint):
            steps.append((f.name, _builder(hint)))  # type: ignore[arg-type]
        elif typing.get_origin(hint) is tuple:
            item = _builder(typing.get_args(hint)[0])
            steps.append((f.name, functools.partial(_tuple_of, item)))
        else:
            steps.append((f.name, None))

    def build(record: Mapping[str, Any]) -> Any:
        return cls(**{name: (conv(record[name]) if conv else record[name]) for name, conv in steps})

    return build


class RecordDeserializer(Deserializer):
    """``bytes -> record dataclass`` for either Avro framing, in the shape of confluent-kafka's
    deserializers (``deserializer(value, ctx)``); usable with a plain ``confluent_kafka.Consumer``.

    ``expect`` ("Tick", ...) rejects other schemas. ``codec`` defaults to the one the settings
    describe (a Schema Registry when ``SCHEMA_REGISTRY_URL`` is set).
    """

    def __init__(self, codec: Any = None, expect: str | None = None,
                 settings: settings_mod.Settings | None = None) -> None:
        from marketpipe.schemas import codec as codec_mod

        self.codec = codec if codec is not None else codec_mod.from_settings(settings or settings_mod.load())
        self.expect = expect
        self._builders = {name: _builder(cls) for name, cls in RECORD_TYPES.items()}

    def __call__(self, value: bytes | None, ctx: Any = None) -> Record | None:
        if value is None:
            return None
        decoded = self.codec.decode(value, expect=self.expect)
        build = self._builders.get(decoded.schema)
        if build is None:
            from marketpipe.schemas.codec import CodecError

            raise CodecError(f"{decoded.schema} records are not read through marketpipe.client")
        return build(decoded.record)


def identity(record: Record) -> tuple[Any, ...]:
    """What makes a record unique: its ``source`` for market data and dead letters, the window and
    revision for a bar, the event id for an order event. Replays repeat the identity exactly."""
    if isinstance(record, Bar):
        return ("bar", record.provider, record.symbol, record.interval_ms, record.window_start, record.revision)
    if isinstance(record, OrderEvent):
        return ("order", record.event_id)
    if isinstance(record, FeedStatus):
        return ("status", record.provider, record.kind, record.connection, record.session, record.symbol,
                record.event_time, record.gap_start)
    src = record.source
    return (type(record).__name__, src.topic, src.partition, src.offset, src.index)


class Deduper:
    """Remembers identities for ``seconds`` (a replay never reaches further back than the
    processor's commit interval plus one batch, so a few minutes is plenty)."""

    def __init__(self, seconds: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 2_000_000) -> None:
        self.seconds = seconds
        self.clock = clock
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[Any, ...], float] = OrderedDict()

    def first_time(self, record: Record) -> bool:
        """True the first time a record's identity is seen within the window."""
        now = self.clock()
        while self._seen and (len(self._seen) >= self.max_entries
                              or next(iter(self._seen.values())) < now - self.seconds):
            self._seen.popitem(last=False)
        key = identity(record)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


# ---------------------------------------------------------------------------------------------
# Consumers


def _resolve(settings: settings_mod.Settings | None, bootstrap_servers: str | None,
             topic_prefix: str | None, config: Mapping[str, str] | None) -> tuple[settings_mod.Settings, dict[str, Any], str]:
    from marketpipe.kafka.quietlog import rdkafka_logger

    s = settings or settings_mod.load()
    # librdkafka's retry lines through Python logging (and its repeat filter), not raw stderr
    conf: dict[str, Any] = {**s.kafka.client_config(bootstrap_servers), **rdkafka_logger()}
    conf.update(config or {})
    return s, conf, s.topic_prefix if topic_prefix is None else topic_prefix


def _start_ms(start: str | int | dt.datetime) -> int | None:
    if isinstance(start, dt.datetime):
        if start.tzinfo is None:
            raise ValueError("start: use a timezone-aware datetime (marketpipe times are UTC)")
        return int(start.timestamp() * 1000)
    if isinstance(start, int) and not isinstance(start, bool):
        return start
    if start not in ("committed", "latest", "earliest"):
        raise ValueError(f"start={start!r}: use 'committed', 'latest', 'earliest', a datetime or epoch ms")
    return None


class TopicConsumer(Generic[R]):
    """A plain confluent-kafka ``Consumer`` underneath (``.consumer``), typed records on top."""

    def __init__(self, topics: Sequence[str], *, group_id: str | None = None,
                 start: str | int | dt.datetime | None = None, symbols: Iterable[str] | None = None,
                 dedupe_seconds: float = 300.0, settings: settings_mod.Settings | None = None,
                 bootstrap_servers: str | None = None, topic_prefix: str | None = None,
                 config: Mapping[str, str] | None = None, codec: Any = None) -> None:
        from confluent_kafka import Consumer

        if isinstance(topics, str):
            topics = [topics]
        unknown = [t for t in topics if t not in TOPIC_SCHEMAS]
        if unknown:
            raise ValueError(f"not a record topic: {', '.join(unknown)} (known: {', '.join(TOPIC_SCHEMAS)})")
        self.settings, conf, prefix = _resolve(settings, bootstrap_servers, topic_prefix, config)
        self.topics = [prefix + t for t in topics]
        self._keyed_by_symbol = frozenset(prefix + t for t in topics if t in KEYED_BY_SYMBOL)
        self.group_id = group_id
        start = start if start is not None else ("committed" if group_id else "latest")
        if start == "committed" and not group_id:
            raise ValueError("start='committed' needs a group_id")
        self._start = start
        self._start_ms = _start_ms(start)
        self.symbols = frozenset(symbols) if symbols else None
        self.deduper = Deduper(dedupe_seconds) if dedupe_seconds > 0 else None
        self.volumes = IntervalVolumes()  # Quote.interval_volume, in the order this consumer reads
        self.deserializer = RecordDeserializer(codec, settings=self.settings)
        self._positioned: set[tuple[str, int]] = set()
        conf.setdefault("group.id", group_id or f"marketpipe-client-{uuid.uuid4().hex[:12]}")
        conf.setdefault("enable.auto.commit", "false")
        conf.setdefault("auto.offset.reset", "earliest" if start == "earliest" else "latest")
        self.consumer = Consumer(conf)
        try:
            if group_id:
                self.consumer.subscribe(self.topics, on_assign=self._on_assign)
            else:
                self.consumer.assign(self._initial(self._all_partitions()))
        except BaseException:
            self.consumer.close()
            raise

    # -- positioning ---------------------------------------------------------------------------
    def _all_partitions(self) -> list[Any]:
        from confluent_kafka import TopicPartition

        md = self.consumer.list_topics(timeout=30)
        out = []
        for topic in self.topics:
            meta = md.topics.get(topic)
            if meta is None or meta.error is not None:
                raise LookupError(f"topic {topic} does not exist on {self.settings.kafka.bootstrap_servers}")
            out += [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        return out

    def _initial(self, partitions: list[Any]) -> list[Any]:
        """Set the start offset of partitions this consumer has not positioned before."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, TopicPartition

        fresh = [p for p in partitions if (p.topic, p.partition) not in self._positioned]
        if self._start_ms is not None and fresh:
            wanted = [TopicPartition(p.topic, p.partition, self._start_ms) for p in fresh]
            found = {(p.topic, p.partition): p.offset for p in self._offsets_for_times(wanted)}
        for p in fresh:
            if self._start == "latest":
                p.offset = OFFSET_END
            elif self._start == "earliest":
                p.offset = OFFSET_BEGINNING
            elif self._start_ms is not None:
                offset = found[(p.topic, p.partition)]
                p.offset = OFFSET_END if offset in (-1, OFFSET_INVALID) else offset  # nothing that late yet
            self._positioned.add((p.topic, p.partition))
        return partitions

    def _offsets_for_times(self, wanted: list[Any], timeout: float = 30.0) -> list[Any]:
        """``offsets_for_times``, retried while the cluster's metadata settles (a partition
        leader that just moved or a topic created a moment ago answer NOT_LEADER for a while)."""
        from confluent_kafka import KafkaError, KafkaException

        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.consumer.offsets_for_times(wanted, timeout=max(1.0, deadline - time.monotonic()))
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                transient = isinstance(err, KafkaError) and (err.retriable() or err.code() in (
                    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                    KafkaError.UNKNOWN_TOPIC_OR_PART))
                if not transient or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        consumer.assign(self._initial(partitions))

    # -- reading -------------------------------------------------------------------------------
    def _accept(self, msg: Any) -> R | None:
        from confluent_kafka import KafkaException

        if msg.error():
            if msg.error().fatal():
                raise KafkaException(msg.error())
            return None  # partition EOF and transient errors: librdkafka retries
        if (self.symbols is not None and msg.topic() in self._keyed_by_symbol
                and (msg.key() or b"").decode("utf-8", "replace") not in self.symbols):
            return None  # skipped without decoding
        record = self.deserializer(msg.value())
        if self.symbols is not None and getattr(record, "symbol", None) not in self.symbols:
            return None
        if self.deduper is not None and not self.deduper.first_time(record):  # type: ignore[arg-type]
            return None
        if isinstance(record, Quote):
            record = self.volumes.fill(record)
        return record  # type: ignore[return-value]

    def poll(self, timeout: float = 1.0) -> R | None:
        """The next record (filtered, deduplicated), or None when none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.consumer.poll(max(0.0, deadline - time.monotonic()))
            if msg is not None:
                record = self._accept(msg)
                if record is not None:
                    return record
            if time.monotonic() >= deadline:
                return None

    def consume(self, max_records: int = 500, timeout: float = 1.0) -> list[R]:
        """Up to ``max_records`` records read within ``timeout`` (a batch, for throughput)."""
        out: list[R] = []
        for msg in self.consumer.consume(max_records, timeout):
            record = self._accept(msg)
            if record is not None:
                out.append(record)
        return out

    def readable(self, wait: float = 1.0, most: int = 1000) -> list[R]:
        """The records readable now, waiting up to ``wait`` for the first one only: for a reader
        that acts on each record as it comes (``consume`` waits for its whole batch or timeout)."""
        out: list[R] = []
        for msg in readable_now(self.consumer, wait, most):
            record = self._accept(msg)
            if record is not None:
                out.append(record)
        return out

    def records(self, timeout: float | None = None, limit: int | None = None) -> Iterator[R]:
        """Iterate over records; stops after ``timeout`` seconds without one (None: never) or ``limit``."""
        count = 0
        while limit is None or count < limit:
            record = self.poll(timeout if timeout is not None else 1.0)
            if record is None:
                if timeout is not None:
                    return
                continue
            count += 1
            yield record

    def commit(self, asynchronous: bool = False) -> None:
        """Commit the positions of everything returned so far (needs a ``group_id``)."""
        if not self.group_id:
            raise RuntimeError("commit needs a group_id: this consumer reads without a group")
        self.consumer.commit(asynchronous=asynchronous)

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "TopicConsumer[R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Reads any md.* topics; records are Tick, Quote, Depth, Kline, Bar or DeadLetter.
MarketDataConsumer = TopicConsumer


# ---------------------------------------------------------------------------------------------
# Completeness


def _ms(value: int | dt.datetime) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("use a timezone-aware datetime (marketpipe times are UTC)")
        return int(value.timestamp() * 1000)
    return int(value)


def ledger(symbols: Iterable[str] | None = None, *, provider: str | None = None,
           settings: settings_mod.Settings | None = None, bootstrap_servers: str | None = None,
           topic_prefix: str | None = None, config: Mapping[str, str] | None = None,
           timeout: float = 30.0) -> list[DayLedger]:
    """Every day of ``md.completeness`` (of these symbols / this provider), its latest version per
    key: the compacted topic read to its end. Records of other symbols are skipped by key,
    undecoded."""
    from marketpipe.kafka.compacted import read_to_end
    from marketpipe.schemas import codec as codec_mod

    s, conf, prefix = _resolve(settings, bootstrap_servers, topic_prefix, config)
    codec = codec_mod.from_settings(s)
    wanted = frozenset(symbols) if symbols is not None else None
    latest: dict[bytes, bytes | None] = {}

    def take(msg: Any) -> None:
        key = msg.key() or b""
        who, _, rest = key.decode("utf-8", "replace").partition("|")
        if (provider is None or who == provider) and (wanted is None or rest.rpartition("|")[0] in wanted):
            latest[key] = msg.value()  # a tombstone (None) deletes the day

    read_to_end(conf, prefix + topics_mod.MD_COMPLETENESS, f"marketpipe-client-{uuid.uuid4().hex[:12]}", take,
                timeout=timeout)
    days = [DayLedger.from_record(codec.decode(v, expect="Completeness").record) for v in latest.values() if v]
    return sorted(days, key=lambda d: (d.symbol, d.day, d.provider))


def completeness(symbol: str, start: int | dt.datetime, end: int | dt.datetime, *, provider: str | None = None,
                 settings: settings_mod.Settings | None = None, bootstrap_servers: str | None = None,
                 topic_prefix: str | None = None, config: Mapping[str, str] | None = None,
                 timeout: float = 30.0) -> Completeness:
    """Whether ``symbol``'s data over ``[start, end)`` (UTC epoch ms or aware datetimes, receive
    time) is complete, from the completeness ledger: ``.complete``, and ``.holes`` (``Hole(start,
    end, state)``, state ``gap``, ``unfillable`` or ``unobserved``) where it is not. ``provider``
    None: any provider carrying the symbol counts (a point one of them has is no hole)."""
    first, last = _ms(start), _ms(end)
    if last < first:
        raise ValueError("end before start")
    days = ledger([symbol], provider=provider, settings=settings, bootstrap_servers=bootstrap_servers,
                  topic_prefix=topic_prefix, config=config, timeout=timeout)
    return judge(symbol, [i for d in days for i in d.intervals], first, last)


# ---------------------------------------------------------------------------------------------
# Orders


class OrderClient:
    """Sign and send order commands (``marketpipe.trader.commands``, ``marketpipe.trader.signing``) and follow their
    events on ``order.events`` (keyed by command id).

    ``since``: the earliest event time of interest (default: a minute before the client was
    made), so ``wait_for`` also sees events that arrived before it was called.
    """

    def __init__(self, *, signing_key: str | None = None, account: str | None = None,
                 settings: settings_mod.Settings | None = None, bootstrap_servers: str | None = None,
                 topic_prefix: str | None = None, config: Mapping[str, str] | None = None,
                 since: int | dt.datetime | None = None, codec: Any = None) -> None:
        s, conf, prefix = _resolve(settings, bootstrap_servers, topic_prefix, config)
        self._conf = conf
        # trader.commands reads bootstrap/prefix/registry from Settings: give it the resolved ones
        self.settings = s.with_env(MARKETPIPE_TOPIC_PREFIX=prefix, KAFKA_BOOTSTRAP_SERVERS=conf["bootstrap.servers"])
        self.account = account
        self._key = signing_key if signing_key is not None else self.settings.order_signing_key.reveal()
        self._since = since if since is not None else int(time.time() * 1000) - 60_000
        self._codec = codec
        self._producer: Any = None
        self._events: TopicConsumer[OrderEvent] | None = None
        self._seen: dict[str, list[OrderEvent]] = {}

    def _signing_key(self) -> str:
        if not self._key:
            raise ValueError("no signing key: pass signing_key= or set MARKETPIPE_ORDER_SIGNING_KEY")
        return self._key

    def _account(self, account: str | None) -> str:
        acct = account or self.account
        if not acct:
            raise ValueError("no account: pass account= to OrderClient or to this call")
        return acct

    def send(self, command: dict[str, Any]) -> str:
        """Send an already signed command; returns its command id."""
        from confluent_kafka import Producer

        from marketpipe.trader import commands

        if self._producer is None:
            self._producer = Producer(durable_producer_config(self._conf))
        commands.send(self.settings, command, producer=self._producer)
        if self._producer.flush(30):
            raise RuntimeError("order command not acknowledged by Kafka in 30 s")
        return str(command["command_id"])

    def place(self, symbol: str, side: str, price: str | Decimal, volume: int, *, account: str | None = None,
              command_id: str | None = None, ttl_s: float = 30.0) -> str:
        """Sign and send a limit order; returns the command id (pass your own for idempotency)."""
        from marketpipe.trader import commands

        cmd = commands.place(self._account(account), symbol, side, price, volume, self._signing_key(),
                             command_id=command_id, ttl_s=ttl_s)
        return self.send(cmd)

    def cancel(self, symbol: str, *, target_command_id: str | None = None, broker_order_id: str | None = None,
               account: str | None = None, command_id: str | None = None, ttl_s: float = 30.0) -> str:
        from marketpipe.trader import commands

        cmd = commands.cancel(self._account(account), symbol, self._signing_key(),
                              target_command_id=target_command_id, broker_order_id=broker_order_id,
                              command_id=command_id, ttl_s=ttl_s)
        return self.send(cmd)

    def events(self, command_id: str) -> list[OrderEvent]:
        """The events of a command read so far (``wait_for`` reads more)."""
        return list(self._seen.get(command_id, ()))

    def wait_for(self, command_id: str, states: Iterable[str] = TERMINAL_STATES, timeout: float = 60.0) -> OrderEvent:
        """The first event of ``command_id`` whose state is in ``states``; TimeoutError otherwise."""
        wanted = frozenset(s.upper() for s in ([states] if isinstance(states, str) else states))
        deadline = time.monotonic() + timeout
        while True:
            for event in self._seen.get(command_id, ()):
                if event.state in wanted:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.state for e in self._seen.get(command_id, ())]
                raise TimeoutError(f"command {command_id}: no {'/'.join(sorted(wanted))} event in {timeout:g} s "
                                   f"(seen: {', '.join(seen) or 'none'})")
            self._read(min(left, 0.5))

    def _read(self, timeout: float) -> None:
        if self._events is None:
            self._events = TopicConsumer([topics_mod.ORDER_EVENTS], start=self._since, settings=self.settings,
                                         config={k: v for k, v in self._conf.items() if k != "bootstrap.servers"},
                                         codec=self._codec)
        for event in self._events.readable(timeout):
            self._seen.setdefault(event.command_id, []).append(event)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(30)
        if self._events is not None:
            self._events.close()

    def __enter__(self) -> "OrderClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
