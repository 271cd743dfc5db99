"""marketpipe/processors/faust_consumer.py, ``batch_routed``: the raw topics' records handed to the normalizer
per fetch, acknowledged by offset only once the handler (which flushes) has returned.

The consumer under test is Faust's own aiokafka consumer class with the routing subclass on top;
only its fetch from the broker (``_getmany``) and Faust's ``wait_empty`` commit are stood in for, so
the offsets bookkeeping is Faust's (``_acked``, ``_new_offset``, ``_read_offset``). The worker
against a real broker (rebalances, kill -9 replay) is tests/integration/test_processor_app.py.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import namedtuple
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from marketpipe.processors.app import build_app
from marketpipe.processors.faust_consumer import BatchRoute, batch_routed
from marketpipe.processors.output import Output
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec
from marketpipe.settings import load

Record = namedtuple("Record", "topic partition offset value headers")
RAW, OTHER = TP("p.raw.infoway", 0), TP("p.md.tick", 1)


class Fetched(AIOKafkaConsumer):
    """Faust's consumer whose fetch returns what the test queued."""

    fetches: list[dict[TP, list[Any]]]
    steps: list[str]
    during_fetch: Any = None  # what happens while the fetch waits on the broker

    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        if self.during_fetch is not None:
            self.during_fetch()
        return self.fetches.pop(0)

    async def wait_empty(self) -> None:  # Faust's: commit what is acknowledged
        self.steps.append("faust wait_empty")

    async def seek_to_committed(self) -> Any:  # what perform_seek asks the broker for
        self.steps.append("seek to committed")
        return {}


def records(tp: TP, *offsets: int) -> list[Record]:
    return [Record(tp.topic, tp.partition, o, b"v", []) for o in offsets]


def consumer(tmp_path: Any, handle: Any) -> Any:
    app = build_app(load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_HOME": str(tmp_path),
                          "MARKETPIPE_PROCESSOR_PROFILE": "throughput", "MARKETPIPE_PROCESSOR_AGENTS": "all"}))
    app.batch_route = BatchRoute(frozenset({RAW.topic}), handle)

    async def callback(message: Any) -> None: ...

    async def assigned(tps: Any) -> None: ...

    c = batch_routed(Fetched)(app.transport, callback=callback, on_partitions_revoked=assigned,
                              on_partitions_assigned=assigned)
    c.fetches, c.steps = [], []
    return c


def test_routed_records_go_to_the_handler_and_are_acknowledged_after_it_returns(tmp_path) -> None:
    async def main() -> None:
        seen: list[tuple[str, list[int]]] = []

        async def handle(batch: list[tuple[str, list[Any]]]) -> None:
            assert c._new_offset(RAW) is None  # nothing acknowledged while the batch is not durable
            seen.extend((topic, [r.offset for r in recs]) for topic, recs in batch)

        c = consumer(tmp_path, handle)
        c.fetches.append({RAW: records(RAW, 0, 1, 2, 4), OTHER: records(OTHER, 7)})
        rest = await c._getmany({RAW, OTHER}, 1.0)
        assert list(rest) == [OTHER] and [r.offset for r in rest[OTHER]] == [7]  # left to Faust's streams
        assert seen == [(RAW.topic, [0, 1, 2, 4])]
        assert c._new_offset(RAW) == 5  # what the next commit writes: the offset after the batch
        assert c._read_offset[RAW] == 4

    asyncio.run(main())


def test_a_failed_batch_is_not_acknowledged(tmp_path) -> None:
    async def main() -> None:
        async def handle(batch: Any) -> None:
            raise RuntimeError("flush failed")

        c = consumer(tmp_path, handle)
        c.fetches.append({RAW: records(RAW, 0, 1)})
        with pytest.raises(RuntimeError):
            await c._getmany({RAW}, 1.0)
        assert c._new_offset(RAW) is None and not c._acked[RAW]

    asyncio.run(main())


def test_a_batch_cancelled_after_its_flush_is_acknowledged_so_the_stop_commits_it(tmp_path) -> None:
    async def main() -> None:
        async def handle(batch: Any) -> None:  # as durable() does: flush synchronously, then re-raise
            raise asyncio.CancelledError

        c = consumer(tmp_path, handle)
        c.fetches.append({RAW: records(RAW, 3, 4)})
        with pytest.raises(asyncio.CancelledError):
            await c._getmany({RAW}, 1.0)
        assert sorted(c._acked[RAW]) == [3, 4]

    asyncio.run(main())


