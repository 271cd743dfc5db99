"""Jin10 price wall: Engine.IO v3 framing, Socket.IO rev.4 events, and the request sequence of
the provider's socket.io script, shared by the producer, the decoder and the simulator. Pure.

The document's client (``_get_sid`` and ``watch_jinshi``), step by step:

1. ``GET /socket.io/?EIO=3&transport=polling&t=<yeast>`` with browser Origin/Referer -> the open
   packet ``0{"sid",..,"pingInterval","pingTimeout"}``;
2. ``GET`` with that ``sid`` (a real server answers the queued ``40`` connect here);
3. ``POST`` with ``sid``, ``Content-Type: text/plain;charset=UTF-8`` and the body
   ``<len>:42["setAdvSubscription",{"list":[..]}]`` (no spaces; answered ``ok``);
4. and 5. two more ``GET`` with ``sid``;
6. websocket ``/socket.io/?EIO=3&transport=websocket&sid=<sid>``: send ``2probe``, then ``5``;
7. 20 s after that (``Timer(20, on_emit)``) a thread sends ``2`` and then again every 2 s.

A real EIO3 server holds a polling GET open until it has something to send; it drops a session
after ``pingInterval + pingTimeout`` without a client ping and answers a pending GET with the
close packet ``1``. Push payloads are undocumented (protocols.md §3.1 [U]): event names are read
from the data, unknown ones are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

# Engine.IO v3 packet types
OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0", "1", "2", "3", "4", "5", "6"
PROBE, PROBE_ANSWER = "2probe", "3probe"
# Socket.IO rev.4 packet types (after the engine MESSAGE digit)
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_ERROR = "0", "1", "2", "3", "4"
SIO_CONTROL = frozenset({SIO_CONNECT, SIO_DISCONNECT, SIO_ACK, SIO_ERROR})
ENGINE_CONTROL = frozenset({OPEN, CLOSE, PING, PONG, UPGRADE, NOOP})
CONNECT_PACKET = MESSAGE + SIO_CONNECT  # "40"
EVENT_PREFIX = MESSAGE + SIO_EVENT  # "42"

SUBSCRIBE_EVENT = "setAdvSubscription"
PATH = "/socket.io/"
BROWSER_ORIGIN = "https://datacenter.jin10.com"
BROWSER_HEADERS = {"Origin": BROWSER_ORIGIN, "Referer": "https://datacenter.jin10.com/price_wall"}
POST_CONTENT_TYPE = "text/plain;charset=UTF-8"

#: the document's websocket heartbeat: first ``2`` 20 s after the upgrade, then every 2 s
FIRST_PING_AFTER_SECONDS = 20.0
PING_EVERY_SECONDS = 2.0
#: the sample's values for dc-quote-old (protocols.md §3.1)
PING_INTERVAL_MS = 25000
PING_TIMEOUT_MS = 60000

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


class PayloadError(ValueError):
    pass


# ---- Engine.IO ---------------------------------------------------------------------------------
def js_length(packet: str) -> int:
    """``packet.length`` in JavaScript: UTF-16 code units (a character outside the BMP counts 2)."""
    return len(packet) + sum(1 for c in packet if c > "\uffff") if not packet.isascii() else len(packet)


def encode_payload(packets: Iterable[str]) -> str:
    """Polling payload: ``<len>:<packet>`` per packet, ``len`` counted as an EIO v3 server (JavaScript)
    counts: UTF-16 code units, which equal characters unless a character lies outside the BMP."""
    return "".join(f"{js_length(p)}:{p}" for p in packets)


def decode_payload(text: str) -> list[str]:
    """The packets of a polling payload. EIO v3 servers are JavaScript and count lengths in UTF-16
    code units; protocols.md §3.1 says characters. Both readings are accepted: UTF-16 first, and
    code points when that reading does not fit the payload (they differ only for characters
    outside the BMP)."""
    try:
        return _decode_payload(text, utf16=True)
    except PayloadError:
        if text.isascii():
            raise
        return _decode_payload(text, utf16=False)


def _decode_payload(text: str, utf16: bool) -> list[str]:
    packets = []
    i = 0
    while i < len(text):
        colon = text.find(":", i)
        digits = text[i:colon] if colon > i else ""
        if not (digits.isdigit() and digits.isascii() and len(digits) <= 9):
            raise PayloadError(f"bad Engine.IO payload length at character {i}: {text[i:i + 20]!r}")
        n = int(digits)
        end = colon + 1 + n
        if utf16:
            end = _utf16_end(text, colon + 1, n)
        packet = text[colon + 1:end]
        if n == 0 or end < 0 or (len(packet) != n and not utf16):
            present = len(text) - colon - 1
            raise PayloadError(f"Engine.IO packet length {n} does not fit the payload ({present} present)")
        packets.append(packet)
        i = end
    return packets


def _utf16_end(text: str, start: int, units: int) -> int:
    """The index ``units`` UTF-16 code units after ``start``, or -1 when the text is shorter or the
    count ends inside a surrogate pair."""
    chunk = text[start:start + units]
    if len(chunk) == units and (chunk.isascii() or max(chunk) <= "\uffff"):
        return start + units  # nothing outside the BMP: code units are characters
    i, left = start, units
    while left > 0 and i < len(text):
        left -= 2 if text[i] > "\uffff" else 1
        i += 1
    return i if left == 0 else -1


def packets_of(message: str) -> list[str]:
    """The packets of one raw message: a websocket frame is one packet, a polling body a payload."""
    i = 0
    while i < len(message) and message[i].isdigit():
        i += 1
    if i == 0 or i >= len(message) or message[i] != ":":
        return [message]
    return decode_payload(message)


def yeast(ms: int) -> str:
    """The ``t`` cache-buster: time in ms written in base 64 (the document's ``n(t)``)."""
    out = ""
    while True:
        out = ALPHABET[ms % 64] + out
        ms //= 64
        if ms == 0:
            return out


@dataclass(frozen=True)
class OpenInfo:
    sid: str
    ping_interval_ms: int
    ping_timeout_ms: int
    upgrades: tuple[str, ...]


def open_packet(info: OpenInfo) -> str:
    return OPEN + json.dumps({"sid": info.sid, "upgrades": list(info.upgrades), "pingInterval": info.ping_interval_ms,
                              "pingTimeout": info.ping_timeout_ms}, separators=(",", ":"))


def parse_open(packet: str) -> OpenInfo | None:
    if not packet.startswith(OPEN + "{"):
        return None
    try:
        body = json.loads(packet[1:])
        return OpenInfo(str(body["sid"]), int(body.get("pingInterval", PING_INTERVAL_MS)),
                        int(body.get("pingTimeout", PING_TIMEOUT_MS)), tuple(body.get("upgrades") or ()))
    except (ValueError, KeyError, TypeError):
        return None


# ---- Socket.IO ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    name: str
    args: tuple[Any, ...]


class NotAnEvent(ValueError):
    pass


def is_data(packet: str) -> bool:
    """Events are data; every other Engine.IO / Socket.IO packet is control."""
    return packet.startswith(EVENT_PREFIX)


def event(name: str, *args: Any) -> str:
    return EVENT_PREFIX + json.dumps([name, *args], ensure_ascii=False, separators=(",", ":"))


def subscribe_packet(codes: Iterable[str]) -> str:
    """``42["setAdvSubscription",{"list":[..]}]`` exactly as the document posts it (no spaces)."""
    return event(SUBSCRIBE_EVENT, {"list": list(codes)})


def parse_event(packet: str) -> Event:
    """``42["name", args..]``, also with a namespace (``42/nsp,[..]``) or an ack id (``4212[..]``)."""
    if not is_data(packet):
        raise NotAnEvent(f"not an event packet: {packet[:20]!r}")
    body = packet[2:]
    if body.startswith("/"):
        body = body.partition(",")[2]
    body = body.lstrip("0123456789")
    try:
        args = json.loads(body)
    except ValueError:
        raise NotAnEvent(f"event payload is not JSON: {packet[:40]!r}") from None
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise NotAnEvent("event is not [name, ...]")
    return Event(args[0], tuple(args[1:]))


# ---- the document's request sequence -------------------------------------------------------------
HANDSHAKE, POLL, POST, WEBSOCKET = "GET", "GET sid", "POST sid", "WS sid"
#: the document's ``_get_sid`` then ``watch_jinshi``
SEQUENCE = (HANDSHAKE, POLL, POST, POLL, POLL, WEBSOCKET)


@dataclass
class SequenceCheck:
    """Follows one session's requests against :data:`SEQUENCE` (the simulator's conformance check).

    Ping POSTs (a payload of ``2`` packets only) are legal at any time after the handshake: a
    careful client pings while a long poll is held open.
    """

    step: int = 1  # the handshake has happened when a session exists

    def expected(self) -> str:
        return SEQUENCE[self.step] if self.step < len(SEQUENCE) else "nothing more over polling"

    def allow(self, request: str, packets: Iterable[str] = ()) -> bool:
        if request == POST and list(packets) and all(p == PING for p in packets):
            return True
        if self.step < len(SEQUENCE) and SEQUENCE[self.step] == request:
            if request == POST and not any(p.startswith(EVENT_PREFIX) and SUBSCRIBE_EVENT in p for p in packets):
                return False
            self.step += 1
            return True
        return False
