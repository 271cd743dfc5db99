"""Infoway websocket frames -> Tick (10002), Depth (10005), Kline (10008) records.

Control frames decode to ``[]`` and are counted (``metrics.CONTROL``): acks
(10001/10004/10007/10011/11010), the welcome ``{"code":200,...}``, the plain-text greeting of
the stock channel, ``Subscribe fail:`` rejections and error frames ``{traceId, code, msg}``
(protocols.md §2.2-2.5). Anything else that is not JSON is a ParseError (a frame that is not
even UTF-8 says so), as is JSON with an unknown code.

Shapes the provider documents print and protocols.md §0:

* Pushes come in the envelope ``{"code":100xx,"data":{...}}`` (§2.4 captures); the documents
  print the bare data object, so an object without ``code`` is read by its shape
  (``respList`` or ``o/h/l/c`` -> kline, ``a``/``b`` -> depth, ``p`` + ``v`` -> trade).
* Klines: the documents' ``{"s":…, "respList":[{t,h,o,l,c,v,vw,pc,pca}]}`` (one record per
  element) and the captured flat object with ``ty``. The interval is ``ty`` when present,
  else the kline type the connection subscribed, which the producer records in the raw
  header ``kline_types`` (comma-separated type numbers): exactly one known type is used,
  anything else dead-letters with ``kline interval unknown``.
* Depth: ``a`` = asks, ``b`` = bids, column-major ``[[prices],[qtys]]``. The document's
  comments call ``a`` 買盤, but its own prices put ``a`` (326.89 up) above ``b`` (326.88
  down): ``a`` are asks. The prices decide each frame (``common.oriented``): a depth whose ``a``
  lies below its ``b``, as a server following those comments would send it, is turned round and
  counted (``metrics.BOOK_REORIENTED``, kind ``sides``); one crossed either way is dead-lettered
  (``crossed book``).

Readings: ``t`` is epoch ms on trades/depth and a string of epoch SECONDS (bar start) on
klines; both spellings are accepted everywhere (a value below 1e11 is seconds). A push whose
``data`` is a list is read element by element. Plausibility: the event time lies within the
window of the receive time (a kline's bar start may be older by the kline's length), and a
frame carries at most :data:`MAX_RECORDS_PER_FRAME` records.
"""

from __future__ import annotations

from typing import Any

import orjson

from marketpipe.processors.decode import metrics
from marketpipe.processors.decode.base import DecoderState, Normalized, ParseError, RawFrame
from marketpipe.processors.decode.common import Emitter, check_event_time, epoch_ms, levels, num, opt_num, symbol_or_error
from marketpipe.providers.infoway import protocol as proto
from marketpipe.providers.infoway import symbols
from marketpipe.rawframe import H_BACKFILL, H_KLINE_TYPES

TRADE, BOOK, CANDLE = proto.PUSH_TRADE, proto.PUSH_DEPTH, proto.PUSH_KLINE
ACKS = proto.ACKS
SIDES = {0: "UNKNOWN", 1: "BUY", 2: "SELL"}
INTERVALS = {k.number: k.interval for k in proto.KLINES}
#: the longest a bar of each type lasts: how much older than the window its start may be
INTERVAL_MS = {k.number: k.longest_ms for k in proto.KLINES}
TEXT_CONTROL_PREFIXES = (proto.GREETING_PREFIX, proto.SUBSCRIBE_FAIL_PREFIX.rstrip(":"))
#: REST batch_kline returns at most 500 bars; a push carries a handful of records
MAX_RECORDS_PER_FRAME = 1000


