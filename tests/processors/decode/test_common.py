"""Shared decoder helpers against independent oracles (zoneinfo, datetime)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketpipe.processors.decode.base import MAX_REASON, ParseError
from marketpipe.processors.decode.common import (
    cst_clock_to_utc_ms,
    cst_datetime_to_utc_ms,
    days_from_civil,
    epoch_ms,
    floats,
    num,
)

CST = ZoneInfo("Asia/Shanghai")
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)).map(lambda d: d.replace(tzinfo=CST))


@given(event=instants, skew_s=st.integers(-11 * 3600, 11 * 3600))
def test_clock_time_is_dated_by_the_nearest_receive_day(event: datetime, skew_s: int) -> None:
    event = event.replace(microsecond=event.microsecond // 1000 * 1000)
    recv = event + timedelta(seconds=skew_s)
    recv_ns = int(recv.timestamp()) * 1_000_000_000 + recv.microsecond * 1000
    text = event.strftime("%H:%M:%S") + f".{event.microsecond // 1000:03d}"
    assert cst_clock_to_utc_ms(text, recv_ns) == round(event.timestamp() * 1000)


@given(st.dates(min_value=date(1970, 1, 1), max_value=date(9999, 12, 31)))
def test_days_from_civil(d: date) -> None:
    assert days_from_civil(d.year, d.month, d.day) == (d - date(1970, 1, 1)).days


def test_china_datetime() -> None:
    expected = int(datetime(2024, 6, 3, 9, 30, 0, 500000, tzinfo=CST).timestamp() * 1000)
    assert cst_datetime_to_utc_ms("2024-06-03 09:30:00.5") == expected


@pytest.mark.parametrize("value,expected", [(1786775227483, 1786775227483), ("1786775220", 1786775220000),
                                            (1786775220.5, 1786775220500)])
def test_epoch_seconds_or_millis(value: object, expected: int) -> None:
    assert epoch_ms(value) == expected


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999", "", "x", None, True, [1]])
def test_num_rejects(bad: object) -> None:
    with pytest.raises(ParseError):
        num(bad, "f")


def test_floats_names_the_bad_value() -> None:
    assert floats(["1", "2.5"], "f") == [1.0, 2.5]
    with pytest.raises(ParseError, match="'abc'"):
        floats(["1", "abc"], "f")
    with pytest.raises(ParseError, match="non-finite"):
        floats(["1", "nan"], "f")


def test_reason_is_one_bounded_line() -> None:
    err = ParseError("a\nb\r\n" + "x" * 1000)
    assert "\n" not in str(err) and str(err).startswith("a b ") and len(str(err)) == MAX_REASON


def test_clock_times_parse_the_same_from_the_cache_and_errors_are_never_cached() -> None:
    from marketpipe.processors.decode.common import clock_ms, forget_clock_times

    forget_clock_times()
    for _ in range(2):  # parsed, then served from the whole-second cache
        assert clock_ms("09:30:00") == 34_200_000
        assert clock_ms("14:59:59") == 53_999_000
        assert clock_ms("9:30:00") == 34_200_000  # 7 characters: parsed each time
        assert clock_ms("14:59:59.5") == 53_999_500
        for bad in ("24:00:00", "ab:cd:ef", "10:61:00", "1:2:3:45"):
            with pytest.raises(ParseError):
                clock_ms(bad)
