"""Faust's Kafka consumer, subclassed: the processor's real data path.

The Faust agents in marketpipe/processors/app.py subscribe the raw topics, but their records do
not flow through Faust's per-message machinery. Three subclasses of Faust's aiokafka transport
consumer replace it, each for a measured cost (bench/README.md):

* :func:`batch_routed` hands the raw topics' records to the normalizer (or, in a worker that only
  makes bars, md.tick's to the bar state) once per fetch, instead of one ``Message``, conductor
  pass, ``Event``, stream slot and ``ack()`` per record;
* :func:`fast_flow` runs Faust's per-message callback in place when it does not wait, instead
  of four tasks and an ``asyncio.wait`` per message;
* :func:`fetch_wait` bounds the broker wait of a fetch (Faust hard-codes 1,500 ms).

Faust still owns group membership, fetching, offsets and commits. The subclasses read and write
members of faust-streaming, aiokafka and mode that are not public API; :func:`reliances` lists
every one, :func:`check_reliances` says which are missing, ``build_app`` refuses to start a
worker on versions that lack one, and tests/processors/test_faust_consumer.py checks them on the versions
pyproject.toml pins, so an upgrade fails loudly instead of losing records quietly.

Faust's fetcher hands every message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks, an
``asyncio.wait`` and their cancellation, per message, so that a rebalance (``suspend_flow``)
can interrupt a callback that is blocked on a full stream buffer. Almost always the callback
does not block at all (it puts the event into a stream queue that has room).
:class:`FastFlowConsumer` runs the callback in place up to its first suspension. If it
finishes there (the usual case) nothing else is created. If it must wait, the rest of it runs
as a task raced against ``suspend_flow`` exactly as Faust does. Any other ``wait_first`` call
goes to Faust unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from faust.types.tuples import ack_lock
from mode.utils.locks import Event as ModeEvent

log = logging.getLogger("processors")

_EVENT_WAIT = (ModeEvent.wait.__code__, asyncio.Event.wait.__code__)


@dataclass(frozen=True)
class Reliance:
    """One member of another library this module uses although it is not public API.

    ``set_in``: for an instance attribute, the method of ``owner`` that assigns or reads it (its
    source must mention ``self.<member>``); None for a class or module attribute."""

    owner: Any
    member: str
    set_in: str | None = None

    @property
    def name(self) -> str:
        return f"{getattr(self.owner, '__module__', '')}.{getattr(self.owner, '__qualname__', self.owner)}.{self.member}"

    def holds(self) -> bool:
        if self.set_in is None:
            return hasattr(self.owner, self.member)
        method = getattr(self.owner, self.set_in, None)
        try:
            return method is not None and f"self.{self.member}" in inspect.getsource(method)
        except (OSError, TypeError):  # no source to read (a compiled build): only the method is known
            return False


def reliances() -> tuple[Reliance, ...]:
    """Every non-public member of faust-streaming, aiokafka and mode that the subclasses below use."""
    import aiokafka
    import faust.types.app
    import faust.types.tuples
    from faust.transport.consumer import Consumer, ThreadDelegateConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    init = "__init__"
    return (
        Reliance(Consumer, "wait_first"), Reliance(Consumer, "suspend_flow", init),  # fast_flow
        Reliance(Consumer, "_getmany"), Reliance(Consumer, "flow_active"), Reliance(Consumer, "should_stop"),
        Reliance(faust.types.app.AppT, "consumer_generation_id"),
        Reliance(Consumer, "_buffered_partitions", init), Reliance(Consumer, "_read_offset", init),
        Reliance(Consumer, "_add_gap"), Reliance(Consumer, "_commit_every", init),
        Reliance(Consumer, "_n_acked"), Reliance(Consumer, "commit"),
        Reliance(Consumer, "_committed_offset", init), Reliance(Consumer, "_acked_index", init),
        Reliance(Consumer, "_acked", init), Reliance(Consumer, "wait_empty"),
        Reliance(faust.types.tuples, "ack_lock"),  # batch_routed
        Reliance(ThreadDelegateConsumer, "_new_consumer_thread"),
        Reliance(AIOKafkaConsumerThread, "_create_worker_consumer"),
        Reliance(aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms", "start"),  # fetch_wait
        Reliance(aiokafka.AIOKafkaConsumer, "_fetch_min_bytes", "start"),
    )


def check_reliances() -> list[str]:
    """The members of :func:`reliances` the installed versions lack (empty: all there)."""
    return [r.name for r in reliances() if not r.holds()]


class _Resume:
    """Awaitable that continues a coroutine from its first suspension, with ``yield from``
    semantics: what it yields goes to the driving Task untouched (a future still flagged as
    blocking), and what the Task sends or throws goes back into it, as if the Task had driven it
    from the start."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Any:
        coro, yielded = self.coro, self.first
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a Task does
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Any, first: Any) -> Any:
    return await _Resume(coro, first)