@pytest.mark.parametrize("why", ["flow stopped", "new generation"])
def test_records_fetched_during_a_rebalance_are_dropped_unacknowledged(tmp_path, why: str) -> None:
    async def main() -> None:
        called: list[Any] = []

        async def handle(batch: Any) -> None:
            called.append(batch)

        c = consumer(tmp_path, handle)
        c.fetches.append({RAW: records(RAW, 0, 1), OTHER: records(OTHER, 5)})

        def rebalance() -> None:
            if why == "flow stopped":
                c.stop_flow()
            else:
                c.app.consumer_generation_id += 1

        c.during_fetch = rebalance
        rest = await c._getmany({RAW, OTHER}, 1.0)
        assert called == [] and not c._acked[RAW]
        if why == "flow stopped":  # Faust's getmany seeks back and drops the rest itself
            assert list(rest) == [OTHER] and c.steps == []
        else:  # the rebalance is over, Faust would deliver on: this consumer seeks back, for all
            assert rest == {} and c.steps == ["seek to committed"]

    asyncio.run(main())


def test_records_of_a_fetch_that_spanned_a_rebalance_are_read_again_not_skipped(tmp_path) -> None:
    """The fetch returned the first records after the rebalance's seek (aiokafka's position is past
    them) but was started in the older generation, so they are dropped: unless the consumer seeks
    back, the next fetch starts after them and its jump is acknowledged as a gap. Fault f of the
    fault suite lost trades so."""
    async def main() -> None:
        seen: list[int] = []

        async def handle(batch: list[tuple[str, list[Any]]]) -> None:
            seen.extend(r.offset for _, recs in batch for r in recs)

        c = consumer(tmp_path, handle)
        c._read_offset[RAW] = c._committed_offset[RAW] = 10  # after the rebalance's seek to a committed 10
        c.fetches.append({RAW: records(RAW, 10, 11)})

        def rebalance_ends() -> None:
            c.app.consumer_generation_id += 1
            c.during_fetch = None

        c.during_fetch = rebalance_ends
        await c._getmany({RAW}, 1.0)
        # the broker's next answer: from 10 again after a seek to the committed offsets, else from 12
        c.fetches.append({RAW: records(RAW, *(range(10, 14) if "seek to committed" in c.steps else range(12, 14)))})
        await c._getmany({RAW}, 1.0)
        assert seen == [10, 11, 12, 13] and c._new_offset(RAW) == 14

    asyncio.run(main())


def test_records_before_the_read_offset_are_skipped_and_a_jump_is_a_gap(tmp_path) -> None:
    async def main() -> None:
        seen: list[int] = []

        async def handle(batch: list[tuple[str, list[Any]]]) -> None:
            seen.extend(r.offset for _, recs in batch for r in recs)

        c = consumer(tmp_path, handle)
        c._read_offset[RAW] = 10  # e.g. after Faust's seek to a committed 10
        c._committed_offset[RAW] = 10
        c.fetches.append({RAW: records(RAW, 8, 9, 10, 11)})
        await c._getmany({RAW}, 1.0)
        assert seen == [10, 11] and c._new_offset(RAW) == 12
        c._committed_offset[RAW] = 12  # what Faust's commit records
        c.fetches.append({RAW: records(RAW, 15, 16)})  # 12-14 gone (compacted, control records)
        await c._getmany({RAW}, 1.0)
        assert seen == [10, 11, 15, 16] and c._new_offset(RAW) == 17

    asyncio.run(main())


def test_revocation_waits_for_the_batch_in_flight_before_faust_commits(tmp_path) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def handle(batch: Any) -> None:
            c.steps.append("batch started")
            await release.wait()
            c.steps.append("batch durable")

        c = consumer(tmp_path, handle)
        c.fetches.append({RAW: records(RAW, 0)})
        fetch = asyncio.ensure_future(c._getmany({RAW}, 1.0))
        while not c.steps:
            await asyncio.sleep(0)
        revoke = asyncio.ensure_future(c.wait_empty())
        for _ in range(20):
            await asyncio.sleep(0)
        assert c.steps == ["batch started"]  # Faust's commit has not run yet
        release.set()
        await asyncio.gather(fetch, revoke)
        assert c.steps == ["batch started", "batch durable", "faust wait_empty"]
        assert c._new_offset(RAW) == 1

    asyncio.run(main())


