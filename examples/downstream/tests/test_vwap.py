"""A downstream service's test: a real Kafka broker, simulated jvQuant feed, producer and
processor come from the marketpipe.testing plugin; the service reads md.tick with
marketpipe.client in its own consumer group."""

import statistics

import pytest

from marketpipe.client import MarketDataConsumer, Tick


def vwap(ticks: list[Tick]) -> float:
    """The service's logic under test: volume-weighted average price."""
    return sum(t.price * t.size for t in ticks) / sum(t.size for t in ticks)


def test_vwap_of_live_moutai_trades(mp_pipeline):
    mp_pipeline.start(jvquant=["600519", "000001"])
    expected = mp_pipeline.wait_for_ticks(symbol="600519.SH", n=20, timeout=120)

    with MarketDataConsumer(["md.tick"], group_id="vwap-service", start="earliest",
                            symbols=["600519.SH"], settings=mp_pipeline.settings) as consumer:
        ticks = list(consumer.records(timeout=30, limit=20))
        consumer.commit()

    assert ticks == expected  # typed records: Tick(symbol="600519.SH", price=..., source=SourceRef(...))
    assert all(t.symbol == "600519.SH" and t.price > 0 and t.size > 0 for t in ticks)
    assert vwap(ticks) == pytest.approx(statistics.fmean([t.price for t in ticks], weights=[t.size for t in ticks]))
    assert min(t.price for t in ticks) <= vwap(ticks) <= max(t.price for t in ticks)
