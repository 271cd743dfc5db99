"""Seeded random-walk market shared by the provider simulators.

One ``Market`` holds the state of every instrument (last price, day open/high/low,
cumulative volume and amount, per-symbol trade ids); ``Market.trades(codes, n)``
advances it by ``n`` trades spread over ``codes``. Prices move in whole ticks and
stay inside the daily band computed from ``prev_close`` (rule table in
protocols.md §5: ±10% main board, ±5% ST, ±20% ChiNext/STAR/CB, ±30% BSE).
Times come from an injectable ``Clock`` whose ``speed`` lets a demo see
1-minute bars in seconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Iterable, Sequence

from marketpipe.market.chinatime import CST


class Clock:
    """Simulated epoch-ms clock: ``start_ms`` + real elapsed time × ``speed``."""

    def __init__(self, speed: float = 1.0, start_ms: int | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be > 0")
        self.speed = speed
        self._t0 = time.monotonic()
        self._start_ms = start_ms if start_ms is not None else int(time.time() * 1000)

    def now_ms(self) -> int:
        return self._start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)


#: The readings a simulator can speak where the provider documents and later notes differ
#: (protocols.md §0): ``documented`` = as the provider documents print it (default), ``notes`` = the other one.
DIALECTS = ("documented", "notes")


def check_dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    return dialect


def shanghai_hms(ts_ms: int) -> str:
    """``HH:MM:SS`` Beijing wall time (jvQuant lv1/lv10 ``time``)."""
    return _hms_of_second(ts_ms // 1000)


@lru_cache(maxsize=4096)
def _hms_of_second(epoch_s: int) -> str:  # cached: at high rates many trades share a second
    return datetime.fromtimestamp(epoch_s, CST).strftime("%H:%M:%S")


def shanghai_hms_ms(ts_ms: int) -> str:
    """``HH:MM:SS.fff`` Beijing wall time (jvQuant lv2 trade time)."""
    return shanghai_hms(ts_ms) + f".{ts_ms % 1000:03d}"


@dataclass(frozen=True)
class Instrument:
    code: str            # canonical code: jvQuant spelling for A-shares/US, plain symbol otherwise
    name: str
    kind: str            # stock | fund | bond | index | us | crypto | fx
    exchange: str        # SH | SZ | BJ | US | CRYPTO | FX
    prev_close: float
    tick: float
    lot: int             # volume step for generated trades
    limit_pct: float | None  # daily band; None = no limit
    volume_decimals: int = 0

    @property
    def price_decimals(self) -> int:
        return max(0, -Decimal(str(self.tick)).as_tuple().exponent)  # type: ignore[operator]

    def limits(self) -> tuple[float, float]:
        """(down, up) limit prices: prev_close × (1 ± pct) rounded half-up to the tick."""
        if self.limit_pct is None:
            return (self.tick, float("inf"))
        prev, pct, q = Decimal(str(self.prev_close)), Decimal(str(self.limit_pct)), Decimal(str(self.tick))
        up = (prev * (1 + pct)).quantize(q, rounding=ROUND_HALF_UP)
        down = (prev * (1 - pct)).quantize(q, rounding=ROUND_HALF_UP)
        return float(down), float(up)

    def fmt(self, price: float) -> str:
        return f"{price:.{self.price_decimals}f}"


def _a(code: str, name: str, prev: float, board: str, kind: str = "stock") -> Instrument:
    """A-share instrument with its board's tick, lot and price band."""
    exchange = "SH" if code[0] in "569" or code.startswith("11") else "BJ" if code[0] in "48" or code.startswith("92") else "SZ"
    tick, lot = (0.001, 10) if kind == "bond" else (0.001, 100) if kind == "fund" else (0.01, 100)
    limit = {"main": 0.10, "st": 0.05, "growth": 0.20, "bse": 0.30, "bond": 0.20, "none": None}[board]
    return Instrument(code, name, kind, exchange, prev, tick, 200 if code.startswith("688") else lot, limit)


UNIVERSE: tuple[Instrument, ...] = (
    _a("600519", "贵州茅台", 1500.00, "main"),
    _a("601318", "中国平安", 50.00, "main"),
    _a("000001", "平安银行", 11.50, "main"),
    _a("002594", "比亚迪", 260.00, "main"),
    _a("600290", "*ST华仪", 2.10, "st"),
    _a("300750", "宁德时代", 250.00, "growth"),
    _a("688981", "中芯国际", 90.00, "growth"),
    _a("430047", "诺思兰德", 15.00, "bse"),
    _a("830799", "艾融软件", 30.00, "bse"),
    _a("113050", "南银转债", 120.000, "bond", "bond"),
    _a("127063", "贵轮转债", 130.000, "bond", "bond"),
    _a("123089", "九洲转债", 140.000, "bond", "bond"),
    _a("512170", "医疗ETF", 0.400, "main", "fund"),
    _a("159506", "恒生医疗ETF", 1.603, "main", "fund"),
    Instrument("i000001", "上证指数", "index", "SH", 3300.00, 0.01, 1_000_000, None),
    Instrument("aapl", "Apple", "us", "US", 190.00, 0.01, 1, None),
    Instrument("amzn", "Amazon", "us", "US", 180.00, 0.01, 1, None),
    Instrument("tsla", "Tesla", "us", "US", 240.00, 0.01, 1, None),
    Instrument("BTCUSDT", "Bitcoin", "crypto", "CRYPTO", 63000.00, 0.01, 1, None, volume_decimals=5),
    Instrument("ETHUSDT", "Ethereum", "crypto", "CRYPTO", 3000.00, 0.01, 1, None, volume_decimals=4),
    Instrument("XAUUSD", "现货黄金", "fx", "FX", 2345.67, 0.01, 1, None, volume_decimals=2),
    Instrument("XAGUSD", "现货白银", "fx", "FX", 29.500, 0.001, 1, None, volume_decimals=2),
    Instrument("EURUSD", "欧元/美元", "fx", "FX", 1.08000, 0.00001, 1, None, volume_decimals=2),
    Instrument("USDCNH", "美元/离岸人民币", "fx", "FX", 7.2500, 0.0001, 1, None, volume_decimals=2),
    Instrument("USOIL", "WTI原油", "fx", "FX", 78.00, 0.01, 1, None, volume_decimals=2),
    Instrument("DXY", "美元指数", "fx", "FX", 104.500, 0.001, 1, None, volume_decimals=2),
)
BY_CODE: dict[str, Instrument] = {i.code: i for i in UNIVERSE}