def fast_flow(consumer_cls: type) -> type:
    """A subclass of a Faust transport consumer class with the in-place fast path."""

    class FastFlowConsumer(consumer_cls):
        async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
            if (len(coros) == 2 and timeout is None and asyncio.iscoroutine(coros[0])
                    and getattr(coros[1], "cr_code", None) in _EVENT_WAIT and not self.suspend_flow.is_set()):
                callback, flow = coros
                try:
                    yielded = callback.send(None)
                except StopIteration:
                    flow.close()
                    return None  # the fetcher does not look at the result
                except BaseException:
                    flow.close()
                    raise
                return await super().wait_first(_finish(callback, yielded), flow)
            return await super().wait_first(*coros, timeout=timeout)

    return FastFlowConsumer


@dataclass(frozen=True)
class BatchRoute:
    """Topics whose fetched records skip Faust's per-message delivery.

    ``handle`` gets the records of one fetch, as ``(topic, records)`` pairs of aiokafka
    ``ConsumerRecord``s in offset order, and must return only once their outputs are durable:
    the consumer acknowledges their offsets right after it returns. It may raise
    ``CancelledError`` (the worker is stopping) only once the outputs are durable, as
    :func:`~marketpipe.processors.output.durable` does: the offsets are then acknowledged too, so
    the commit on stop includes them."""

    topics: frozenset[str]
    handle: Callable[[list[tuple[str, list[Any]]]], Awaitable[None]]


