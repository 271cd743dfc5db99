"""The stream-processing app (faust-streaming): raw frames → Avro ``md.*`` records, and bars.

Run ``marketpipe process`` or ``faust -A processors.app worker``. One process is one worker;
scale out with more workers (up to the raw topics' partition count).

Normalize agents (one per raw topic) take events in batches (``take_events``), decode each frame
with the pure decoders, encode Avro with cached encoders, and produce through a confluent-kafka
producer owned by the app (measured much faster than Faust's own send path). The batch's outputs
are flushed **before** Faust acknowledges the batch's offsets, so a crash can never commit a frame
whose records were not written: delivery is at-least-once. After a ``kill -9`` the frames since the
last commit are processed again and their records written again — byte-identical records with the
same ``source`` (raw topic, partition, offset, index), which is the dedup key for consumers (trades
also carry the provider trade id).

A frame that cannot be decoded goes to ``md.dlq`` with the reason; records a partly bad jvQuant
frame did yield are still published. Any other exception on one frame is dead-lettered too (with
the exception's class): the agent never dies on bad input.

The bar agent reads ``md.tick`` and keeps its windows in a changelogged Faust table, so windows
open at a crash are restored on restart and still close; a timer closes windows of idle streams.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import faust

from marketpipe import settings as settings_mod
from marketpipe import topics
from marketpipe.rawframe import header_dict, parse_meta
from processors import bars as barlib
from processors import metrics
from processors.cli import group_id
from processors.decode import ParseError, RawFrame, decode
from processors.decode.base import dead_letter
from processors.fastpath import fast_flow
from processors.profile import profile
from processors.volume import VolumeTracker
from schemas import codec as codec_mod

log = logging.getLogger("processors")

SETTINGS = settings_mod.load()


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


def _credentials(s: settings_mod.Settings) -> Any:
    k = s.kafka
    if k.security_protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        import ssl

        ctx = ssl.create_default_context(cafile=k.ssl_ca_location or None) if k.security_protocol == "SASL_SSL" else None
        return faust.SASLCredentials(username=k.sasl_username, password=k.sasl_password.reveal(),
                                     mechanism=k.sasl_mechanism or "PLAIN", ssl_context=ctx)
    if k.security_protocol == "SSL":
        import ssl

        ctx = ssl.create_default_context(cafile=k.ssl_ca_location or None)
        if k.ssl_certificate_location:
            ctx.load_cert_chain(k.ssl_certificate_location, k.ssl_key_location or None)
        return faust.SSLCredentials(ctx)
    return None


P = SETTINGS.processor
PROFILE = profile(P.profile)  # MARKETPIPE_PROCESSOR_PROFILE: latency | throughput
BAR_INTERVAL_MS, BAR_GRACE_MS, BAR_HORIZON_MS = P.bar_interval_ms, P.bar_grace_ms, P.bar_horizon_ms
FUTURE_LIMIT_MS = 30 * 60 * 1000

(SETTINGS.home / "faust").mkdir(parents=True, exist_ok=True)

class App(faust.App):
    def on_init_dependencies(self) -> Any:
        # Faust's Monitor sensor runs on every event (timestamps, counters, deques) for its web
        # views; marketpipe counts per batch in Prometheus instead, and the per-event work is a
        # measurable share of the worker's CPU (bench/bench_processors.py).
        deps = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return deps

    def _new_transport(self) -> Any:
        # no tasks and asyncio.wait per Kafka message (processors/fastpath.py)
        transport = super()._new_transport()
        transport.Consumer = fast_flow(transport.Consumer)
        return transport


app = App(
    group_id(SETTINGS),
    broker=_broker_url(SETTINGS.kafka.bootstrap_servers),
    broker_credentials=_credentials(SETTINGS),
    datadir=str(SETTINGS.home / "faust"),
    key_serializer="raw",
    value_serializer="raw",
    topic_partitions=6,
    topic_replication_factor=P.replication_factor,
    broker_commit_interval=1.0,
    broker_commit_every=5000,
    broker_max_poll_records=PROFILE.max_poll_records,  # larger: fewer fetch hand-offs from the consumer thread
    consumer_max_fetch_size=8 * 1024 * 1024,
    broker_session_timeout=P.session_timeout_ms / 1000,
    broker_heartbeat_interval=max(0.5, P.session_timeout_ms / 1000 / 10),
    stream_buffer_maxsize=PROFILE.stream_buffer_maxsize,
    web_enabled=False,
    table_standby_replicas=0,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
)


def fail_stop(what: str) -> None:
    """Exit at once, without acknowledging anything.

    Faust acknowledges a ``take_events`` batch when the batch loop is left, even by an exception,
    and commits acknowledged offsets in the background. A batch whose records were not written
    must therefore never raise out of the loop: the process ends here instead, its offsets stay
    uncommitted, and the restarted worker (supervisor, Kubernetes, ``marketpipe demo``) reads the
    batch again. At-least-once beats a silent gap.
    """
    log.critical("%s: stopping this worker without committing; its frames will be read again on restart", what)
    logging.shutdown()
    os._exit(70)


class Output:
    """Avro encoders and the confluent-kafka producer the agents write through."""

    def __init__(self, s: settings_mod.Settings) -> None:
        from confluent_kafka import Producer

        self.settings = s
        self.codec = codec_mod.from_settings(s)
        self.encoders: dict[str, Any] = {}
        self.producer = Producer({**s.kafka.client_config(), "enable.idempotence": True, "acks": "all",
                                  "linger.ms": PROFILE.linger_ms, "compression.type": "lz4", "batch.num.messages": 10000,
                                  "queue.buffering.max.messages": 500000,
                                  # a Python callback per record costs GIL time on the hot path; only
                                  # failures need one (flush() still counts what was not written)
                                  "delivery.report.only.error": True,
                                  # set once here, not per produce() call (0.8 µs less per record)
                                  "on_delivery": self._delivered})
        self.volumes = VolumeTracker()
        self.counts: dict[str, int] = {}
        self.reported: dict[str, int] = {}
        self.failed = 0

    def report(self) -> None:
        """Advance the Prometheus counters by what was written since the last report."""
        for topic, n in self.counts.items():
            delta = n - self.reported.get(topic, 0)
            if delta:
                metrics.RECORDS.labels(topic).inc(delta)
                self.reported[topic] = n

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            log.error("record for %s key %s NOT written: %s", msg.topic(), msg.key(), err)

    def encode(self, logical_topic: str, schema: str, key: str, record: dict[str, Any],
               timestamp: int) -> tuple[str, bytes, bytes, int, str]:
        """Everything ``produce`` needs; raises if the record does not fit its schema."""
        topic = self.settings.topic(logical_topic)
        enc = self.encoders.get(topic)
        if enc is None:
            enc = self.encoders[topic] = self.codec.encoder(schema, topic)
        # The Kafka timestamp is the event time, except that brokers refuse timestamps too far in the
        # future (Kafka 4: log.message.timestamp.after.max.ms = 1 h); such a record (provider clock
        # ahead, or a time misdated by a day) keeps its exact event_time field and gets "now".
        now_ms = int(time.time() * 1000)
        if timestamp > now_ms + FUTURE_LIMIT_MS:
            timestamp = now_ms
        return topic, key.encode(), enc(record), timestamp, logical_topic

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int = 0, logical: str = "") -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, timestamp=timestamp)
                break
            except BufferError:  # local queue full: let deliveries drain, never drop
                self.producer.poll(0.05)
        if logical:
            self.counts[logical] = self.counts.get(logical, 0) + 1

    def send(self, logical_topic: str, schema: str, key: str, record: dict[str, Any], timestamp: int) -> None:
        self.produce(*self.encode(logical_topic, schema, key, record, timestamp))

    def _problem(self, remaining: int) -> str | None:
        failed, self.failed = self.failed, 0
        if remaining or failed:
            return f"{remaining} records unacknowledged and {failed} refused by Kafka"
        return None

    async def flush(self) -> str | None:
        """Wait until every record sent so far is written; a description of what was not, else None."""
        loop = asyncio.get_running_loop()
        return self._problem(await loop.run_in_executor(None, self.producer.flush, 60))

    def flush_now(self) -> str | None:
        return self._problem(self.producer.flush(60))


async def durable(out: Output) -> None:
    """Return once every record of the batch is written; a batch that cannot be made durable ends
    the worker (see :func:`fail_stop`) instead of being acknowledged."""
    try:
        problem = await out.flush()
    except asyncio.CancelledError:
        # The worker is stopping and Faust acknowledges this batch as the loop unwinds: its records
        # must be written before that, so finish the flush here, synchronously.
        problem = out.flush_now()
        if problem:
            fail_stop(problem)
        raise
    if problem:
        fail_stop(problem)


OUT: Output | None = None


def output() -> Output:
    global OUT
    if OUT is None:
        OUT = Output(SETTINGS)
    return OUT


def _headers(message: Any) -> list[tuple[str, bytes]]:
    return list(message.headers.items()) if isinstance(message.headers, dict) else list(message.headers or [])


def process_frame(out: Output, provider: str, message: Any) -> None:
    """Decode one raw frame and produce its records, or its dead letter; never raises on bad input."""
    headers = _headers(message)
    frame = RawFrame(provider, bytes(message.value or b""), parse_meta(headers), message.topic, message.partition,
                     message.offset)
    error: BaseException | None = None
    try:
        records = decode(frame)
    except ParseError as exc:
        records, error = exc.partial, exc
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the stream: dead-letter it
        log.exception("decoder crashed on %s[%d]@%d", message.topic, message.partition, message.offset)
        records, error = [], exc
    try:
        # encode the whole frame first, so a record that does not fit its schema dead-letters the
        # frame instead of leaving half of it published
        ready = []
        for rec in records:
            if rec.schema == "Quote":
                rec.record["interval_volume"] = out.volumes.update(rec.key, rec.record.get("cum_volume"),
                                                                   rec.record["event_time"])
            ready.append(out.encode(rec.topic, rec.schema, rec.key, rec.record, rec.event_time))
    except Exception as exc:  # noqa: BLE001
        log.exception("records of %s[%d]@%d do not fit their schema", message.topic, message.partition,
                      message.offset)
        ready, error = [], exc
    for item in ready:
        out.produce(*item)
    if error is not None:
        dl = dead_letter(frame, error, int(time.time() * 1000), header_dict(headers))
        out.send(topics.MD_DLQ, "DeadLetter", provider, dl, dl["event_time"])


def _raw_agent(provider: str) -> None:
    topic = app.topic(SETTINGS.topic(topics.RAW_TOPICS[provider]), key_type=bytes, value_type=bytes)

    async def normalize(stream: Any) -> None:
        out = output()
        frames = metrics.FRAMES.labels(provider)
        batch_seconds = metrics.BATCH.labels(f"normalize_{provider}")
        async for events in stream.take_events(P.batch, within=PROFILE.batch_within):
            started = time.perf_counter()
            try:
                for event in events:
                    process_frame(out, provider, event.message)
            except Exception:  # noqa: BLE001 - not even the dead letter could be written
                log.exception("batch of %s could not be processed", provider)
                fail_stop(f"normalize_{provider}")
            await durable(out)  # outputs written before Faust acknowledges these offsets
            batch_seconds.observe(time.perf_counter() - started)
            frames.inc(len(events))
            newest = parse_meta(_headers(events[-1].message)).recv_ns
            if newest:
                metrics.LAG.observe(max(0.0, time.time() - newest / 1e9))
            out.report()

    normalize.__name__ = normalize.__qualname__ = f"normalize_{provider}"
    app.agent(topic, name=f"normalize_{provider}")(normalize)


if P.agents in ("all", "normalize"):
    for _provider in topics.RAW_TOPICS:
        _raw_agent(_provider)


# ---- bars --------------------------------------------------------------------------------------
# Bar windows live in memory, one BarBook per (provider, symbol), and each touched book is
# snapshotted to the compacted md.bar.state topic in the same flush as the bars of its batch. When
# this worker is given md.tick partitions (start, restart, rebalance) it loads the latest snapshots
# of the books on them before it bins a tick, so windows open at a crash still close; when it loses
# partitions it forgets their books (their new owner loads them). Each book remembers the raw
# source position it has applied, so ticks replayed after a crash (here or upstream) count once.
tick_topic = app.topic(SETTINGS.topic(topics.MD_TICK), key_type=bytes, value_type=bytes)
BOOKS: dict[str, barlib.BarBook] = {}
OWNED: set[int] = set()  # md.tick partitions whose books are loaded here
WATERMARKS: dict[int, list[float]] = {}  # md.tick partition -> [max event time, monotonic time seen]
LAST_SEEN: dict[str, float] = {}  # key -> monotonic time of its latest tick (idle windows close by wall time)
LATE_DROPPED = {"count": 0}
WATERMARK_FUTURE_MS = 60_000  # a tick dated further ahead of the wall clock is binned but moves no clock
BOOKS_LOCK = asyncio.Lock()  # the agent and the idle timer both load and change books


def load_books(s: settings_mod.Settings, partitions: set[int]) -> dict[str, barlib.BarBook]:
    """The latest snapshot of every book on the given md.tick partitions, from md.bar.state."""
    import orjson
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = s.topic(topics.MD_BAR_STATE)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"{app.conf.id}-bar-restore",
                         "enable.auto.commit": False})
    books: dict[str, barlib.BarBook] = {}
    try:
        md = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if md is None or md.error is not None:
            raise RuntimeError(f"{topic} is missing (marketpipe topics create)")
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in md.partitions}
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                if msg.value():
                    key = msg.key().decode()
                    try:
                        book = barlib.BarBook.from_json(orjson.loads(msg.value()))
                    except (ValueError, KeyError, TypeError, IndexError) as exc:
                        # one unreadable snapshot must not crash-loop the worker: that book starts
                        # afresh (its open windows are lost, loudly) and the others load
                        log.error("bar state for %s at %s[%d]@%d unreadable, starting it afresh: %s",
                                  key, topic, msg.partition(), msg.offset(), exc)
                        books.pop(key, None)
                        continue
                    if book.partition in partitions:
                        books[key] = book
                    else:
                        books.pop(key, None)  # the symbol moved (partition count changed)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
        if pending:
            raise RuntimeError(f"bar state not fully read in 120 s (partitions {sorted(pending)})")
    finally:
        consumer.close()
    return books


def assigned_tick_partitions() -> set[int]:
    name = tick_topic.get_topic_name()
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == name}


async def own(partitions: set[int]) -> None:
    """Load the books of md.tick partitions this worker was just given."""
    new = partitions - OWNED
    if not new:
        return
    loop = asyncio.get_running_loop()
    books = await loop.run_in_executor(None, load_books, SETTINGS, new)
    now = time.monotonic()
    for key, book in books.items():
        BOOKS[key] = book
        LAST_SEEN[key] = now  # idle clocks restart now: open windows close ``grace`` after we are back
        wm = WATERMARKS.setdefault(book.partition, [0, now])
        wm[0] = max(wm[0], book.max_event_time)
    OWNED.update(new)
    log.info("md.tick partitions %s: %d bar books loaded from %s", sorted(new), len(books),
             SETTINGS.topic(topics.MD_BAR_STATE))


async def disown(sender: Any, revoked: set[Any], **_: Any) -> None:
    name = tick_topic.get_topic_name()
    lost = {tp.partition for tp in revoked if tp.topic == name} & OWNED
    for key in [k for k, b in BOOKS.items() if b.partition in lost]:
        del BOOKS[key]
        LAST_SEEN.pop(key, None)
    for p in lost:
        WATERMARKS.pop(p, None)
    OWNED.difference_update(lost)


def watermark(partition: int) -> int:
    """Largest event time seen on the partition, advanced by wall time while the partition is idle."""
    seen = WATERMARKS.get(partition)
    if seen is None:
        return 0
    return int(seen[0] + max(0.0, time.monotonic() - seen[1]) * 1000)


def save(out: Output, key: str, book: barlib.BarBook, bars: list[dict[str, Any]]) -> None:
    import orjson

    for bar in bars:
        out.send(topics.MD_BAR, "Bar", bar["symbol"], bar, bar["event_time"])
    out.produce(SETTINGS.topic(topics.MD_BAR_STATE), key.encode(), orjson.dumps(book.to_json()))


def bin_ticks(out: Output, events: list[Any]) -> None:
    touched: set[str] = set()
    wall_ms = time.time() * 1000
    for event in events:
        msg = event.message
        try:
            tick = out.codec.decode(bytes(msg.value), expect="Tick").record
        except codec_mod.CodecError as exc:
            log.error("md.tick record %d@%d unreadable, not binned: %s", msg.partition, msg.offset, exc)
            continue
        now = time.monotonic()
        wm = WATERMARKS.setdefault(msg.partition, [0, now])
        if wm[0] < tick["event_time"] <= wall_ms + WATERMARK_FUTURE_MS:
            wm[0], wm[1] = tick["event_time"], now
        key = f"{tick['provider']}|{tick['symbol']}"
        book = BOOKS.get(key)
        if book is None:
            book = BOOKS[key] = barlib.BarBook(tick["provider"], tick["symbol"], partition=msg.partition)
        LAST_SEEN[key] = now
        if book.seen_before(tick):
            continue  # a replay: already counted (and in the snapshot)
        book.partition = msg.partition
        touched.add(key)
        if not book.add(tick, BAR_INTERVAL_MS, BAR_HORIZON_MS, watermark(msg.partition) - BAR_GRACE_MS):
            LATE_DROPPED["count"] += 1
            metrics.LATE.inc()
            log.warning("tick for %s at %d is later than the %d ms correction horizon: counted, not binned "
                        "(late total %d)", key, tick["event_time"], BAR_HORIZON_MS, LATE_DROPPED["count"])
    for key in touched:
        book = BOOKS[key]
        save(out, key, book, book.close(watermark(book.partition), BAR_INTERVAL_MS, BAR_GRACE_MS, BAR_HORIZON_MS))


async def bar_agent(stream: Any) -> None:
    out = output()
    async for events in stream.take_events(P.batch, within=0.1):
        try:
            async with BOOKS_LOCK:
                await own({e.message.partition for e in events} | assigned_tick_partitions())
                bin_ticks(out, events)
        except Exception:  # noqa: BLE001 - state could not be loaded or written: do not acknowledge
            log.exception("bar batch failed")
            fail_stop("bars")
        await durable(out)
        metrics.BOOKS.set(len(BOOKS))
        out.report()


async def close_idle_windows() -> None:
    """Close windows of symbols that went quiet: their clock advances with wall time while idle.

    Only books of md.tick partitions this worker owns are closed here (another worker owns the
    rest). After a restart a book gets the restart as its last-seen time, so its open windows close
    ``grace`` after the worker came back even if no new tick arrives.
    """
    out = output()
    emitted = 0
    try:
        async with BOOKS_LOCK:
            await own(assigned_tick_partitions())  # a quiet partition still gets its books back
            now = time.monotonic()
            for key, book in list(BOOKS.items()):
                if book.partition not in OWNED or (not book.open and not any(e[2] for e in book.emitted.values())):
                    continue
                clock = book.max_event_time + int((now - LAST_SEEN.setdefault(key, now)) * 1000)
                bars = book.close(clock, BAR_INTERVAL_MS, BAR_GRACE_MS, BAR_HORIZON_MS)
                if bars:
                    save(out, key, book, bars)
                    emitted += len(bars)
    except Exception:  # noqa: BLE001
        log.exception("closing idle windows failed")
        fail_stop("bars timer")
    if emitted:
        await durable(out)
        out.report()


if P.agents in ("all", "bars"):
    app.on_partitions_revoked.connect(disown)
    app.agent(tick_topic, name="bars")(bar_agent)
    app.timer(interval=1.0)(close_idle_windows)
