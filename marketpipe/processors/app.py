"""The stream-processing app (faust-streaming), built from settings: raw frames → Avro ``md.*``
records, and bars.

``build_app(settings)`` returns a Faust app with no side effect at import. ``marketpipe process``
builds and runs one worker; ``faust -A marketpipe.processors.worker worker`` does the same from the
environment. Scale out with more workers (up to the raw topics' partition count).

* **normalize**: the raw topics' records of each fetch go straight from Faust's consumer to one
  :class:`~marketpipe.processors.normalize.Normalizer` (:func:`_raw_batches`); the fetch's records are
  made durable before its offsets are acknowledged (:func:`~marketpipe.processors.output.durable`), so
  delivery is at-least-once and a replay after ``kill -9`` writes byte-identical records with the same
  ``source``. One agent per raw topic keeps Faust subscribed to it, and takes whatever would reach
  it as events the same way.
* **the bar agent** reads ``md.tick`` into a :class:`~marketpipe.processors.bars.state.BarState` whose books are
  snapshotted to ``md.bar.state`` and reloaded on every partition assignment; a timer closes the
  windows of idle symbols. ``settings.processor.agents`` picks either set, or both; ``split`` (the
  default) is both in two processes, started by :mod:`marketpipe.processors.split`.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

import faust

from marketpipe import providers
from marketpipe.kafka import topics
from marketpipe.kafka.quietlog import quiet_repeats
from marketpipe.processors import metrics
from marketpipe.processors.arbitrate import Arbiter
from marketpipe.processors.bars.gaps import GapFeed
from marketpipe.processors.bars.state import BarState, load_books
from marketpipe.processors.completeness import CompletenessBook, CompletenessFeed
from marketpipe.processors.faust_consumer import BatchRoute, batch_routed, check_reliances, fast_flow, fetch_wait
from marketpipe.processors.normalize import Normalizer, decoder_state, headers_of
from marketpipe.processors.output import Output, durable, fail_stop
from marketpipe.processors.profile import bars_only, profile
from marketpipe.processors.status import StatusHook
from marketpipe.rawframe import parse_meta
from marketpipe.settings import Settings

log = logging.getLogger("processors")

APP_ID = "marketpipe-processors"

#: take_events window of the normalize agents (seconds). The raw topics are read per fetch, so no
#: frame reaches their streams: a short window would only wake the loop for nothing.
IDLE_AGENT_WINDOW = 1.0


def group_id(settings: Settings) -> str:
    """The processor app's id, which is its Kafka consumer group: one per topic prefix, so pipelines
    sharing a cluster do not share offsets, and one per agent set, so split deployments (normalize /
    bars) do not steal each other's topics."""
    agents = settings.processor.agents
    if agents == "split":
        raise ValueError("MARKETPIPE_PROCESSOR_AGENTS=split is two workers (normalize and bars), each with its own "
                         "group: see worker_groups")
    return settings.group_id(APP_ID + ("" if agents == "all" else f"-{agents}"))


def worker_groups(settings: Settings) -> list[str]:
    """The consumer groups of the workers these settings start: two for ``split``, else one."""
    from marketpipe.processors.split import SETS

    sets = SETS if settings.processor.agents == "split" else (settings.processor.agents,)
    return [group_id(settings.with_env(MARKETPIPE_PROCESSOR_AGENTS=agents)) for agents in sets]


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


def _credentials(s: Settings) -> Any:
    k = s.kafka
    if k.security_protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        import ssl

        ctx = ssl.create_default_context(cafile=k.ssl_ca_location or None) if k.security_protocol == "SASL_SSL" else None
        return faust.SASLCredentials(username=k.sasl_username, password=k.password().reveal(),
                                     mechanism=k.sasl_mechanism or "PLAIN", ssl_context=ctx)
    if k.security_protocol == "SSL":
        import ssl

        ctx = ssl.create_default_context(cafile=k.ssl_ca_location or None)
        if k.ssl_certificate_location:
            ctx.load_cert_chain(k.ssl_certificate_location, k.ssl_key_location or None)
        return faust.SSLCredentials(ctx)
    return None


#: the worker's Kafka request timeout unless the session timeout is longer (see build_app)
REQUEST_TIMEOUT_S = 10.0
#: how old the worker's cluster metadata may get (see build_app)
METADATA_MAX_AGE_MS = 5_000


