"""What every provider decoder takes and returns.

A decoder is a function ``decode(frame: RawFrame, state: DecoderState) -> list[Normalized]``:
no I/O, no clock, no module state; what it learns across frames (the jvQuant lv1 field order
of a symbol) lives in the :class:`DecoderState` its caller owns, so it can be tested with
captured frames and fuzzed. It raises :class:`ParseError` (and nothing else) for a frame it
cannot read; the caller sends that frame to the dead-letter topic with ``str(error)`` as the
one-line reason.

When only some rows or records of a frame are bad, the ParseError carries the good records
(``partial``, published) and one :class:`Rejected` per bad row/record (``rejects``): each is
dead-lettered on its own (marketpipe/processors/deadletter.py), so a bad record neither loses its
neighbours nor disappears itself.

Control frames (acks, greetings, pongs, subscription replies) decode to ``[]`` and are counted
(``marketpipe.processors.decode.metrics.CONTROL``); records that are not market events (a jvQuant lv2
record with price 0) are skipped and counted (``SKIPPED``). So every frame is published,
dead-lettered or counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from marketpipe.rawframe import RawMeta, extra_header

#: Bumped whenever a decoder change can alter the records derived from the same frame;
#: stored in every record (``parser_version``) and every dead letter.
PARSER_VERSION = "decode-1.2"

#: Longest reason kept: the dead letter carries the raw frame anyway.
MAX_REASON = 300


class ParseError(ValueError):
    """The frame cannot be decoded; ``str(err)`` is a one-line reason fit for the DLQ.

    ``partial`` holds the records decoded from the frame's good rows when only some rows
    failed (a jvQuant frame batches many codes): the caller publishes them AND dead-letters
    the frame, so one bad row neither loses its neighbours nor disappears itself.
    """

    def __init__(self, reason: str, partial: "list[Normalized] | None" = None,
                 rejects: "list[Rejected] | None" = None) -> None:
        super().__init__(one_line(reason))
        self.partial: list[Normalized] = partial or []
        self.rejects: list[Rejected] = rejects or []


def one_line(reason: object) -> str:
    text = " ".join(str(reason).split())  # one line, whatever the frame contained
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


@dataclass(frozen=True)
class Rejected:
    """One bad row or record of a frame that also had good ones: dead-lettered on its own.

    ``raw`` is the bad row/record as a frame of its own (``lv2_<code>=<record>`` text), so the
    dead letter replays exactly that failure; ``position`` is its place among the frame's rows
    and records in text order (the dead letter's ``source.index``).
    """

    reason: str
    position: int
    symbol: str = ""
    raw: bytes | None = None


@dataclass
class DecoderState:
    """What decoders learn across frames; owned by the caller (one per worker / CLI run).

    ``lv1_order``: jvQuant symbol -> ``"volume,amount"`` | ``"amount,volume"`` once the numbers
    of that symbol decided it (protocols.md §0); never changed afterwards.
    ``a_share_calendar``: date A-share clock times by the SSE/SZSE trading days (the real
    markets), or, when false, by every day (a simulator trades on weekends and holidays too, and
    its clock times belong to the day they are sent on).
    """

    lv1_order: dict[str, str] = field(default_factory=dict)
    a_share_calendar: bool = True


@dataclass(frozen=True)
class RawFrame:
    provider: str
    value: bytes
    meta: RawMeta
    topic: str = ""
    partition: int = 0
    offset: int = 0
    #: Kafka headers given explicitly (``marketpipe decode --header``, tests); the processor passes none:
    #: the producer's headers are in ``meta``, parsed once, and decoders read them with :meth:`header`
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """An optional header (``kline_types``, ``backfill``): given explicitly, else from the producer's."""
        value = self.headers.get(name)
        return value if value is not None else extra_header(self.meta, name)


@dataclass
class Normalized:
    schema: str          # Avro schema name: Tick | Depth | Quote | Kline
    topic: str           # logical output topic: md.tick | md.depth | md.quote | md.kline
    key: str             # canonical symbol (the Kafka key)
    record: dict[str, Any] = field(default_factory=dict)  # fields named as in schemas/<schema>.avsc

    @property
    def event_time(self) -> int:
        return int(self.record["event_time"])
