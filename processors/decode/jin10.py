"""Jin10 price-wall frames (Engine.IO v3 + Socket.IO rev.4 text packets) -> Quote records.

One raw message is one Engine.IO packet (websocket transport) or a polling payload of
``<len>:<packet>`` packets (``len`` in characters); both are read. Engine.IO open/close/
ping/pong/upgrade/noop packets, Socket.IO connect/disconnect/ack/error packets, the
polling POST reply ``ok`` and an empty frame (the price feed's keep-alive) are control.

The push format is unknown (protocols.md §3.1 [U]). Read: ``42["quote", {...}]`` (also
event ``price``, and a list of such objects) with the aliases ``code|symbol|s``,
``last|price|p|curPrice``, ``prev_close|hstClose|preClose``, ``time|t`` (epoch ms or
seconds, or a China ``YYYY-MM-DD HH:MM:SS``; missing -> the receive time).

Unknown event names raise ParseError on purpose: they land in the dead-letter topic
with the raw frame, where they can be studied and replayed once understood, instead
of being dropped silently.
"""

from __future__ import annotations

from typing import Any

import orjson

from processors import symbols
from processors.decode.base import Normalized, ParseError, RawFrame
from processors.decode.common import Emitter, cst_datetime_to_utc_ms, epoch_ms, num, opt_num, symbol_or_error

QUOTE_EVENTS = frozenset({"quote", "price"})
CONTROL_PACKETS = frozenset({"0", "1", "2", "3", "5", "6"})  # engine.io types other than message
CONTROL_MESSAGES = frozenset({"0", "1", "3", "4"})  # socket.io connect, disconnect, ack, error
ALIASES = {
    "code": ("code", "symbol", "s"),
    "last": ("last", "price", "p", "curPrice"),
    "time": ("time", "t"),
    "name": ("name",),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "prev_close": ("prev_close", "hstClose", "preClose", "pc"),
}


def decode(frame: RawFrame) -> list[Normalized]:
    try:
        text = frame.value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("jin10: frame is not UTF-8 text") from None
    em = Emitter(frame)
    try:
        for packet in packets(text):
            read_packet(em, packet)
    except ParseError as exc:
        if str(exc).startswith("jin10"):
            raise
        raise ParseError(f"jin10: {exc}") from None
    return em.out


def packets(text: str) -> list[str]:
    """The Engine.IO packets of one message: itself, or the packets of a polling payload."""
    i = 0
    n = len(text)
    while i < n and text[i].isdigit():
        i += 1
    if i == 0 or i >= n or text[i] != ":":
        return [text]
    out = []
    pos = 0
    while pos < n:
        colon = text.find(":", pos)
        digits = text[pos:colon] if colon > pos else ""
        if not (digits.isdigit() and digits.isascii() and len(digits) <= 9):
            raise ParseError(f"jin10: bad polling payload length at char {pos}")
        size = int(digits)
        start = colon + 1
        if size == 0 or start + size > n:
            raise ParseError(f"jin10: polling packet length {size} does not fit the payload")
        out.append(text[start:start + size])
        pos = start + size
    return out


def read_packet(em: Emitter, packet: str) -> None:
    if not packet or packet == "ok":
        return
    kind = packet[0]
    if kind in CONTROL_PACKETS:
        return
    if kind != "4":
        raise ParseError(f"jin10: unknown packet {packet[:20]!r}")
    sio = packet[1:2]
    if sio in CONTROL_MESSAGES:
        return
    if sio != "2":
        raise ParseError(f"jin10: unsupported socket.io packet {packet[:20]!r}")
    body = packet[2:]
    if body.startswith("/"):  # namespace: 42/nsp,[...]
        body = body.partition(",")[2]
    body = body.lstrip("0123456789")  # ack id
    try:
        args = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ParseError(f"jin10: event payload is not JSON: {packet[:40]!r}") from None
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise ParseError("jin10: event is not [name, ...]")
    event = args[0]
    if event not in QUOTE_EVENTS:
        raise ParseError(f"jin10: unknown event {event[:40]!r}")
    items: list[Any] = []
    for arg in args[1:]:
        items.extend(arg if isinstance(arg, list) else [arg])
    if not items:
        raise ParseError(f"jin10: event {event!r} without data")
    for item in items:
        if not isinstance(item, dict):
            raise ParseError(f"jin10: {event!r} item is not an object")
        quote(em, item)


def pick(item: dict[str, Any], name: str) -> Any:
    for key in ALIASES[name]:
        value = item.get(key)
        if value is not None and value != "":
            return value
    return None


def event_time(value: Any, recv_ns: int) -> int:
    if value is None:
        return recv_ns // 1_000_000
    if isinstance(value, str) and "-" in value:
        return cst_datetime_to_utc_ms(value)
    return epoch_ms(value, "time")


def quote(em: Emitter, item: dict[str, Any]) -> None:
    code = pick(item, "code")
    if not isinstance(code, str):
        raise ParseError("jin10: quote without a code")
    last = pick(item, "last")
    if last is None:
        raise ParseError(f"jin10: quote {code[:20]!r} without a price")
    name = pick(item, "name")
    em.quote(symbol_or_error(symbols.jin10, code), code, event_time(pick(item, "time"), em.recv_ns),
             num(last, "last"), name=name if isinstance(name, str) else None,
             prev_close=opt_num(pick(item, "prev_close"), "prev_close"), open_=opt_num(pick(item, "open"), "open"),
             high=opt_num(pick(item, "high"), "high"), low=opt_num(pick(item, "low"), "low"))
