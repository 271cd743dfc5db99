"""BarState.bin_yielding: a big md.tick batch binned in chunks with the event loop free between them,
with the same bars and snapshots as one ``bin`` of the whole batch (marketpipe/processors/bars/state.py)."""

from __future__ import annotations

import asyncio

from marketpipe.kafka import topics
from marketpipe.processors.bars.state import BarState
from marketpipe.processors.normalize import RawRecord
from marketpipe.processors.output import Output
from marketpipe.schemas.codec import Codec
from marketpipe.settings import load
from tests.processors.test_inprocess import Collect

MIN = 60_000
BASE = 1_790_000_000_000 // MIN * MIN


def state(sink: Collect) -> BarState:
    s = load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_TOPIC_PREFIX": "p.",
              "MARKETPIPE_BAR_INTERVAL": "1m", "MARKETPIPE_BAR_GRACE": "2s"})
    return BarState(s.processor, Output(s, producer=sink), s.topic(topics.MD_BAR_STATE), lambda partitions: {},
                    monotonic=lambda: 1000.0, wall_ms=lambda: BASE + 5 * MIN)


def batch() -> list[RawRecord]:
    """Ticks of 7 symbols (even ones on partition 0, odd on 1) over three minutes: closed bars and open
    windows."""
    codec, out = Codec(), []
    for i in range(300):
        symbol, t = f"60{i % 7:04d}.SH", BASE + i * 600
        tick = {"provider": "jvquant", "symbol": symbol, "venue_symbol": symbol[:6], "event_time": t,
                "receive_time_ns": t * 10**6, "price": 10.0 + i % 13, "size": 100.0, "amount": 1000.0,
                "side": "UNKNOWN", "trade_id": str(i), "parser_version": "t",
                "source": {"topic": "raw.jvquant", "partition": i % 7 % 2, "offset": i, "index": 0}}
        out.append(RawRecord("p.md.tick", i % 7 % 2, i, codec.encode("Tick", tick)))
    return out


def test_chunked_binning_writes_what_one_bin_of_the_batch_writes() -> None:
    whole, chunked = Collect(), Collect()
    state(whole).bin(batch())
    asyncio.run(state(chunked).bin_yielding(batch(), chunk=32))
    assert any(t == "p.md.bar" for t, _, _ in whole.sent)  # bars closed, not only snapshots
    assert sorted(whole.sent) == sorted(chunked.sent)
    assert len([1 for t, _, _ in chunked.sent if t == "p.md.bar.state"]) == 7  # one snapshot per touched book


def test_the_loop_runs_other_work_between_chunks() -> None:
    async def main() -> int:
        s, turns = state(Collect()), 0

        async def other() -> None:  # stands in for the normalize path waiting on the loop
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        before = turns
        await s.bin_yielding(batch(), chunk=50)
        task.cancel()
        return turns - before

    # 300 ticks in chunks of 50 = 5 pauses, 7 books in chunks of 50 = 1 more
    assert asyncio.run(main()) >= 6


def test_a_book_disowned_during_a_pause_is_not_snapshotted() -> None:
    async def main() -> Collect:
        sink = Collect()
        s = state(sink)
        s.owned = {0, 1}

        async def rebalance() -> None:  # runs at the first pause, after the ticks, before the snapshots
            s.disown([1])

        await asyncio.gather(s.bin_yielding(batch(), chunk=300), rebalance())
        return sink

    keys = {k.decode() for t, k, _ in asyncio.run(main()).sent if t == "p.md.bar.state"}
    assert keys and all(int(k.split("|")[1][2:6]) % 2 == 0 for k in keys)  # partition 0's symbols only


def test_late_ticks_are_counted_each_and_logged_once_per_batch(caplog) -> None:
    # a backlog of late ticks used to build one warning record per tick: in a latency benchmark
    # with old trades that was 5% of the worker's samples, on the loop the normalize path needs
    s = state(Collect())
    s.bin(batch())  # the books' clocks reach BASE + 3 min
    horizon = s.config.bar_horizon_ms
    codec, late = Codec(), []
    for i in range(50):
        t = BASE - horizon - MIN + i
        tick = {"provider": "jvquant", "symbol": "600000.SH", "venue_symbol": "600000", "event_time": t,
                "receive_time_ns": t * 10**6, "price": 10.0, "size": 100.0, "amount": 1000.0,
                "side": "UNKNOWN", "trade_id": f"late{i}", "parser_version": "t",
                "source": {"topic": "raw.jvquant", "partition": 0, "offset": 1000 + i, "index": 0}}
        late.append(RawRecord("p.md.tick", 0, 1000 + i, codec.encode("Tick", tick)))
    with caplog.at_level("WARNING", logger="processors"):
        s.bin(late)
    assert s.late_dropped == 50
    warnings = [r for r in caplog.records if "correction horizon" in r.getMessage()]
    assert len(warnings) == 1 and "50 in this batch" in warnings[0].getMessage(), [r.getMessage() for r in warnings]
