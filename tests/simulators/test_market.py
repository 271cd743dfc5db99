"""The simulators' random-walk market: ticks, lots, price bands, cumulative counters, seeds, clock."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from marketpipe.simulators.market import BY_CODE, Clock, Market, shanghai_hms, shanghai_hms_ms


@pytest.mark.parametrize("code, down, up", [
    ("600519", 1350.00, 1650.00),   # main board ±10%
    ("600290", 2.00, 2.21),         # ST ±5%: 2.205 rounds half-up
    ("300750", 200.00, 300.00),     # ChiNext ±20%
    ("688981", 72.00, 108.00),      # STAR ±20%
    ("430047", 10.50, 19.50),       # BSE ±30%
    ("113050", 96.000, 144.000),    # convertible bond ±20%
    ("159506", 1.443, 1.763),       # ETF ±10% on a 0.001 tick
])
def test_daily_limits_per_board(code: str, down: float, up: float) -> None:
    assert BY_CODE[code].limits() == (down, up)


def test_walk_stays_in_band_on_tick_with_lots_and_cumulative_counters() -> None:
    codes = ["600290", "688981", "113050", "512170", "BTCUSDT", "EURUSD"]
    market = Market(codes, seed=3)
    last_id = {c: 0 for c in codes}
    volume = {c: 0.0 for c in codes}
    for _ in range(20):
        for t in market.trades(codes, 500):
            inst = BY_CODE[t.code]
            down, up = inst.limits()
            assert down <= t.price <= up
            assert abs(t.price / inst.tick - round(t.price / inst.tick)) < 1e-6
            if not inst.volume_decimals:
                assert t.volume % inst.lot == 0 and t.volume > 0
            assert t.trade_id == last_id[t.code] + 1
            last_id[t.code] = t.trade_id
            volume[t.code] += t.volume
    for code in codes:
        st = market.states[code]
        assert st.volume == pytest.approx(volume[code]) and st.low <= st.last <= st.high
        assert st.amount == pytest.approx(st.volume * st.last, rel=0.2)
    st = market.states["600290"]
    assert st.high > st.inst.prev_close * 1.02 or st.low < st.inst.prev_close * 0.98  # it does move


def test_same_seed_same_walk_and_timestamps_never_go_back() -> None:
    clock = Clock(start_ms=1_700_000_000_000)
    a = [(t.code, t.price, t.volume) for t in Market(seed=11, clock=clock).trades(["600519", "aapl"], 300)]
    b = [(t.code, t.price, t.volume) for t in Market(seed=11, clock=clock).trades(["600519", "aapl"], 300)]
    c = [(t.code, t.price, t.volume) for t in Market(seed=12, clock=clock).trades(["600519", "aapl"], 300)]
    assert a == b != c
    m = Market(["600519"], seed=1)
    stamps = [t.ts_ms for _ in range(5) for t in m.trades(["600519"], 10)]
    assert stamps == sorted(stamps)
    with pytest.raises(ValueError):
        Market(["NOT_A_CODE"])


def test_clock_speed_and_shanghai_wall_time() -> None:
    fast = Clock(speed=600.0, start_ms=0)
    time.sleep(0.11)  # the measurement: real time passing on a 600x clock
    assert fast.now_ms() >= 60_000  # a simulated minute in about 0.1 s
    ts = int(datetime(2024, 5, 6, 1, 30, 0, 123000, tzinfo=timezone.utc).timestamp() * 1000)
    assert shanghai_hms(ts) == "09:30:00" and shanghai_hms_ms(ts) == "09:30:00.123"
