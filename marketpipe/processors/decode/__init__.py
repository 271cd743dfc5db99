"""Provider frame decoders: ``decode(frame, state) -> list[Normalized]``, raising only ParseError.

``decode`` dispatches on ``frame.provider`` to the decoder the provider registry names
(marketpipe/providers/); an unknown provider is a ParseError. Each provider module documents
the readings it chose where the protocol notes are unsure; in short:

* jvQuant: raw DEFLATE or plain ``lvN_`` text; text frames without rows are control (command
  replies or unknown text, counted). lv1 amount/volume order decided per symbol and kept in
  the caller's :class:`DecoderState` (``Quote.field_order``); lv2 records in either documented
  order; every ``|`` snapshot is kept; lv10 block order checked; a bad row or record
  dead-letters only itself while the good ones still come out (``ParseError.partial`` /
  ``ParseError.rejects``); plausibility bounds on field counts, name length, records per row
  and event time.
* Infoway: 10002/10005/10008 pushes, enveloped or bare as the documents print them; klines as
  ``respList`` or flat with ``ty`` (else the interval the connection subscribed, header
  ``kline_types``); acks, welcome, greeting, ``Subscribe fail`` and error frames are control;
  unknown codes and other text are errors.
* Jin10: Engine.IO/Socket.IO control packets are ``[]``; ``quote``/``price`` events become
  Quotes; unknown events are errors so they reach the DLQ for study.

Records are exactly the Avro records of ``schemas/<Normalized.schema>.avsc``; times are UTC
epoch ms; China wall-clock times are dated by the frame's receive time and the trading calendar
(marketpipe/market/tradingdays.py: never more than 1 h after the receive time). ``dead_letter``
(marketpipe/processors/deadletter.py)
builds the DLQ record whose ``reason`` equals what ``marketpipe decode`` prints;
``dead_letters`` builds one per rejected record.
"""

from __future__ import annotations

from functools import cache
from types import MappingProxyType
from typing import Callable, Mapping

from marketpipe import providers
from marketpipe.processors.decode import metrics
from marketpipe.processors.decode.base import (
    PARSER_VERSION,
    DecoderState,
    Normalized,
    ParseError,
    RawFrame,
    Rejected,
)

Decoder = Callable[[RawFrame, DecoderState], list[Normalized]]


@cache
def decoders() -> Mapping[str, Decoder]:
    """Every provider's decoder by provider name, imported on the first call (once per process).

    Not built while this package is imported: a provider's decode module (marketpipe/providers/<name>/decode.py)
    imports this package for the base types, so importing that module first would meet a half-built table."""
    return MappingProxyType({p.name: p.load_decoder() for p in providers.PROVIDERS})


PROVIDERS: tuple[str, ...] = providers.names()


def decode(frame: RawFrame, state: DecoderState | None = None) -> list[Normalized]:
    """Decode one frame. ``state`` is what the caller keeps across frames (one per worker);
    without it every frame is decoded as if it were the first one seen."""
    try:
        decoder = decoders()[frame.provider]
    except KeyError:
        raise ParseError(f"unknown provider {frame.provider!r}") from None
    return decoder(frame, DecoderState() if state is None else state)


__all__ = ["decode", "decoders", "Decoder", "PROVIDERS", "PARSER_VERSION", "ParseError",
           "RawFrame", "Rejected", "Normalized", "DecoderState", "metrics"]