@dataclass(frozen=True)
class Trade:
    code: str
    trade_id: int
    ts_ms: int
    price: float
    volume: float
    side: int  # 1 buy-initiated, 2 sell-initiated


@dataclass
class State:
    inst: Instrument
    last: float
    open: float
    high: float
    low: float
    volume: float = 0.0
    amount: float = 0.0
    next_id: int = 1
    down: float = 0.0
    up: float = 0.0

    @property
    def ratio_pct(self) -> float:
        return 100.0 * (self.last / self.inst.prev_close - 1.0)

    def book(self, levels: int) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        """(bids, asks) as (price, qty), best first; levels outside the band come back as (0, 0)
        the way a limit-up book shows an empty ask side."""
        tick, lot = self.inst.tick, max(self.inst.lot, 1)
        qty_seed = int(self.volume) + self.next_id  # deterministic, changes every trade
        bids, asks = [], []
        for k in range(levels):
            bp = round(self.last - k * tick, 8)
            ap = round(self.last + (k + 1) * tick, 8)
            q1 = lot * (1 + (qty_seed * (k + 3)) % 37)
            q2 = lot * (1 + (qty_seed * (k + 7)) % 41)
            bids.append((bp, q1) if bp >= self.down else (0.0, 0))
            asks.append((ap, q2) if ap <= self.up else (0.0, 0))
        return bids, asks


class Market:
    """Random walk over the instruments in ``codes`` (default: the whole universe)."""

    def __init__(self, codes: Iterable[str] | None = None, seed: int = 0, clock: Clock | None = None) -> None:
        self.rng = random.Random(seed)
        self.clock = clock or Clock()
        chosen = list(codes) if codes is not None else [i.code for i in UNIVERSE]
        unknown = [c for c in chosen if c not in BY_CODE]
        if unknown:
            raise ValueError(f"unknown symbols: {', '.join(unknown)}")
        self.states: dict[str, State] = {}
        for code in chosen:
            inst = BY_CODE[code]
            down, up = inst.limits()
            self.states[code] = State(inst, inst.prev_close, inst.prev_close, inst.prev_close, inst.prev_close,
                                      down=down, up=up)
        self._last_ts = 0

    def trades(self, codes: Sequence[str], n: int) -> list[Trade]:
        """Advance the market by ``n`` trades on symbols drawn from ``codes``; their timestamps are
        spread over the time since the previous call and never go back."""
        live = [c for c in codes if c in self.states]
        if not live or n <= 0:
            return []
        now = max(self.clock.now_ms(), self._last_ts)
        start = max(self._last_ts, now - 1000)
        picks = self.rng.choices(live, k=n)
        out = [self._step(self.states[code], start + (now - start) * (i + 1) // n) for i, code in enumerate(picks)]
        self._last_ts = now
        return out

    def _step(self, st: State, ts_ms: int) -> Trade:
        inst, rng = st.inst, self.rng
        sigma_ticks = max(1.0, st.last * 0.0004 / inst.tick)
        move = round(rng.gauss(0.0, sigma_ticks))
        # mean reversion towards prev_close keeps long runs inside the band
        move -= round((st.last - inst.prev_close) / inst.prev_close * 0.02 * st.last / inst.tick)
        price = round(min(max(st.last + move * inst.tick, st.down), st.up), inst.price_decimals)
        if inst.volume_decimals:
            volume = round(rng.uniform(0.001, 2.0) * inst.lot, inst.volume_decimals)
        else:
            volume = inst.lot * (1 + int(rng.expovariate(0.3)))
        side = 1 if move > 0 else 2 if move < 0 else rng.choice((1, 2))
        st.last = price
        st.high = max(st.high, price)
        st.low = min(st.low, price)
        st.volume += volume
        st.amount += price * volume
        trade = Trade(inst.code, st.next_id, ts_ms, price, volume, side)
        st.next_id += 1
        return trade


@dataclass
class Bar:
    start_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    amount: float = 0.0


#: Bar length in seconds per Infoway kline type (1=1min … 12=1year; month/quarter/year approximated).
@dataclass
class BarBuilder:
    """Current bar per (code, seconds), updated trade by trade."""

    bars: dict[tuple[str, int], Bar] = field(default_factory=dict)
    prev_close: dict[tuple[str, int], float] = field(default_factory=dict)

    def update(self, trade: Trade, seconds: int) -> Bar:
        key = (trade.code, seconds)
        start = (trade.ts_ms // 1000) // seconds * seconds
        bar = self.bars.get(key)
        if bar is None or bar.start_s != start:
            if bar is not None:
                self.prev_close[key] = bar.close
            bar = self.bars[key] = Bar(start, trade.price, trade.price, trade.price, trade.price)
        bar.high = max(bar.high, trade.price)
        bar.low = min(bar.low, trade.price)
        bar.close = trade.price
        bar.volume += trade.volume
        bar.amount += trade.price * trade.volume
        return bar
