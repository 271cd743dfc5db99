"""China Standard Time as fixed arithmetic.

China keeps UTC+8 all year (no daylight saving), so converting its wall time to UTC and finding
the calendar day of an instant need no time-zone database: the decoders' hot path, the trading
calendar, interval volumes and the trade API all use these numbers. (Hong Kong keeps UTC+8 too.)
"""

from __future__ import annotations

from datetime import timedelta, timezone

#: China Standard Time minus UTC
CST_OFFSET_S = 8 * 3600
CST_OFFSET_MS = CST_OFFSET_S * 1000
DAY_MS = 24 * 3600 * 1000
#: the same fixed offset as a tzinfo, for datetime formatting
CST = timezone(timedelta(seconds=CST_OFFSET_S), "Asia/Shanghai")


def day_number(epoch_ms: int) -> int:
    """The China calendar day holding ``epoch_ms`` (UTC epoch ms), as days since 1970-01-01."""
    return (epoch_ms + CST_OFFSET_MS) // DAY_MS


def day_start_ms(day: int) -> int:
    """UTC epoch ms of the China midnight that starts day number ``day``."""
    return day * DAY_MS - CST_OFFSET_MS