class Collect:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int = 0, on_delivery: Any = None) -> None:
        self.sent.append((topic, value))

    def flush(self, timeout: float = 0) -> int:
        self.sent.append(("flush", b""))
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0


@pytest.mark.parametrize("profile", ["latency", "throughput"])
def test_every_profile_routes_every_raw_topic_to_one_normalizer_that_flushes_once_per_fetch(
        tmp_path, profile: str) -> None:
    s = load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_TOPIC_PREFIX": "p.",
              "MARKETPIPE_HOME": str(tmp_path), "MARKETPIPE_PROCESSOR_PROFILE": profile,
              "MARKETPIPE_PROCESSOR_AGENTS": "all"})
    sink = Collect()
    app = build_app(s, out=Output(s, producer=sink))
    route = app.batch_route
    assert route is not None and route.topics == {"p.raw.jvquant", "p.raw.infoway", "p.raw.jin10"}
    recv = 1_700_000_000_000_000_000
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    lv2 = c.compress(b"lv2_600519=10:00:00.120,77001,1572.12,100|77002,10:00:00.350,1572.10,200") + c.flush()
    jv = Record("p.raw.jvquant", 2, 5, lv2, RawMeta("jvquant", "jv-1", 6, 1, recv, "binary", "data").headers())
    asyncio.run(route.handle([("p.raw.jvquant", [jv])]))
    ticks = [Codec().decode(v).record for t, v in sink.sent if t == "p.md.tick"]
    assert [(t["trade_id"], t["source"]["offset"]) for t in ticks] == [("77001", 5), ("77002", 5)]
    assert sink.sent[-1] == ("flush", b"")  # durable before the consumer acknowledges


@pytest.mark.parametrize("profile", ["latency", "throughput"])
def test_a_bars_only_worker_routes_md_tick_to_its_bar_state_and_flushes_before_the_ack(
        tmp_path, monkeypatch, profile: str) -> None:
    from marketpipe.processors import app as app_mod
    from tests.processors.bars.test_state_chunks import batch

    monkeypatch.setattr(app_mod, "load_books", lambda *args: {})  # nothing saved before: no broker to ask
    monkeypatch.setattr(app_mod, "GapFeed", lambda *args: None)  # no md.status to read
    s = load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_TOPIC_PREFIX": "p.",
              "MARKETPIPE_HOME": str(tmp_path), "MARKETPIPE_PROCESSOR_AGENTS": "bars",
              "MARKETPIPE_PROCESSOR_PROFILE": profile, "MARKETPIPE_BAR_INTERVAL": "1m"})
    sink = Collect()
    app = build_app(s, out=Output(s, producer=sink))
    monkeypatch.setattr(app.consumer, "assignment", lambda: set())  # the consumer thread is not started
    route = app.batch_route
    assert route is not None and route.topics == {"p.md.tick"}
    ticks = batch()  # 7 symbols over three minutes, on partitions 0 and 1
    asyncio.run(route.handle([("p.md.tick", [t for t in ticks if t.partition == p]) for p in (0, 1)]))
    written = [t for t, _ in sink.sent]
    assert "p.md.bar" in written and written.count("p.md.bar.state") == 7  # bars closed, one snapshot per book
    assert sink.sent[-1] == ("flush", b"")  # durable before the consumer acknowledges


def test_a_worker_that_also_normalizes_leaves_md_tick_to_the_bar_agent(tmp_path) -> None:
    s = load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_TOPIC_PREFIX": "p.",
              "MARKETPIPE_HOME": str(tmp_path), "MARKETPIPE_PROCESSOR_AGENTS": "all"})
    route = build_app(s).batch_route
    assert route is not None and "p.md.tick" not in route.topics


def test_the_seek_back_after_a_rebalance_is_retried_until_it_succeeds(tmp_path) -> None:
    async def main() -> None:
        async def handle(batch: Any) -> None: ...

        c = consumer(tmp_path, handle)
        answers: list[Any] = [RuntimeError("coordinator not available"), {}]

        async def seek_to_committed() -> Any:
            c.steps.append("seek to committed")
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        c.seek_to_committed = seek_to_committed
        c.fetches.append({RAW: records(RAW, 0, 1)})

        def rebalance() -> None:
            c.app.consumer_generation_id += 1

        c.during_fetch = rebalance
        assert await c._getmany({RAW}, 1.0) == {}
        assert c.steps == ["seek to committed"] * 2 and not c._acked[RAW]

    asyncio.run(main())
