"""Raw provider frames → Avro ``md.*`` records, or dead letters: the normalize step as an object.

The live agents, ``marketpipe replay`` and ``marketpipe dlq redrive`` all go through
:meth:`Normalizer.process`, so a frame becomes the same records whichever of them reads it.

Poison records: a frame that cannot be decoded goes to ``md.dlq`` with the reason, its raw
topic/partition/offset and its bytes; the good records of a partly bad frame are still
published. Any other exception on one frame (a decoder bug, a record that does not fit its
schema, a record Kafka refuses for what it is) is dead-lettered too, with the exception's class.
Only Kafka refusing the dead letter itself escapes (the caller stops without committing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from marketpipe import providers
from marketpipe.processors import metrics
from marketpipe.processors.arbitrate import Arbiter
from marketpipe.processors.deadletter import dead_letters
from marketpipe.processors.decode import DecoderState, Normalized, ParseError, RawFrame, decode, decoders
from marketpipe.processors.output import Output, refused
from marketpipe.processors.status import StatusHook
from marketpipe.providers.identity import Identity
from marketpipe.rawframe import header_dict, line_of, parse_meta

if TYPE_CHECKING:
    from marketpipe.settings import Settings

log = logging.getLogger("processors")


def decoder_state(settings: Settings) -> DecoderState:
    """A fresh :class:`DecoderState` that dates clock times by the configured trading calendar; the
    live agents, replay and redrive all start from it, so they date a frame alike."""
    return DecoderState(a_share_calendar=settings.processor.trading_calendar == "exchange")


class RawMessage(Protocol):
    """What a raw Kafka record offers: Faust's messages have these attributes."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Any: ...


@dataclass(frozen=True)
class RawRecord:
    """A raw record read with confluent-kafka (replay, redrive), shaped as Faust's messages are."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @classmethod
    def of(cls, msg: Any) -> "RawRecord":
        return cls(msg.topic(), msg.partition(), msg.offset(), msg.value(), msg.headers() or ())


def headers_of(message: RawMessage) -> list[tuple[str, bytes]]:
    return list(message.headers.items()) if isinstance(message.headers, dict) else list(message.headers or [])


@dataclass(frozen=True)
class Processed:
    records: int  # records written
    rejects: int  # dead letters: the frame, or some of its records, could not be used


@dataclass
class Normalizer:
    """Decodes frames and writes their records through ``out``; owns what decoding learns over time.

    ``symbols`` keeps only the records of those canonical symbols (replay of a few symbols);
    ``write_dead_letters=False`` only counts rejects (redrive must not dead-letter its input again).
    """

    out: Output
    decoder_state: DecoderState = field(default_factory=DecoderState)  # e.g. jvQuant lv1 field order
    symbols: frozenset[str] | None = None
    write_dead_letters: bool = True
    status: StatusHook | None = None  # feed health to md.status (the live processor only)
    #: A/B capture: of a record both lines delivered, the first copy is published (frames with a line header)
    arbiter: Arbiter | None = None
    identities: dict[str, Identity] = field(default_factory=dict)  # provider -> its content identity, loaded once

    def __post_init__(self) -> None:
        decoders()  # import every provider's decoder now: the first frame should not pay for the imports

    def process(self, provider: str, message: RawMessage) -> Processed:
        """Decode one raw frame and produce its records and dead letters."""
        from confluent_kafka import KafkaException

        headers = headers_of(message)  # parsed once here; as a dict only for a dead letter
        frame = RawFrame(provider, bytes(message.value or b""), parse_meta(headers), message.topic,
                         message.partition, message.offset)
        error: BaseException | None = None
        try:
            records = decode(frame, self.decoder_state)
        except ParseError as exc:
            records, error = exc.partial, exc
        except Exception as exc:  # a decoder bug must not stop the stream: dead-letter it
            log.exception("decoder crashed on %s[%d]@%d", message.topic, message.partition, message.offset)
            records, error = [], exc
        line = line_of(frame.meta)
        if line and self.arbiter is not None:
            records = self._arbitrate(provider, frame, line, records)
        if self.symbols is not None:
            records = [r for r in records if r.key in self.symbols]
        out = self.out
        try:
            # encode the whole frame first, so a record that does not fit its schema dead-letters the
            # frame instead of leaving half of it published
            ready = []
            for rec in records:
                ready.append(out.encode(rec.topic, rec.schema, rec.key, rec.record, rec.event_time))
        except Exception as exc:
            log.exception("records of %s[%d]@%d do not fit their schema", message.topic, message.partition,
                          message.offset)
            ready, error = [], exc
        produced = 0
        try:
            for item in ready:
                out.produce(*item)
                produced += 1
        except KafkaException as exc:
            if not refused(exc):
                raise
            log.error("a record of %s[%d]@%d refused by Kafka: %s", message.topic, message.partition,
                      message.offset, exc)
            error = exc
        if self.status is not None:
            self.status.frame(out, provider, frame, records)
        if error is None:
            return Processed(produced, 0)
        letters = dead_letters(frame, error, int(time.time() * 1000), header_dict(headers))
        if self.write_dead_letters:  # one dead letter per rejected record, or one for the frame
            for dl in letters:
                out.dead_letter(dl, provider)
        return Processed(produced, len(letters))

    def _arbitrate(self, provider: str, frame: RawFrame, line: str, records: list[Normalized]) -> list[Normalized]:
        """The records of a line's frame that the other line has not delivered first."""
        arbiter, identity = self.arbiter, self.identities.get(provider)
        if identity is None:
            identity = self.identities[provider] = providers.get(provider).load_identity()
        assert arbiter is not None
        key, at_ms = frame.meta.connection, frame.meta.recv_ns // 1_000_000
        kept = [r for r in records if arbiter.first(key, identity(r.schema, r.key, r.record), line, at_ms)]
        if len(kept) < len(records):
            metrics.AB_DROPPED.labels(provider).inc(len(records) - len(kept))
        return kept
