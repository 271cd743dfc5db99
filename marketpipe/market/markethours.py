"""When a market is open (pure): weekly trading windows in the market's own time zone.

Used by the producers to tell a stalled feed (market open, nothing arrives) from a quiet one
(lunch break, night, weekend): only the first is worth a reconnect and a new server allocation.

Choices (all times China Standard Time, UTC+8, no daylight saving):

- A-share (SSE/SZSE/BSE): weekdays 09:15-09:25 (opening call auction, indicative quotes flow),
  09:30-11:30 and 13:00-15:00. 09:25-09:30 is left out: orders queue but nothing is matched,
  so a silent feed then is normal.
- Hong Kong: weekdays 09:00-12:00 and 13:00-16:10 (pre-opening and closing auction included).
- US: weekdays 04:00-20:00 New York time (pre-market, regular and after-hours sessions; DST via
  zoneinfo).
- Forex / commodities / global indices ("weekday forex"): one window Monday 06:00 to Saturday
  06:00 China time. The FX week opens Monday morning in Wellington/Sydney (about 05:00-06:00
  China time) and closes Friday 17:00 New York = Saturday 05:00/06:00 China time; the
  window is the rounded superset, so a quiet hour at the edges never causes a reconnect.
- Crypto: always open.

A holidays table (local dates) can be given: windows starting on such a date are closed. The
A-share calendar carries the SSE/SZSE holidays of marketpipe/market/tradingdays.py (the one table,
which also dates jvQuant clock times); other markets ship none: on their holidays the producer
behaves as on a day of trading without trades (one reconnect per stall period), which is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo

from marketpipe.market import tradingdays

WEEKDAYS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Window:
    """[start, end) in minutes since Monday 00:00 local time; may span several days."""

    start: int
    end: int

    def contains(self, minute: float) -> bool:
        return self.start <= minute < self.end


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def daily(start: str, end: str, days: Iterable[int] = WEEKDAYS) -> tuple[Window, ...]:
    """The same local window on each of ``days`` (0 = Monday)."""
    return tuple(Window(d * 1440 + _minutes(start), d * 1440 + _minutes(end)) for d in days)


def weekly(start_day: int, start: str, end_day: int, end: str) -> tuple[Window, ...]:
    return (Window(start_day * 1440 + _minutes(start), end_day * 1440 + _minutes(end)),)


@lru_cache(maxsize=None)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class Calendar:
    name: str
    tz: str
    windows: tuple[Window, ...] = ()
    always: bool = False
    holidays: frozenset[date] = field(default_factory=frozenset)

    def is_open(self, when: datetime) -> bool:
        """``when`` must be timezone-aware."""
        if self.always:
            return True
        local = when.astimezone(_zone(self.tz))
        monday = local.date() - timedelta(days=local.weekday())
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute + local.second / 60
        for w in self.windows:
            if w.contains(minute) and (monday + timedelta(minutes=w.start)) not in self.holidays:
                return True
        return False

    def is_open_at(self, epoch_seconds: float) -> bool:
        return self.is_open(datetime.fromtimestamp(epoch_seconds, timezone.utc))

    def with_holidays(self, days: Iterable[date]) -> "Calendar":
        return Calendar(self.name, self.tz, self.windows, self.always, frozenset(days) | self.holidays)


CHINA = "Asia/Shanghai"
A_SHARE = Calendar("a-share", CHINA, daily("09:15", "09:25") + daily("09:30", "11:30") + daily("13:00", "15:00"),
                   holidays=tradingdays.a_share_holidays())
HONG_KONG = Calendar("hong-kong", "Asia/Hong_Kong", daily("09:00", "12:00") + daily("13:00", "16:10"))
US = Calendar("us", "America/New_York", daily("04:00", "20:00"))
FOREX = Calendar("forex", CHINA, weekly(0, "06:00", 5, "06:00"))
CRYPTO = Calendar("crypto", "UTC", always=True)
ALWAYS = Calendar("always", "UTC", always=True)  # a feed that trades around the clock whatever it carries


class AnyOf:
    """Open when any of several calendars is open (a connection mixing markets)."""

    def __init__(self, calendars: Iterable[Calendar]) -> None:
        self.calendars = tuple(dict.fromkeys(calendars))
        self.name = "+".join(c.name for c in self.calendars)

    def is_open(self, when: datetime) -> bool:
        return any(c.is_open(when) for c in self.calendars)

    def is_open_at(self, epoch_seconds: float) -> bool:
        return self.is_open(datetime.fromtimestamp(epoch_seconds, timezone.utc))


def for_symbol(symbol: str) -> Calendar:
    """Market calendar of a canonical symbol: suffix for stocks, crypto all week, the rest FX hours
    (quoted, like the A-shares, on China time)."""
    base, dot, suffix = symbol.rpartition(".")
    if dot and base:
        return for_symbol_suffix(suffix)
    if symbol.endswith(("USDT", "USDC", "BTC", "ETH")):
        return CRYPTO
    return FOREX


def local_time(epoch_ms: int, symbol: str) -> datetime:
    """``epoch_ms`` as the clock time of ``symbol``'s market (China time for A-shares, ...)."""
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).astimezone(_zone(for_symbol(symbol).tz))


def for_symbol_suffix(suffix: str) -> Calendar:
    """Calendar of a stock code suffix as Infoway spells it (``600519.SH``, ``00700.HK``, ``AAPL.US``)."""
    return {"SH": A_SHARE, "SZ": A_SHARE, "BJ": A_SHARE, "HK": HONG_KONG, "US": US}.get(suffix.upper(), A_SHARE)
