"""Jin10 price-wall frames (Engine.IO v3 + Socket.IO rev.4 text packets) -> Quote records.

One raw message is one Engine.IO packet (websocket transport) or a polling payload of
``<len>:<packet>`` packets (``len`` in characters); both are read. Engine.IO open/close/
ping/pong/upgrade/noop packets, Socket.IO connect/disconnect/ack/error packets, the
polling POST reply ``ok`` and an empty frame (the price feed's keep-alive) are control.

The push format is unknown (protocols.md §3.1 [U]). Read: ``42["quote", {...}]`` (also
event ``price``, and a list of such objects) with the aliases ``code|symbol|s``,
``last|price|p|curPrice``, ``prev_close|hstClose|preClose``, ``time|t`` (epoch ms or
seconds, or a China ``YYYY-MM-DD HH:MM:SS``; missing -> the receive time).

Other event names are expected: Jin10's real push events are undocumented. Such an event
is not garbage: it yields no record, is counted per event name
(``marketpipe_processor_jin10_unknown_events_total{event}``, one log line per new name) and
its frame stays on the raw topic, to be replayed once the event is understood. Only frames
that are not Engine.IO / Socket.IO at all are dead-lettered.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from marketpipe.processors import metrics
from marketpipe.processors.decode.base import DecoderState, Normalized, ParseError, RawFrame
from marketpipe.processors.decode.common import Emitter, cst_datetime_to_utc_ms, epoch_ms, num, opt_num, symbol_or_error
from marketpipe.providers.jin10 import protocol as proto
from marketpipe.providers.jin10 import symbols

log = logging.getLogger(__name__)

QUOTE_EVENTS = frozenset({"quote", "price"})
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


def decode(frame: RawFrame, state: DecoderState | None = None) -> list[Normalized]:
    """One frame's records; ``state`` is accepted like every decoder's, Jin10 learns nothing across frames."""
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
    try:
        return proto.packets_of(text)
    except proto.PayloadError as exc:
        raise ParseError(f"jin10: {exc}") from None


@lru_cache(maxsize=1024)  # bounded: one log line per new event name, not one per frame
def _first_sight(event: str) -> None:
    log.warning("jin10: push event %r is not understood yet: counted, its frames stay on the raw topic", event)


def unknown_event(event: str) -> None:
    name = event[:40]
    metrics.JIN10_UNKNOWN_EVENTS.labels(name).inc()
    _first_sight(name)


def read_packet(em: Emitter, packet: str) -> None:
    if not packet or packet == "ok":
        return
    kind = packet[0]
    if kind in proto.ENGINE_CONTROL:
        return
    if kind != proto.MESSAGE:
        raise ParseError(f"jin10: unknown packet {packet[:20]!r}")
    sio = packet[1:2]
    if sio in proto.SIO_CONTROL:
        return
    if sio != proto.SIO_EVENT:
        raise ParseError(f"jin10: unsupported socket.io packet {packet[:20]!r}")
    try:
        ev = proto.parse_event(packet)
    except proto.NotAnEvent as exc:
        raise ParseError(f"jin10: {exc}") from None
    if ev.name not in QUOTE_EVENTS:
        unknown_event(ev.name)
        return
    items: list[Any] = []
    for arg in ev.args:
        items.extend(arg if isinstance(arg, list) else [arg])
    if not items:
        raise ParseError(f"jin10: event {ev.name!r} without data")
    for item in items:
        if not isinstance(item, dict):
            raise ParseError(f"jin10: {ev.name!r} item is not an object")
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
    em.quote(symbol_or_error(symbols.canonical, code), code, event_time(pick(item, "time"), em.recv_ns),
             num(last, "last"), name=name if isinstance(name, str) else None,
             prev_close=opt_num(pick(item, "prev_close"), "prev_close"), open_=opt_num(pick(item, "open"), "open"),
             high=opt_num(pick(item, "high"), "high"), low=opt_num(pick(item, "low"), "low"))
