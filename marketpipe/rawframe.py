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
_STANDARD = frozenset({H_PROVIDER, H_CONNECTION, H_SEQ, H_SESSION, H_RECV_NS, H_OPCODE, H_FRAME})


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


def parse_meta(headers: Sequence[tuple[str, bytes | str | None]] | None) -> RawMeta:
    """Read the producer headers; missing ones get neutral values (frames replayed from elsewhere)."""
    h = header_dict(headers)

    def num(name: str) -> int:
        try:
            return int(h.get(name, "0") or 0)
        except ValueError:
            return 0

    return RawMeta(
        provider=h.get(H_PROVIDER, ""),
        connection=h.get(H_CONNECTION, ""),
        seq=num(H_SEQ),
        session=num(H_SESSION),
        recv_ns=num(H_RECV_NS),
        opcode=h.get(H_OPCODE, "binary"),
        frame=h.get(H_FRAME, "data"),
        extra=tuple((k, v) for k, v in h.items() if k not in _STANDARD),
    )


def extra_header(meta: RawMeta, name: str) -> str | None:
    for key, value in meta.extra:
        if key == name:
            return value
    return None
