"""A-share trading days and the dating of jvQuant clock times by them (marketpipe/market/tradingdays.py).

Expected days come from the exchanges' notices (reopening dates, "照常开市"), not from the table.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketpipe.market import tradingdays as td

CST = ZoneInfo("Asia/Shanghai")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# (the last day before the closure, the day the notice says trading resumes)
@pytest.mark.parametrize("before,reopen", [
    (date(2023, 12, 29), date(2024, 1, 2)),   # 2024 元旦
    (date(2024, 2, 8), date(2024, 2, 19)),    # 2024 春节: 2/9 (Fri) - 2/17 closed
    (date(2024, 6, 7), date(2024, 6, 11)),    # 2024 端午: Mon 6/10 closed
    (date(2024, 9, 30), date(2024, 10, 8)),   # 2024 国庆
    (date(2025, 1, 27), date(2025, 2, 5)),    # 2025 春节: 1/28 - 2/4
    (date(2025, 4, 30), date(2025, 5, 6)),    # 2025 劳动节: 5/1 - 5/5
    (date(2025, 9, 30), date(2025, 10, 9)),   # 2025 国庆、中秋: 10/1 - 10/8
    (date(2025, 12, 31), date(2026, 1, 5)),   # 2026 元旦: 1/1 - 1/3
    (date(2026, 2, 13), date(2026, 2, 24)),   # 2026 春节: 2/15 - 2/23
    (date(2026, 9, 24), date(2026, 9, 28)),   # 2026 中秋: Fri 9/25
    (date(2026, 9, 30), date(2026, 10, 8)),   # 2026 国庆: 10/1 - 10/7
])
def test_closures_of_the_exchange_notices(before: date, reopen: date) -> None:
    assert td.is_a_share_trading_day(before) and td.is_a_share_trading_day(reopen)
    assert td.previous_trading_day(reopen) == before
    day = before + timedelta(days=1)
    while day < reopen:
        assert not td.is_a_share_trading_day(day), day
        day += timedelta(days=1)


def test_weekends_are_closed_even_on_make_up_workdays_and_years_are_covered() -> None:
    assert not td.is_a_share_trading_day(date(2026, 2, 14))  # 调休上班 Saturday: still no trading
    assert not td.is_a_share_trading_day(date(2026, 11, 28))  # an ordinary Saturday
    assert td.is_a_share_trading_day(date(2026, 11, 27))
    assert all(td.covers(y) for y in (2024, 2025, 2026))


@given(recv=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)),
       clock_s=st.integers(0, 86_399))
def test_a_clock_time_is_never_dated_more_than_an_hour_ahead_and_falls_on_a_trading_day(
        recv: datetime, clock_s: int) -> None:
    recv = recv.replace(tzinfo=CST)
    event_ms = td.clock_anchor(ms(recv)).date(clock_s * 1000)
    event = datetime.fromtimestamp(event_ms / 1000, CST)
    assert event_ms <= ms(recv) + 3600 * 1000
    assert td.is_a_share_trading_day(event.date())
    assert event.hour * 3600 + event.minute * 60 + event.second == clock_s
    # ...and it is the latest such instant: the same time a trading day later would be too far ahead
    later = event.date() + timedelta(days=1)
    while not td.is_a_share_trading_day(later):
        later += timedelta(days=1)
    assert ms(datetime.combine(later, event.time(), CST)) > ms(recv) + 3600 * 1000
