"""What every provider decoder takes and returns.

A decoder is a pure function ``decode(frame: RawFrame) -> list[Normalized]``: no I/O, no
clock, no global state, so it can be tested with captured frames and fuzzed. It raises
:class:`ParseError` (and nothing else) for a frame it cannot read; the caller sends that
frame to the dead-letter topic with ``str(error)`` as the one-line reason.

Control frames (acks, greetings, pongs, subscription replies) decode to ``[]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marketpipe.rawframe import RawMeta


class ParseError(ValueError):
    """The frame cannot be decoded; ``str(err)`` is a one-line reason fit for the DLQ."""


@dataclass(frozen=True)
class RawFrame:
    provider: str
    value: bytes
    meta: RawMeta
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass
class Normalized:
    schema: str          # Avro schema name: Tick | Depth | Quote | Kline
    topic: str           # logical output topic: md.tick | md.depth | md.quote | md.kline
    key: str             # canonical symbol (the Kafka key)
    record: dict[str, Any] = field(default_factory=dict)  # fields named as in schemas/<schema>.avsc

    @property
    def event_time(self) -> int:
        return int(self.record["event_time"])
