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


#: Bumped whenever a decoder change can alter the records derived from the same frame;
#: stored in every record (``parser_version``) and every dead letter.
PARSER_VERSION = "decode-1.0"

#: Longest reason kept: the dead letter carries the raw frame anyway.
MAX_REASON = 300


class ParseError(ValueError):
    """The frame cannot be decoded; ``str(err)`` is a one-line reason fit for the DLQ.

    ``partial`` holds the records decoded from the frame's good rows when only some rows
    failed (a jvQuant frame batches many codes): the caller publishes them AND dead-letters
    the frame, so one bad row neither loses its neighbours nor disappears itself.
    """

    def __init__(self, reason: str, partial: "list[Normalized] | None" = None) -> None:
        text = " ".join(str(reason).split())  # one line, whatever the frame contained
        if len(text) > MAX_REASON:
            text = text[: MAX_REASON - 3] + "..."
        super().__init__(text)
        self.partial: list[Normalized] = partial or []


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


def dead_letter(frame: RawFrame, error: BaseException, now_ms: int,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``DeadLetter`` Avro record for a frame that failed to decode.

    ``reason`` is ``str(error)``: the same line ``marketpipe decode`` prints for that frame.
    """
    return {
        "provider": frame.provider,
        "symbol": "",
        "event_time": now_ms,
        "receive_time_ns": frame.meta.recv_ns,
        "reason": str(error) if isinstance(error, ParseError) else " ".join(f"{error!r}".split())[:MAX_REASON],
        "error_type": type(error).__name__,
        "raw": frame.value,
        "source": {"topic": frame.topic, "partition": frame.partition, "offset": frame.offset, "index": -1},
        "headers": headers if headers is not None else {},
        "parser_version": PARSER_VERSION,
    }
