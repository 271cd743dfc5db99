"""Use today's bars of a symbol only where marketpipe's completeness ledger says nothing is missing.

    python complete_bars.py 600519.SH    # with the pipeline's KAFKA_BOOTSTRAP_SERVERS / MARKETPIPE_TOPIC_PREFIX
"""

import datetime as dt
import sys
import time

from marketpipe.client import Bar, MarketDataConsumer, completeness
from marketpipe.completeness import day_bounds, trading_day

symbol = sys.argv[1] if len(sys.argv) > 1 else "600519.SH"
now = int(time.time() * 1000)
day_start, _ = day_bounds(symbol, trading_day(symbol, now))  # today, in the symbol's market (China time here)
until = now - 15_000  # the processor writes the ledger every few seconds: ask about what it has seen


def utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds")


answer = completeness(symbol, day_start, until)
print(f"{symbol} today until {utc(until)}: {'complete' if answer.complete else 'INCOMPLETE'}")
for hole in answer.holes:
    print(f"  {hole.state:10} {utc(hole.start)} .. {utc(hole.end)} ({(hole.end - hole.start) / 1000:.1f} s)")


def usable(bar: Bar) -> bool:
    """No hole overlaps the bar's window, and the processor knew of no gap in it either."""
    return not bar.gap and not any(h.start < bar.window_end and bar.window_start < h.end for h in answer.holes)


latest: dict[int, Bar] = {}  # the highest revision of each window
with MarketDataConsumer(["md.bar"], start=day_start, symbols=[symbol]) as bars:
    for bar in bars.records(timeout=5):  # a symbol's bars are in one partition, in the order emitted
        if bar.window_start >= until:
            break  # past the range the ledger answered for (a live feed never goes quiet for 5 s)
        if bar.window_end <= until and bar.revision >= latest.get(bar.window_start, bar).revision:
            latest[bar.window_start] = bar
good = [bar for bar in latest.values() if usable(bar)]
print(f"{len(good)} of {len(latest)} bars usable")