class App(faust.App):
    #: topics read per fetch instead of per message (marketpipe/processors/faust_consumer.py): the raw
    #: topics in a worker that normalizes, md.tick in a worker that only makes bars
    batch_route: BatchRoute | None = None
    #: longest a fetch request waits at the broker (the profile's; Faust's own is 1,500 ms)
    fetch_max_wait_ms: int = 1500
    #: bytes a fetch request waits for at the broker, up to ``fetch_max_wait_ms`` (the profile's)
    fetch_min_bytes: int = 1

    def on_init_dependencies(self) -> Any:
        # Faust's Monitor sensor runs on every event (timestamps, counters, deques) for its web
        # views; marketpipe counts per batch in Prometheus instead, and the per-event work is a
        # measurable share of the worker's CPU (bench/bench_processors.py).
        deps = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return deps

    def _new_transport(self) -> Any:
        # no tasks and asyncio.wait per Kafka message, and the raw topics' records handed over per
        # fetch, and a bounded wait per fetch (marketpipe/processors/faust_consumer.py)
        transport = super()._new_transport()
        transport.Consumer = batch_routed(fast_flow(fetch_wait(transport.Consumer)))  # type: ignore[misc]
        return transport

    async def on_start(self) -> None:
        # the worker has set up its log handlers by now: a broker outage must not flood them, and
        # Faust's and aiokafka's own INFO chatter is only wanted at DEBUG
        quiet_repeats()
        if logging.getLogger().level > logging.DEBUG:
            for name in ("faust", "mode", "aiokafka"):
                logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
        await super().on_start()


