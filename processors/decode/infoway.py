"""Infoway websocket frames -> Tick (10002), Depth (10005), Kline (10008) records.

Control frames decode to ``[]``: acks (10001/10004/10007/10011/11010), the welcome
``{"code":200,...}``, the plain-text greeting of the stock channel, ``Subscribe fail:``
rejections and error frames ``{traceId, code, msg}`` (protocols.md §2.2-2.5). Anything
else that is not JSON is a ParseError, as is JSON with an unknown code.

Readings: ``t`` is epoch ms on trades/depth and a string of epoch SECONDS (bar start) on
klines; both spellings are accepted everywhere (a value below 1e11 is seconds). A push whose
``data`` is a list is read element by element. Depth is column-major ``[[prices],[qtys]]``.
"""

from __future__ import annotations

from typing import Any

import orjson

from marketpipe.protocol import infoway as proto
from marketpipe.rawframe import H_BACKFILL, extra_header
from processors import symbols
from processors.decode.base import Normalized, ParseError, RawFrame
from processors.decode.common import Emitter, epoch_ms, levels, num, opt_num, symbol_or_error

TRADE, BOOK, CANDLE = 10002, 10005, 10008
ACKS = frozenset({200, 10001, 10004, 10007, 10011, 11010})
SIDES = {0: "UNKNOWN", 1: "BUY", 2: "SELL"}
INTERVALS = {1: "1m", 2: "5m", 3: "15m", 4: "30m", 5: "1h", 6: "2h", 7: "4h", 8: "1d", 9: "1w", 10: "1M",
             11: "1Q", 12: "1y"}
TEXT_CONTROL_PREFIXES = ("You have permission", "Subscribe fail")


def decode(frame: RawFrame) -> list[Normalized]:
    if frame.meta.extra and extra_header(frame.meta, H_BACKFILL) is not None:
        return backfill(frame)
    value = frame.value
    body = value.lstrip()
    if not body.startswith(b"{"):
        return text_frame(value)
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"infoway: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ParseError("infoway: JSON frame is not an object")
    code = obj.get("code")
    handler = PUSHES.get(code) if code.__class__ is int else None
    if handler is None:
        if is_control(obj, code):
            return []
        raise ParseError(f"infoway: unknown frame code {str(code)[:20]!r}")
    data = obj.get("data")
    items = data if isinstance(data, list) else [data]
    em = Emitter(frame)
    try:
        for item in items:
            if not isinstance(item, dict):
                raise ParseError("data is not an object")
            handler(em, item)
    except ParseError as exc:
        raise ParseError(f"infoway {code}: {exc}") from None
    return em.out


def text_frame(value: bytes) -> list[Normalized]:
    try:
        text = value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ParseError("infoway: frame is neither JSON nor UTF-8 text") from None
    if text.startswith(TEXT_CONTROL_PREFIXES):
        return []
    raise ParseError(f"infoway: unexpected text frame {text[:40]!r}")


def is_control(obj: dict[str, Any], code: Any) -> bool:
    if code.__class__ is not int:
        return False
    if code in ACKS:
        return True
    # Error frames: {traceId, code, msg} with a 4xx/5xx code (§2.5); never carry data.
    return "data" not in obj and ("traceId" in obj or 400 <= code < 600)


def field(item: dict[str, Any], key: str, code: int) -> Any:
    try:
        return item[key]
    except KeyError:
        raise ParseError(f"field {key!r} missing") from None


def symbol_of(item: dict[str, Any], code: int) -> tuple[str, str]:
    venue = field(item, "s", code)
    if not isinstance(venue, str):
        raise ParseError("symbol is not a string")
    return symbol_or_error(symbols.infoway, venue), venue


def trade(em: Emitter, item: dict[str, Any]) -> None:
    symbol, venue = symbol_of(item, TRADE)
    try:
        p, v, t = item["p"], item["v"], item["t"]
    except KeyError as exc:
        raise ParseError(f"field {exc.args[0]!r} missing") from None
    td = item.get("td", 0)
    em.tick(symbol, venue, epoch_ms(t, "t"), num(p, "p"), num(v, "v"), amount=opt_num(item.get("vw"), "vw"),
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


def book(em: Emitter, item: dict[str, Any]) -> None:
    symbol, venue = symbol_of(item, BOOK)
    em.depth(symbol, venue, epoch_ms(field(item, "t", BOOK), "t"), side_levels(item, "b"), side_levels(item, "a"))


def candle(em: Emitter, item: dict[str, Any]) -> None:
    symbol, venue = symbol_of(item, CANDLE)
    ty = field(item, "ty", CANDLE)
    if isinstance(ty, str) and ty.isdigit():
        ty = int(ty)
    interval = INTERVALS.get(ty) if ty.__class__ is int else None
    if interval is None:
        raise ParseError(f"unknown kline type {str(ty)[:12]!r}")
    em.kline(symbol, venue, epoch_ms(field(item, "t", CANDLE), "t"), interval,
             num(field(item, "o", CANDLE), "o"), num(field(item, "h", CANDLE), "h"),
             num(field(item, "l", CANDLE), "l"), num(field(item, "c", CANDLE), "c"),
             num(field(item, "v", CANDLE), "v"), opt_num(item.get("vw"), "vw"))


PUSHES = {TRADE: trade, BOOK: book, CANDLE: candle}


def backfill(frame: RawFrame) -> list[Normalized]:
    """A REST ``batch_kline`` answer the producer fetched after a gap (header ``backfill`` = the
    request path, which alone says the kline type): Kline records marked ``backfilled``."""
    try:
        request = proto.parse_batch_kline_path(extra_header(frame.meta, H_BACKFILL) or "")
        items = proto.rest_rows(frame.value)
    except ValueError as exc:
        raise ParseError(f"infoway backfill: {exc}") from None
    interval = INTERVALS.get(request.kline_type)
    if interval is None:
        raise ParseError(f"infoway backfill: unknown kline type {request.kline_type}")
    em = Emitter(frame)
    try:
        for venue, rows in items:
            symbol = symbol_or_error(symbols.infoway, venue)
            for row in rows:
                em.kline(symbol, venue, epoch_ms(field(row, "t", CANDLE), "t"), interval,
                         num(field(row, "o", CANDLE), "o"), num(field(row, "h", CANDLE), "h"),
                         num(field(row, "l", CANDLE), "l"), num(field(row, "c", CANDLE), "c"),
                         num(field(row, "v", CANDLE), "v"), opt_num(row.get("vw"), "vw"), backfilled=True)
    except ParseError as exc:
        raise ParseError(f"infoway backfill: {exc}") from None
    return em.out
