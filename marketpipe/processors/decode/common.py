"""What every provider decoder shares: numbers, China wall-clock times, record envelopes.

Hot path: plain ``float()``/``int()`` on split strings, no regex, no Decimal, no datetime.
China and Hong Kong keep UTC+8 all year (no DST), so wall time -> UTC is fixed arithmetic.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from marketpipe.market import symbols
from marketpipe.market.chinatime import CST_OFFSET_MS, DAY_MS
from marketpipe.market.tradingdays import ClockAnchor
from marketpipe.processors.decode import metrics
from marketpipe.processors.decode.base import PARSER_VERSION, Normalized, ParseError, RawFrame

HALF_DAY_MS = DAY_MS // 2
#: Anything beyond this is a garbage number, not a price or a quantity (also rejects inf/nan).
LIMIT = 1e18
#: Epoch values below this are seconds, above it milliseconds (1e11 s is the year 5138).
SECONDS_BELOW = 100_000_000_000

TICK, DEPTH, QUOTE, KLINE = "md.tick", "md.depth", "md.quote", "md.kline"

# Plausibility bounds (issue 11 item 7). Each breach dead-letters with its own reason, so a
# frame that is technically parseable but absurd never becomes a record.
#: No provider sends events dated before this (2000-01-01): an earlier one is a number misread as a time.
MIN_EVENT_MS = 946_684_800_000
#: An event is at most this old when received. Generous: jvQuant re-sends the day's last lv1
#: snapshot on subscribe after the close; klines may be older by their own length on top.
MAX_EVENT_AGE_MS = DAY_MS
#: ...and at most this far ahead of the receive clock (provider and receiver clocks disagree).
MAX_EVENT_LEAD_MS = 3600 * 1000


def num(text: Any, what: str) -> float:
    """A finite float from a decimal string or JSON number; ParseError names the field."""
    if text.__class__ is bool:
        raise ParseError(f"{what}: boolean is not a number")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise ParseError(f"{what}: {str(text)[:40]!r} is not a number") from None
    if not -LIMIT < value < LIMIT:  # false for nan too
        raise ParseError(f"{what}: {str(text)[:40]!r} is out of range")
    return value


def opt_num(text: Any, what: str) -> float | None:
    if text is None or text == "":
        return None
    return num(text, what)


def epoch_ms(value: Any, what: str = "time") -> int:
    """Epoch seconds or milliseconds (number or digit string) -> ms."""
    t = num(value, what)
    if t <= 0:
        raise ParseError(f"{what}: {value!r} is not a time")
    return int(t * 1000) if t < SECONDS_BELOW else int(t)


def clock_ms(text: str) -> int:
    """Milliseconds since midnight for ``HH:MM:SS`` or ``HH:MM:SS.fff`` (fraction of any length).

    Whole seconds are parsed once per process: a day has 86,400 of them and snapshot rows (lv1)
    carry nothing finer, so nearly every one was seen before. Times with a fraction (trades)
    rarely repeat and are parsed each time."""
    return _whole_second_ms(text) if len(text) == 8 else _clock_ms(text)


@lru_cache(maxsize=1 << 17)  # every second of a day; a text that fails to parse is not cached
def _whole_second_ms(text: str) -> int:
    return _clock_ms(text)


def forget_clock_times() -> None:
    """Empty the parsed-seconds cache (benchmarks: start each run as a fresh worker does)."""
    _whole_second_ms.cache_clear()


def _clock_ms(text: str) -> int:
    hms, _, frac = text.partition(".")
    parts = hms.split(":")
    if len(parts) != 3:
        raise ParseError(f"time {text[:24]!r}: HH:MM:SS[.fff] expected")
    for p in parts:
        if not (0 < len(p) <= 2 and p.isdigit() and p.isascii()):
            raise ParseError(f"time {text[:24]!r}: HH:MM:SS[.fff] expected")
    h, m, s = int(parts[0]), int(parts[1]), int(parts[2])
    if h > 23 or m > 59 or s > 60:
        raise ParseError(f"time {text[:24]!r} out of range")
    ms = 0
    if frac:
        if not (frac.isdigit() and frac.isascii()):
            raise ParseError(f"time {text[:24]!r}: bad fraction")
        ms = int((frac + "00")[:3])
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def cst_day_start_ms(recv_ns: int) -> int:
    """UTC epoch ms of 00:00 China time on the day the frame was received."""
    recv_ms = recv_ns // 1_000_000
    return (recv_ms + CST_OFFSET_MS) // DAY_MS * DAY_MS - CST_OFFSET_MS


def cst_clock_to_utc_ms(text: str, recv_ns: int, day_start: int | None = None) -> int:
    """A China wall-clock time of day -> UTC epoch ms, dated by the frame's receive time.

    The trading day is the receive day in China time. A time more than 12 h after the
    receive time belongs to the day before (a 23:59:59 row received at 00:00:01), one more
    than 12 h before it to the day after (a receive clock running behind the provider's).
    """
    recv_ms = recv_ns // 1_000_000
    if day_start is None:
        day_start = cst_day_start_ms(recv_ns)
    event = day_start + clock_ms(text)
    if event - recv_ms > HALF_DAY_MS:
        event -= DAY_MS
    elif recv_ms - event > HALF_DAY_MS:
        event += DAY_MS
    return event


def cst_datetime_to_utc_ms(text: str) -> int:
    """``YYYY-MM-DD HH:MM:SS[.fff]`` (or with ``T``) in China time -> UTC epoch ms."""
    date, sep, clock = text.replace("T", " ").partition(" ")
    ymd = date.split("-")
    if not sep or len(ymd) != 3 or not all(p.isdigit() and p.isascii() for p in ymd):
        raise ParseError(f"time {text[:30]!r}: YYYY-MM-DD HH:MM:SS expected")
    y, m, d = int(ymd[0]), int(ymd[1]), int(ymd[2])
    if not (1970 <= y <= 9999 and 1 <= m <= 12 and 1 <= d <= 31):
        raise ParseError(f"time {text[:30]!r}: bad date")
    return days_from_civil(y, m, d) * DAY_MS + clock_ms(clock) - CST_OFFSET_MS


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def cst_time_to_utc_ms(text: str, recv_ns: int, day_start: int | None = None) -> int:
    """Any time spelling a provider may use: clock time, China date-time, epoch s/ms."""
    if len(text) <= 12 and ":" in text:
        return cst_clock_to_utc_ms(text, recv_ns, day_start)
    if text.isdigit() and text.isascii():
        return epoch_ms(text)
    if "-" in text:
        return cst_datetime_to_utc_ms(text)
    raise ParseError(f"time {text[:30]!r}: unknown format")


def check_event_time(event_ms: int, recv_ns: int, extra_age_ms: int = 0) -> int:
    """``event_ms`` if it is plausible for a frame received at ``recv_ns`` (0: receive time
    unknown, only the absolute bound applies); else ParseError ``event time ...``."""
    if event_ms < MIN_EVENT_MS:
        raise ParseError(f"event time {iso_ms(event_ms)} is before 2000: not a time")
    if recv_ns > 0:
        recv_ms = recv_ns // 1_000_000
        if not recv_ms - MAX_EVENT_AGE_MS - extra_age_ms <= event_ms <= recv_ms + MAX_EVENT_LEAD_MS:
            raise ParseError(f"event time {iso_ms(event_ms)} is not within {(MAX_EVENT_AGE_MS + extra_age_ms) // 3_600_000} h"
                             f" before / {MAX_EVENT_LEAD_MS // 3_600_000} h after the receive time {iso_ms(recv_ms)}")
    return event_ms


def iso_ms(ms: int) -> str:
    """UTC ISO text of an epoch-ms value, for reasons only (never on the hot path)."""
    import datetime as _dt

    try:
        return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"


def is_clock(text: str) -> bool:
    """True for the shape ``H:MM:SS`` / ``HH:MM:SS[.fff]``, which a trade number never has.

    A shape test only (it decides which field is the time); ``clock_ms`` validates the value.
    """
    c = text.find(":")
    return 0 < c <= 2 and text[c + 3:c + 4] == ":" and text[:c].isdigit()


def symbol_or_error(convert: Any, code: str) -> str:
    try:
        return convert(code)
    except symbols.SymbolError as exc:
        raise ParseError(str(exc)) from None


def floats(values: list[str], what: str) -> list[float]:
    """All of ``values`` as finite floats, in one C-level pass (the lv1/lv10 hot path)."""
    try:
        out = list(map(float, values))
    except ValueError:
        bad = next((v for v in values if not _is_float(v)), "")
        raise ParseError(f"{what}: {bad[:40]!r} is not a number") from None
    total = sum(out)
    if total - total != 0.0:  # nan or inf somewhere (or an absurd magnitude)
        raise ParseError(f"{what}: non-finite number")
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def levels(prices: list[float], sizes: list[float]) -> list[dict[str, float]]:
    """Book levels, best first, without the empty levels providers pad with (price <= 0)."""
    return [{"price": p, "size": s} for p, s in zip(prices, sizes) if p > 0]


def oriented(provider: str, bids: list[dict[str, float]],
             asks: list[dict[str, float]]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(bids, asks) the right way round, decided by their prices (levels best first).

    A book whose best bid is above its best ask is crossed in our reading. When every bid of the
    other reading lies at or below every ask (the sides were sent under each other's key), the
    sides are swapped and counted (``metrics.BOOK_REORIENTED``, kind ``sides``); a book crossed
    either way is a ParseError (``crossed book``), dead-lettered rather than published. Equal
    best prices are a locked book (the call auction's indicative match), published as is.
    Hot path: one comparison for a book that is the right way round.
    """
    if not bids or not asks or bids[0]["price"] <= asks[0]["price"]:
        return bids, asks
    if max(lv["price"] for lv in asks) <= min(lv["price"] for lv in bids):
        metrics.BOOK_REORIENTED.labels(provider, "sides").inc()
        return asks, bids
    raise ParseError(f"crossed book: best bid {bids[0]['price']} above best ask {asks[0]['price']}, "
                     "and not the other way round either")


class Emitter:
    """Builds the records of one frame: the shared envelope and a running ``source.index``.

    One method per schema builds the record in a single dict literal (the hot path); the
    key order is the schema's field order. Books are published the right way round or not at
    all (:func:`oriented`).
    """

    __slots__ = ("provider", "recv_ns", "out", "topic", "partition", "offset", "clock_cache", "day_start", "anchor",
                 "a_share_calendar")

    def __init__(self, frame: RawFrame, a_share_calendar: bool = True) -> None:
        self.provider = frame.provider
        self.recv_ns = frame.meta.recv_ns
        self.out: list[Normalized] = []
        self.topic, self.partition, self.offset = frame.topic, frame.partition, frame.offset
        self.clock_cache: dict[str, int] = {}  # rows of one frame repeat the same clock times
        self.day_start: int | None = None  # only clock-time providers need it
        self.anchor: ClockAnchor | None = None  # how jvQuant A-share clock times of this frame are dated
        self.a_share_calendar = a_share_calendar  # DecoderState.a_share_calendar

    def event_time(self, text: str, convert: Callable[[str, int, int], int] | None = None) -> int:
        """A provider time string of this frame -> UTC epoch ms (cached per frame). ``convert`` is
        :func:`cst_time_to_utc_ms` (any spelling) unless the caller already knows the shape, e.g.
        :func:`cst_clock_to_utc_ms` for a clock time (the jvQuant hot path)."""
        t = self.clock_cache.get(text)
        if t is None:
            if self.day_start is None:
                self.day_start = cst_day_start_ms(self.recv_ns)
            t = (convert or cst_time_to_utc_ms)(text, self.recv_ns, self.day_start)
            self.clock_cache[text] = t
        return t

    def _source(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "index": len(self.out)}

    def tick(self, symbol: str, venue: str, event_time: int, price: float, size: float,
             amount: float | None = None, side: str = "UNKNOWN", trade_id: str | None = None,
             session: str | None = None) -> None:
        if not price > 0:
            raise ParseError(f"trade price {price} is not positive")
        self.out.append(Normalized("Tick", TICK, symbol, {
            "provider": self.provider, "symbol": symbol, "venue_symbol": venue, "event_time": event_time,
            "receive_time_ns": self.recv_ns, "price": price, "size": size, "amount": amount, "side": side,
            "trade_id": trade_id, "session": session, "parser_version": PARSER_VERSION, "source": self._source()}))

    def depth(self, symbol: str, venue: str, event_time: int, bids: list[dict[str, float]],
              asks: list[dict[str, float]]) -> None:
        if bids and asks and bids[0]["price"] > asks[0]["price"]:
            bids, asks = oriented(self.provider, bids, asks)
        self.out.append(Normalized("Depth", DEPTH, symbol, {
            "provider": self.provider, "symbol": symbol, "venue_symbol": venue, "event_time": event_time,
            "receive_time_ns": self.recv_ns, "bids": bids, "asks": asks, "parser_version": PARSER_VERSION,
            "source": self._source()}))

    def quote(self, symbol: str, venue: str, event_time: int, last: float, *, name: str | None = None,
              prev_close: float | None = None, change_pct: float | None = None, open_: float | None = None,
              high: float | None = None, low: float | None = None, cum_volume: float | None = None,
              cum_amount: float | None = None, bids: list[dict[str, float]] | None = None,
              asks: list[dict[str, float]] | None = None, field_order: str | None = None) -> None:
        if bids and asks and bids[0]["price"] > asks[0]["price"]:
            bids, asks = oriented(self.provider, bids, asks)
        if change_pct is None and prev_close is not None and prev_close > 1e-9:
            change_pct = (last / prev_close - 1.0) * 100.0
        self.out.append(Normalized("Quote", QUOTE, symbol, {
            "provider": self.provider, "symbol": symbol, "venue_symbol": venue, "event_time": event_time,
            "receive_time_ns": self.recv_ns, "name": name, "last": last, "prev_close": prev_close,
            "change_pct": change_pct, "open": open_, "high": high, "low": low, "cum_volume": cum_volume,
            "cum_amount": cum_amount, "interval_volume": None, "bids": bids or [], "asks": asks or [],
            "field_order": field_order, "parser_version": PARSER_VERSION, "source": self._source()}))

    def kline(self, symbol: str, venue: str, event_time: int, interval: str, open_: float, high: float,
              low: float, close: float, volume: float, amount: float | None, backfilled: bool = False) -> None:
        self.out.append(Normalized("Kline", KLINE, symbol, {
            "provider": self.provider, "symbol": symbol, "venue_symbol": venue, "event_time": event_time,
            "receive_time_ns": self.recv_ns, "interval": interval, "open": open_, "high": high, "low": low,
            "close": close, "volume": volume, "amount": amount, "parser_version": PARSER_VERSION,
            "source": self._source(), "backfilled": backfilled}))
