"""Market calendars at their boundaries (times written in the market's own zone)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from marketpipe.market import markethours as mh

CST = ZoneInfo("Asia/Shanghai")


def cst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


# 2026-11-23 is a Monday.
@pytest.mark.parametrize("when,expected", [
    ("2026-11-23 09:14:59", False),
    ("2026-11-23 09:15:00", True),   # opening call auction
    ("2026-11-23 09:24:59", True),
    ("2026-11-23 09:27:00", False),  # matching pause before the continuous session
    ("2026-11-23 09:30:00", True),
    ("2026-11-23 11:29:59", True),
    ("2026-11-23 11:30:00", False),  # lunch break
    ("2026-11-23 12:59:59", False),
    ("2026-11-23 13:00:00", True),
    ("2026-11-23 14:59:59", True),
    ("2026-11-23 15:00:00", False),
    ("2026-11-27 10:00:00", True),   # Friday
    ("2026-11-28 10:00:00", False),  # Saturday
    ("2026-11-29 10:00:00", False),  # Sunday
])
def test_a_share_sessions_lunch_and_weekend(when: str, expected: bool) -> None:
    assert mh.A_SHARE.is_open(cst(when)) is expected


@pytest.mark.parametrize("when,expected", [
    ("2026-11-23 05:59:59", False),  # Monday before the FX week opens
    ("2026-11-23 06:00:00", True),
    ("2026-11-25 03:00:00", True),   # overnight mid-week
    ("2026-11-28 05:59:59", True),   # Saturday morning: New York Friday afternoon
    ("2026-11-28 06:00:00", False),
    ("2026-11-29 23:00:00", False),  # Sunday
])
def test_weekday_forex_runs_monday_06_to_saturday_06_china_time(when: str, expected: bool) -> None:
    assert mh.FOREX.is_open(cst(when)) is expected


def test_crypto_is_always_open() -> None:
    assert mh.CRYPTO.is_open(cst("2026-11-29 03:00:00"))
    assert mh.CRYPTO.is_open_at(0)


def test_zone_conversion_from_utc_and_us_daylight_saving() -> None:
    # 01:30 UTC = 09:30 China time
    assert mh.A_SHARE.is_open(datetime.fromisoformat("2026-11-23T01:30:00+00:00"))
    assert not mh.A_SHARE.is_open(datetime.fromisoformat("2026-11-23T01:29:00+00:00"))
    # 08:00 New York is open in both winter (13:00 UTC) and summer (12:00 UTC)
    assert mh.US.is_open(datetime.fromisoformat("2026-01-05T13:00:00+00:00"))
    assert mh.US.is_open(datetime.fromisoformat("2026-07-06T12:00:00+00:00"))
    assert not mh.US.is_open(datetime.fromisoformat("2026-07-06T07:59:00+00:00"))  # 03:59 EDT


def test_holidays_close_the_day() -> None:
    cal = mh.A_SHARE.with_holidays([date(2026, 11, 26)])  # a Thursday the exchanges trade
    assert not cal.is_open(cst("2026-11-26 10:00:00"))
    assert cal.is_open(cst("2026-11-27 10:00:00"))
    assert mh.A_SHARE.is_open(cst("2026-11-26 10:00:00"))


def test_any_of_mixes_markets() -> None:
    both = mh.AnyOf([mh.A_SHARE, mh.US])
    assert both.is_open(cst("2026-11-23 10:00:00"))          # Shanghai morning
    assert both.is_open(cst("2026-11-23 23:00:00"))          # New York morning
    assert not both.is_open(cst("2026-11-23 12:00:00"))      # lunch in Shanghai, night in New York
    assert mh.for_symbol_suffix("HK") is mh.HONG_KONG


def test_a_share_is_closed_on_exchange_holidays_from_the_one_table() -> None:
    assert not mh.A_SHARE.is_open(cst("2026-02-16 10:00:00"))  # 春节 2026
    assert not mh.A_SHARE.is_open(cst("2025-10-08 10:00:00"))  # 国庆、中秋 2025
    assert mh.A_SHARE.is_open(cst("2026-02-24 10:00:00"))      # trading resumes