def build_app(settings: Settings, out: Output | None = None) -> App:
    """A Faust app running the agents ``settings.processor.agents`` names, writing through ``out``
    (made on first use when not given: the producer must not be created before the worker forks)."""
    missing = check_reliances()
    if missing:  # the consumer subclasses would misbehave quietly: refuse to start instead
        raise RuntimeError(f"this faust-streaming/aiokafka lacks what marketpipe's processor relies on "
                           f"({', '.join(missing)}); install the versions pyproject.toml pins")
    p = settings.processor
    if p.agents == "split":  # one app per process: `marketpipe process` starts the two
        raise ValueError("MARKETPIPE_PROCESSOR_AGENTS=split needs `marketpipe process`, which starts a worker per "
                         "agent set; a Faust worker started otherwise runs all, normalize or bars")
    prof = profile(p.profile)  # MARKETPIPE_PROCESSOR_PROFILE: latency | throughput
    if p.agents == "bars":
        prof = bars_only(prof)
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)  # Faust's datadir (we keep no tables in it)
    app = App(
        group_id(settings),
        broker=_broker_url(settings.kafka.bootstrap_servers),
        broker_credentials=_credentials(settings),
        datadir=str(settings.home / "faust"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=6,
        topic_replication_factor=p.replication_factor,
        broker_commit_interval=1.0,
        broker_commit_every=5000,
        broker_max_poll_records=prof.max_poll_records,  # larger: fewer fetch hand-offs from the consumer thread
        consumer_max_fetch_size=8 * 1024 * 1024,
        broker_session_timeout=p.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(0.5, p.session_timeout_ms / 1000 / 10),
        # a fetch, commit or heartbeat stuck on a paused broker is abandoned after this and retried
        # where the partition / group moved (Faust's default, 90 s, outlasted a 30 s pause); Faust
        # refuses a request timeout shorter than the session timeout
        broker_request_timeout=max(REQUEST_TIMEOUT_S, p.session_timeout_ms / 1000),
        # aiokafka (0.14) asks a partition's cached leader for offsets after a rebalance and, on
        # NOT_LEADER_FOR_PARTITION, asks the same node again without refreshing metadata: after a
        # leader moved, a worker looped on it until its metadata aged out (5 min by default)
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        stream_buffer_maxsize=prof.stream_buffer_maxsize,
        web_enabled=False,
        table_standby_replicas=0,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    app.fetch_max_wait_ms, app.fetch_min_bytes = prof.fetch_max_wait_ms, prof.fetch_min_bytes

    @functools.cache
    def output() -> Output:
        return out if out is not None else Output(settings)

    @functools.cache
    def normalizer() -> Normalizer:  # one per worker: the decoders' learned state is shared by the agents
        book = CompletenessBook(frozenset(e.name for e in providers.PROVIDERS if e.fills_gaps),
                                flush_ms=p.completeness_flush_ms)
        status = StatusHook(completeness=CompletenessFeed(settings, book))
        return Normalizer(output(), decoder_state(settings), status=status, arbiter=Arbiter(p.ab_window_ms))

    if p.agents in ("all", "normalize"):
        for provider in topics.RAW_TOPICS:
            _normalize_agent(app, settings, provider, normalizer)
        app.batch_route = _raw_batches(settings, normalizer)
    if p.agents in ("all", "bars"):
        bar_route = _bar_agents(app, settings, output, prof.bar_chunk)
        if p.agents == "bars":
            # Only where nothing else runs: in a worker that also normalizes, binning a fetch of ticks
            # in the fetch path would hold the next raw fetch behind it, where the agent lets the
            # normalize path run between its chunks.
            app.batch_route = bar_route
    return app


def _normalize(n: Normalizer, batches: list[tuple[str, list[Any]]]) -> None:
    """Decode one batch of raw frames, ``(provider, messages)`` pairs, into ``n.out``."""
    try:
        for provider, messages in batches:
            for message in messages:
                n.process(provider, message)
        if n.status is not None:
            n.status.batch(n.out)  # stale symbols, finished minutes
    except Exception:  # not even the dead letter could be written
        log.exception("batch of %s could not be processed", "/".join(p for p, _ in batches))
        fail_stop("normalize_" + "_".join(p for p, _ in batches))


def _normalized(n: Normalizer, batches: list[tuple[str, list[Any]]], started: float) -> None:
    """Metrics of a batch once it is durable."""
    elapsed = time.perf_counter() - started
    newest = 0
    for provider, messages in batches:
        metrics.BATCH.labels(f"normalize_{provider}").observe(elapsed)
        metrics.FRAMES.labels(provider).inc(len(messages))
        newest = max(newest, parse_meta(headers_of(messages[-1])).recv_ns or 0)
    if newest:
        metrics.LAG.observe(max(0.0, time.time() - newest / 1e9))
    n.out.report()


def _raw_batches(settings: Settings, normalizer: Callable[[], Normalizer]) -> BatchRoute:
    """The normalize job per fetch: the raw topics' records go straight from Faust's consumer to the
    normalizer, one flush per fetch, and their offsets are acknowledged after it
    (:func:`~marketpipe.processors.faust_consumer.batch_routed`). The normalize agents stay subscribed
    (they make Faust subscribe the raw topics) and handle whatever reaches them as events."""
    providers = {settings.topic(t): provider for provider, t in topics.RAW_TOPICS.items()}

    async def handle(fetched: list[tuple[str, list[Any]]]) -> None:
        started = time.perf_counter()
        n = normalizer()
        batches = [(providers[topic], records) for topic, records in fetched]
        _normalize(n, batches)
        await durable(n.out)  # outputs written before the consumer acknowledges these offsets
        _normalized(n, batches, started)

    return BatchRoute(frozenset(providers), handle)


def _normalize_agent(app: App, settings: Settings, provider: str, normalizer: Callable[[], Normalizer]) -> None:
    topic = app.topic(settings.topic(topics.RAW_TOPICS[provider]), key_type=bytes, value_type=bytes)
    batch = settings.processor.batch

    async def normalize(stream: Any) -> None:
        n: Normalizer = normalizer()
        async for events in stream.take_events(batch, within=IDLE_AGENT_WINDOW):
            started = time.perf_counter()
            batches = [(provider, [event.message for event in events])]
            _normalize(n, batches)
            await durable(n.out)  # outputs written before Faust acknowledges these offsets
            _normalized(n, batches, started)

    normalize.__name__ = normalize.__qualname__ = f"normalize_{provider}"
    app.agent(topic, name=f"normalize_{provider}")(normalize)


def _bar_agents(app: App, settings: Settings, output: Callable[[], Output], chunk: int) -> BatchRoute:
    """The bar agent, and the same job per fetch (:class:`BatchRoute`, returned for ``build_app`` to
    install or not): Faust's per-message delivery (a ``Message``, conductor pass, ``Event`` and
    ``ack()`` per tick) was about a quarter of a bars-only worker's CPU at 10,000 ticks/s."""
    tick_topic = app.topic(settings.topic(topics.MD_TICK), key_type=bytes, value_type=bytes)
    group = group_id(settings)

    @functools.cache
    def state() -> BarState:
        p = settings.processor
        return BarState(p, output(), settings.topic(topics.MD_BAR_STATE), functools.partial(load_books, settings, group),
                        gaps=GapFeed(settings, p.bar_horizon_ms + 10 * p.bar_interval_ms))

    def assigned() -> set[int]:
        name = tick_topic.get_topic_name()
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == name}

    async def disown(sender: Any, *args: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]  # Faust sends the revoked TopicPartitions positionally
        name = tick_topic.get_topic_name()
        state().disown(tp.partition for tp in revoked if tp.topic == name)

    async def bin_batch(messages: list[Any]) -> None:
        """Bin one batch of md.tick records; return once its bars and snapshots are durable."""
        s = state()
        try:
            async with s.lock:
                await s.own({m.partition for m in messages} | assigned())
                await s.bin_yielding(messages, chunk)  # a normalize agent in this worker runs between chunks
        except Exception:  # state could not be loaded or written: do not acknowledge
            log.exception("bar batch failed")
            fail_stop("bars")
        await durable(s.out)
        metrics.BOOKS.set(len(s.books))
        s.out.report()

    async def bars(stream: Any) -> None:
        async for events in stream.take_events(settings.processor.batch, within=0.1):
            await bin_batch([e.message for e in events])

    async def fetched(batches: list[tuple[str, list[Any]]]) -> None:
        await bin_batch([record for _, records in batches for record in records])

    async def close_idle_windows() -> None:
        s = state()
        try:
            async with s.lock:
                await s.own(assigned())  # a quiet partition still gets its books back
                emitted = s.close_idle()
        except Exception:
            log.exception("closing idle windows failed")
            fail_stop("bars timer")
        if emitted:
            await durable(s.out)
            s.out.report()

    # mode types a receiver as a union of callables that no coroutine function satisfies
    app.on_partitions_revoked.connect(disown)  # type: ignore[arg-type]
    app.agent(tick_topic, name="bars")(bars)
    app.timer(interval=1.0)(close_idle_windows)
    return BatchRoute(frozenset({settings.topic(topics.MD_TICK)}), fetched)