def decode(frame: RawFrame, state: DecoderState) -> list[Normalized]:
    if frame.header(H_BACKFILL) is not None:
        return backfill(frame)
    value = frame.value
    body = value.lstrip()
    if not body.startswith(b"{"):
        return text_frame(value)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            raise ParseError(f"infoway: frame is not valid UTF-8 ({exc})") from None
        raise ParseError(f"infoway: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ParseError("infoway: JSON frame is not an object")
    code = obj.get("code")
    data: Any
    if "code" not in obj:  # the bare data object, as the documents print pushes
        code, data = shape_code(obj), obj
    else:
        data = obj.get("data")
    handler = PUSHES.get(code) if code.__class__ is int else None
    if handler is None:
        kind = control_kind(obj, code)
        if kind:
            metrics.CONTROL.labels("infoway", kind).inc()
            return []
        raise ParseError(f"infoway: unknown frame code {str(code)[:20]!r}")
    items = data if isinstance(data, list) else [data]
    em = Emitter(frame)
    try:
        if len(items) > MAX_RECORDS_PER_FRAME:
            raise ParseError(f"records per frame: {len(items)}, at most {MAX_RECORDS_PER_FRAME}")
        for item in items:
            if not isinstance(item, dict):
                raise ParseError("data is not an object")
            handler(em, item, frame)
    except ParseError as exc:
        raise ParseError(f"infoway {code}: {exc}") from None
    return em.out


def shape_code(obj: dict[str, Any]) -> int | None:
    """The push code of a bare data object, from its keys; None when it is no push shape."""
    if "respList" in obj or ("o" in obj and "h" in obj and "l" in obj and "c" in obj):
        return CANDLE
    if "a" in obj or "b" in obj:
        return BOOK
    if "p" in obj and "v" in obj:
        return TRADE
    return None


def text_frame(value: bytes) -> list[Normalized]:
    try:
        text = value.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ParseError(f"infoway: text frame is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if text.startswith(TEXT_CONTROL_PREFIXES):
        metrics.CONTROL.labels("infoway", "greeting" if text.startswith("You") else "subscribe fail").inc()
        return []
    raise ParseError(f"infoway: unexpected text frame {text[:40]!r}")


def control_kind(obj: dict[str, Any], code: Any) -> str | None:
    if code.__class__ is not int:
        return None
    if code in ACKS:
        return "ack"
    if code == proto.WELCOME:
        return "welcome"
    # Error frames: {traceId, code, msg} with a 4xx/5xx code (§2.5); never carry data.
    if "data" not in obj and ("traceId" in obj or 400 <= code < 600):
        return "error"
    return None


def field(item: dict[str, Any], key: str) -> Any:
    try:
        return item[key]
    except KeyError:
        raise ParseError(f"field {key!r} missing") from None


def symbol_of(item: dict[str, Any]) -> tuple[str, str]:
    venue = field(item, "s")
    if not isinstance(venue, str):
        raise ParseError("symbol is not a string")
    return symbol_or_error(symbols.canonical, venue), venue


def trade(em: Emitter, item: dict[str, Any], frame: RawFrame) -> None:
    symbol, venue = symbol_of(item)
    try:
        p, v, t = item["p"], item["v"], item["t"]
    except KeyError as exc:
        raise ParseError(f"field {exc.args[0]!r} missing") from None
    td = item.get("td", 0)
    em.tick(symbol, venue, check_event_time(epoch_ms(t, "t"), em.recv_ns), num(p, "p"), num(v, "v"),
            amount=opt_num(item.get("vw"), "vw"),
            side=SIDES.get(td, "UNKNOWN") if td.__class__ is int else "UNKNOWN")


def side_levels(item: dict[str, Any], key: str) -> list[dict[str, float]]:
    side = item.get(key)
    if side is None or side == []:
        return []
    if not (isinstance(side, list) and len(side) == 2 and isinstance(side[0], list) and isinstance(side[1], list)):
        raise ParseError(f"{key!r} is not [[prices],[quantities]]")
    prices, sizes = side
    if len(prices) != len(sizes):
        raise ParseError(f"{key!r} has {len(prices)} prices and {len(sizes)} quantities")
    return levels([num(p, key) for p in prices], [num(q, key) for q in sizes])


def book(em: Emitter, item: dict[str, Any], frame: RawFrame) -> None:
    symbol, venue = symbol_of(item)
    em.depth(symbol, venue, check_event_time(epoch_ms(field(item, "t"), "t"), em.recv_ns),
             side_levels(item, "b"), side_levels(item, "a"))


def kline_type(value: Any) -> int:
    ty = int(value) if isinstance(value, str) and value.isdigit() and value.isascii() else value
    if ty.__class__ is not int or ty not in INTERVALS:
        raise ParseError(f"unknown kline type {str(value)[:12]!r}")
    return int(ty)


def subscribed_type(frame: RawFrame) -> int:
    """The one kline type the connection subscribed (raw header ``kline_types``), else ParseError."""
    text = frame.header(H_KLINE_TYPES) or ""
    types = {t.strip() for t in text.split(",") if t.strip()}
    if len(types) != 1:
        raise ParseError(f"kline interval unknown: no ty and {len(types)} subscribed kline types "
                         f"({H_KLINE_TYPES}={text[:40]!r})")
    return kline_type(types.pop())


def candle(em: Emitter, item: dict[str, Any], frame: RawFrame) -> None:
    symbol, venue = symbol_of(item)
    bars = item.get("respList")
    if bars is None:
        bars = [item]
    elif not isinstance(bars, list) or not all(isinstance(b, dict) for b in bars):
        raise ParseError("respList is not a list of objects")
    elif len(bars) > MAX_RECORDS_PER_FRAME:
        raise ParseError(f"records per frame: {len(bars)} klines, at most {MAX_RECORDS_PER_FRAME}")
    outer_ty = item.get("ty")
    fallback: int | None = None
    for bar in bars:
        ty_value = bar.get("ty", outer_ty)
        if ty_value is not None:
            ty = kline_type(ty_value)
        else:
            if fallback is None:
                fallback = subscribed_type(frame)
            ty = fallback
        start = check_event_time(epoch_ms(field(bar, "t"), "t"), em.recv_ns, INTERVAL_MS[ty])
        em.kline(symbol, venue, start, INTERVALS[ty], num(field(bar, "o"), "o"), num(field(bar, "h"), "h"),
                 num(field(bar, "l"), "l"), num(field(bar, "c"), "c"), num(field(bar, "v"), "v"),
                 opt_num(bar.get("vw"), "vw"))


PUSHES = {TRADE: trade, BOOK: book, CANDLE: candle}


def backfill(frame: RawFrame) -> list[Normalized]:
    """A REST ``batch_kline`` answer the producer fetched after a gap (header ``backfill`` = the
    request path, which alone says the kline type): Kline records marked ``backfilled``."""
    try:
        request = proto.parse_batch_kline_path(frame.header(H_BACKFILL) or "")
        items = proto.rest_rows(frame.value)
    except ValueError as exc:
        raise ParseError(f"infoway backfill: {exc}") from None
    interval = INTERVALS.get(request.kline_type)
    if interval is None:
        raise ParseError(f"infoway backfill: unknown kline type {request.kline_type}")
    em = Emitter(frame)
    try:
        for venue, rows in items:
            symbol = symbol_or_error(symbols.canonical, venue)
            for row in rows:
                em.kline(symbol, venue, epoch_ms(field(row, "t"), "t"), interval,
                         num(field(row, "o"), "o"), num(field(row, "h"), "h"),
                         num(field(row, "l"), "l"), num(field(row, "c"), "c"),
                         num(field(row, "v"), "v"), opt_num(row.get("vw"), "vw"), backfilled=True)
    except ParseError as exc:
        raise ParseError(f"infoway backfill: {exc}") from None
    return em.out
