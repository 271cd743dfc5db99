"""The raw-topic contract between producers and processors.

One Kafka message per websocket frame (or Engine.IO packet), value = the frame's bytes
exactly as received (binary stays binary, text is its UTF-8 bytes), key = connection id
so that one connection's frames stay in order in one partition. Headers:

=============  ==========================================================
``provider``   ``jvquant`` | ``infoway`` | ``jin10``
``connection`` connection id (also the key): ``<provider>-<host>-<pid>-<n>``
``seq``        per-connection sequence number, decimal, from 1, never reused
``session``    per-connection session counter (increments on every reconnect)
``recv_ns``    receive time, UTC epoch nanoseconds, decimal
``opcode``     ``binary`` | ``text`` (websocket opcode of the frame)
``frame``      ``data`` (market data) | ``control`` (acks, greetings, errors, pings)
=============  ==========================================================

Feeds may add headers that are constant per connection (``RawMeta.extra``), e.g. Infoway's
``kline_types``: the comma-separated kline type numbers the connection subscribed (``1``, ``1,2``).
A frame may carry headers of its own: ``backfill`` marks a frame the producer fetched after a
gap instead of receiving it (Infoway: the REST ``batch_kline`` answer; value = the request path).
``line`` (``A`` | ``B``) is sent only by a producer started with ``--line`` (A/B capture): both lines of one
logical connection share its connection id, so key and partition, and the processor arbitrates by content.
:func:`parse_meta` keeps every such header in ``RawMeta.extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

H_PROVIDER = "provider"
H_CONNECTION = "connection"
H_SEQ = "seq"
H_SESSION = "session"
H_RECV_NS = "recv_ns"
H_OPCODE = "opcode"
H_FRAME = "frame"
H_KLINE_TYPES = "kline_types"
H_BACKFILL = "backfill"
H_LINE = "line"


@dataclass(frozen=True)
class RawMeta:
    provider: str
    connection: str
    seq: int
    session: int
    recv_ns: int
    opcode: str  # "binary" | "text"
    frame: str  # "data" | "control"
    extra: tuple[tuple[str, str], ...] = ()  # feed-specific, constant per connection

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (H_PROVIDER, self.provider.encode()),
            (H_CONNECTION, self.connection.encode()),
            (H_SEQ, str(self.seq).encode()),
            (H_SESSION, str(self.session).encode()),
            (H_RECV_NS, str(self.recv_ns).encode()),
            (H_OPCODE, self.opcode.encode()),
            (H_FRAME, self.frame.encode()),
            *((name, value.encode()) for name, value in self.extra),
        ]


def header_dict(headers: Iterable[tuple[str, bytes | str | None]] | None) -> dict[str, str]:
    """Kafka headers (list of pairs, as both confluent-kafka and aiokafka give them) -> str dict."""
    out: dict[str, str] = {}
    for key, value in headers or ():
        if value is None:
            out[key] = ""
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out[key] = bytes(value).decode("utf-8", "replace")
        else:
            out[key] = str(value)
    return out


_META_INDEX = {H_PROVIDER: 0, H_CONNECTION: 1, H_SEQ: 2, H_SESSION: 3, H_RECV_NS: 4, H_OPCODE: 5, H_FRAME: 6}


def _num(text: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def parse_meta(headers: Sequence[tuple[str, bytes | str | None]] | None) -> RawMeta:
    """Read the producer headers; missing ones get neutral values (frames replayed from elsewhere).

    Called once per raw frame on the processor's hot path, hence one pass and no intermediate dict
    (the same result as reading :func:`header_dict`: the last of repeated headers wins).
    """
    v = ["", "", "0", "0", "0", "binary", "data"]
    extra: dict[str, str] | None = None  # feed-specific headers (kline_types, backfill), rare
    index = _META_INDEX.get
    for key, value in headers or ():
        i = index(key)
        if i is None:
            if extra is None:
                extra = {}
            extra[key] = header_dict(((key, value),))[key]
            continue
        if value is None:
            value = ""
        elif value.__class__ is bytes:
            value = value.decode("utf-8", "replace")
        elif isinstance(value, (bytearray, memoryview)):
            value = bytes(value).decode("utf-8", "replace")
        elif value.__class__ is not str:
            value = str(value)
        v[i] = value
    return RawMeta(v[0], v[1], _num(v[2]), _num(v[3]), _num(v[4]), v[5], v[6], tuple(extra.items()) if extra else ())



def line_of(meta: RawMeta) -> str:
    """The A/B line a frame came by (``--line``), ``""`` from a producer without one."""
    return (extra_header(meta, H_LINE) or "") if meta.extra else ""


def extra_header(meta: RawMeta, name: str) -> str | None:
    for key, value in meta.extra:
        if key == name:
            return value
    return None


def guess_opcode(value: bytes) -> str:
    """The websocket opcode of a captured frame whose headers are lost: ``binary`` when it
    inflates as raw DEFLATE (jvQuant compresses its frames so), else ``text``."""
    import zlib

    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflater.decompress(value, 1 << 16)
        return "binary" if inflater.eof else "text"
    except zlib.error:
        return "text"
