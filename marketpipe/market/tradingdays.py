"""A-share trading days (pure data and arithmetic), and the dating of clock times by them.

jvQuant stamps its rows with a time of day only (``15:00:03``). Which day that is cannot be read
from the row: a snapshot received at 08:30, before the open, is the previous trading day's close,
and one received on a Saturday is Friday's (or the last trading day's before a holiday). The rule
(:func:`clock_anchor`): **a clock time is the latest instant with that time of day, on a trading
day, that is at most** :data:`MAX_LEAD_MS` **(1 h) after the receive time.** So no clock-time
record ever lies more than an hour in the future of its receive time (provider and receiver
clocks may disagree by minutes, never by hours), and a time an hour or more "ahead" is the same
time on the trading day before.

Trading days are weekdays that are not SSE/SZSE holidays. :data:`A_SHARE_HOLIDAYS` lists the
weekdays the exchanges close, per year, copied from the exchanges' annual notices:
《关于上海证券交易所2024年部分节假日休市安排的通知》 (2023-12-26), the 2025 notice (2024-12-23)
and the 2026 notice (2025-12-22); the Shenzhen and Beijing exchanges published the same dates.
Weekend make-up workdays (调休上班) do not matter: the exchanges never open on a weekend. Years not
in the table count weekdays only; add each year's dates when the notice comes out in December
(:func:`covers` says whether a year is in the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Callable

from marketpipe.market import chinatime

TradingDay = Callable[[date], bool]

#: SSE/SZSE weekday closures by year (month, day), from the notices named in the module docstring.
A_SHARE_HOLIDAYS: dict[int, tuple[tuple[int, int], ...]] = {
    2024: ((1, 1),                                      # 元旦
           (2, 9), (2, 12), (2, 13), (2, 14), (2, 15), (2, 16),  # 春节 2/9-2/17
           (4, 4), (4, 5),                              # 清明 4/4-4/6
           (5, 1), (5, 2), (5, 3),                      # 劳动节 5/1-5/5
           (6, 10),                                     # 端午
           (9, 16), (9, 17),                            # 中秋 9/15-9/17
           (10, 1), (10, 2), (10, 3), (10, 4), (10, 7)),  # 国庆 10/1-10/7
    2025: ((1, 1),                                      # 元旦
           (1, 28), (1, 29), (1, 30), (1, 31), (2, 3), (2, 4),  # 春节 1/28-2/4
           (4, 4),                                      # 清明 4/4-4/6
           (5, 1), (5, 2), (5, 5),                      # 劳动节 5/1-5/5
           (6, 2),                                      # 端午 5/31-6/2
           (10, 1), (10, 2), (10, 3), (10, 6), (10, 7), (10, 8)),  # 国庆、中秋 10/1-10/8
    2026: ((1, 1), (1, 2),                              # 元旦 1/1-1/3
           (2, 16), (2, 17), (2, 18), (2, 19), (2, 20), (2, 23),  # 春节 2/15-2/23
           (4, 6),                                      # 清明 4/4-4/6
           (5, 1), (5, 4), (5, 5),                      # 劳动节 5/1-5/5
           (6, 19),                                     # 端午 6/19-6/21
           (9, 25),                                     # 中秋 9/25-9/27
           (10, 1), (10, 2), (10, 5), (10, 6), (10, 7)),  # 国庆 10/1-10/7
}

#: a clock time is never dated further than this after its receive time
MAX_LEAD_MS = 3600 * 1000
EPOCH = date(1970, 1, 1)
#: the longest run of closed days (a Spring Festival week between two weekends) is well below this
MAX_CLOSED_RUN = 20


@lru_cache(maxsize=1)
def a_share_holidays() -> frozenset[date]:
    return frozenset(date(y, m, d) for y, days in A_SHARE_HOLIDAYS.items() for m, d in days)


def covers(year: int) -> bool:
    """Whether the holiday table knows ``year`` (outside it only weekends are closed)."""
    return year in A_SHARE_HOLIDAYS


def is_a_share_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in a_share_holidays()


def every_day(day: date) -> bool:
    """The calendar of markets we ship no holidays for (the jvQuant HK and US rows)."""
    return True


def previous_trading_day(day: date, trading: TradingDay = is_a_share_trading_day) -> date:
    """The latest trading day strictly before ``day``."""
    for back in range(1, MAX_CLOSED_RUN + 1):
        d = day - timedelta(days=back)
        if trading(d):
            return d
    raise ValueError(f"no trading day in the {MAX_CLOSED_RUN} days before {day}")



@dataclass(frozen=True)
class ClockAnchor:
    """How to date the clock times of frames received at one moment (see the module docstring).

    ``today_ms``: UTC epoch ms of 00:00 China time of the day the lead limit falls on, or -1 when
    that day is no trading day; ``latest_ms``: the last time of day (ms since midnight) that
    still dates to that day; ``previous_ms``: 00:00 of the trading day before it.
    """

    today_ms: int
    latest_ms: int
    previous_ms: int

    def date(self, clock_ms: int) -> int:
        """UTC epoch ms of a time of day (ms since midnight, China time)."""
        if self.today_ms >= 0 and clock_ms <= self.latest_ms:
            return self.today_ms + clock_ms
        return self.previous_ms + clock_ms


def clock_anchor(recv_ms: int, a_share: bool = True) -> ClockAnchor:
    """The :class:`ClockAnchor` of a receive time (UTC epoch ms); A-share trading days, or every
    day when ``a_share`` is false. Pure: depends on the receive time and the table only."""
    limit = recv_ms + MAX_LEAD_MS
    day_number = chinatime.day_number(limit)
    return _anchor(day_number, a_share, limit - chinatime.day_start_ms(day_number))


def _anchor(day_number: int, a_share: bool, latest_ms: int) -> ClockAnchor:
    starts = _day_starts(day_number, a_share)
    return ClockAnchor(starts[0], latest_ms, starts[1])


@lru_cache(maxsize=64)  # one or two days are in use at any time; frames share them
def _day_starts(day_number: int, a_share: bool) -> tuple[int, int]:
    trading = is_a_share_trading_day if a_share else every_day
    day = EPOCH + timedelta(days=day_number)
    start = chinatime.day_start_ms(day_number)
    previous = previous_trading_day(day, trading)
    return (start if trading(day) else -1), chinatime.day_start_ms((previous - EPOCH).days)