def batch_routed(consumer_cls: type) -> type:
    """A subclass of a Faust transport consumer class that hands the records of the topics in
    ``app.batch_route`` (a :class:`BatchRoute`, or None) to its handler per fetch, instead of one
    ``Message``, conductor pass, ``Event``, stream buffer slot and ``ack()`` per record (~17 µs
    per Kafka message, bench/README.md).

    Faust still owns group membership, the fetch, offsets and commits; what the conductor and the
    stream did per message is done here per fetch, with the same guarantees:

    * at-least-once: offsets are acknowledged (``_acked``, as ``Consumer.ack`` does) only after the
      handler returned, i.e. after the batch's outputs were flushed; a handler that raises
      acknowledges nothing.
    * rebalance: records fetched while the flow is stopped or from an older generation are
      dropped unacknowledged and read again from the committed offsets (Faust's ``getmany`` seeks
      back while the flow is stopped; after a rebalance that finished during the fetch, this
      consumer seeks back itself), and ``wait_empty`` -- which Faust awaits before committing on
      revocation and on stop -- first waits for a batch in flight, so its offsets are in that commit.
    * offsets Faust already read past (``_read_offset``, reset by seeks) are skipped, and a jump
      in offsets is recorded as a gap, as ``_drain_messages`` does.
    """

    class BatchRoutedConsumer(consumer_cls):
        _batch_idle: asyncio.Event | None = None

        def _idle(self) -> asyncio.Event:
            if self._batch_idle is None:
                self._batch_idle = asyncio.Event()
                self._batch_idle.set()
            return self._batch_idle

        async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
            generation = self.app.consumer_generation_id
            records = await super()._getmany(active_partitions, timeout)
            route: BatchRoute | None = getattr(self.app, "batch_route", None)
            if not records or route is None:
                return records
            mine = [(tp, recs) for tp, recs in records.items() if tp.topic in route.topics]
            if not mine:
                return records
            rest = {tp: recs for tp, recs in records.items() if tp.topic not in route.topics}
            if not self.flow_active or self.should_stop:
                return rest  # not acknowledged: Faust's getmany seeks back to the committed offsets
            if self.app.consumer_generation_id != generation:
                # A rebalance finished while this fetch waited, and its seek to the committed offsets
                # came before these records: they may be the first ones after it, and the fetch
                # position is past them. Dropped without a seek, they were never read again and the
                # next batch's jump in offsets was acknowledged as a gap, so their commit went past
                # them (fault f of tests/integration/test_fault_suite.py lost 12 trades so).
                log.info("a fetch spanned a rebalance: its %d records dropped unacknowledged, read again from "
                         "the committed offsets", sum(len(recs) for recs in records.values()))
                await self._seek_to_committed()
                return {}  # every partition was sought back: the rest is read again too
            idle = self._idle()
            idle.clear()
            try:
                await self._deliver(route, mine, active_partitions)
            finally:
                idle.set()
            return rest

        async def _seek_to_committed(self) -> None:
            """Faust's seek of every assigned partition to its committed offset, retried until it
            succeeds: going on without it would skip the dropped records (the group coordinator
            may be the broker that just died; the client finds the new one in seconds)."""
            while True:
                try:
                    await self.perform_seek()
                    return
                except Exception as exc:  # noqa: BLE001 - retried; stopping ends it
                    if self.should_stop:
                        raise
                    log.warning("seeking back to the committed offsets failed (%s); retrying", exc)
                    await asyncio.sleep(1.0)

        async def _deliver(self, route: BatchRoute, mine: list[tuple[Any, list[Any]]], active: Any) -> None:
            batches: list[tuple[Any, list[Any]]] = []
            for tp, recs in mine:
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    continue
                read = self._read_offset[tp]
                if read is not None:
                    recs = [r for r in recs if r.offset >= read]
                if not recs:
                    continue
                first = recs[0].offset
                if read and first - read > 1:  # read+1 .. first-1 will never come (Faust's gap ends are inclusive)
                    await self._add_gap(tp, read + 1, first - 1)
                batches.append((tp, recs))
            if not batches:
                return
            try:
                await route.handle([(tp.topic, recs) for tp, recs in batches])
            except asyncio.CancelledError:
                self._ack_batches(batches)  # durable before it was raised (see BatchRoute)
                raise
            self._ack_batches(batches)
            commit_every = self._commit_every
            if commit_every is not None and self._n_acked >= commit_every:  # type: ignore[has-type]
                self._n_acked = 0
                await self.commit()

        def _ack_batches(self, batches: list[tuple[Any, list[Any]]]) -> None:
            # What Consumer.ack does per message, for each partition's [first, last]: offsets missing
            # inside the range (compacted away, control records) have nothing to wait for.
            with ack_lock:
                for tp, recs in batches:
                    first, last = recs[0].offset, recs[-1].offset
                    committed = self._committed_offset[tp]
                    start = first if committed is None else max(first, committed)
                    index, acked = self._acked_index[tp], self._acked[tp]
                    new = [o for o in range(start, last + 1) if o not in index]
                    index.update(new)
                    acked.extend(new)
                    self._n_acked += len(new)
                    self._read_offset[tp] = last

        async def wait_empty(self) -> None:
            await self._idle().wait()  # a batch in flight is acknowledged before Faust commits
            await super().wait_empty()

    return BatchRoutedConsumer


def fetch_wait(consumer_cls: type) -> type:
    """A subclass of Faust's aiokafka consumer whose fetch requests wait at most
    ``app.fetch_max_wait_ms`` at the broker (Faust hard-codes 1,500 ms), for at least
    ``app.fetch_min_bytes`` (Faust leaves aiokafka's 1 byte).

    Why it matters: aiokafka sends one fetch request per broker at a time, and leaves out every
    partition whose last fetch is not yet consumed. When a worker falls behind by more than
    aiokafka's ``prefetch_backoff`` (100 ms), it fetches the other, quiet partitions alone; the
    broker holds that request for the whole wait because nothing arrives on them, and the busy
    partition is not fetched until it returns. The next fetch then carries that much backlog,
    takes longer than 100 ms to work off, and the cycle repeats: a worker at 10,000 records/s
    settled into ~1.5 s cycles (latency p50 ~1 s, bench/README.md). The wait bounds the stall."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    class BoundedWaitThread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # read by AIOKafkaConsumer.start() when it builds its fetcher; not a constructor
            # argument Faust lets us pass
            consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]  # our App
            consumer._fetch_min_bytes = self.app.fetch_min_bytes  # type: ignore[attr-defined]
            return consumer

    class BoundedWaitConsumer(consumer_cls):
        def _new_consumer_thread(self) -> Any:
            return BoundedWaitThread(self, loop=self.loop, beacon=self.beacon)

    return BoundedWaitConsumer
