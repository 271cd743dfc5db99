"""Provider frame decoders: ``decode(frame) -> list[Normalized]``, pure, raising only ParseError.

``decode`` dispatches on ``frame.provider`` (``jvquant`` | ``infoway`` | ``jin10``; anything
else is a ParseError). Each provider module documents the readings it chose where the
protocol notes are unsure; in short:

* jvQuant: raw DEFLATE or plain ``lvN_`` text; text frames without rows are command replies
  (``[]``). lv1 amount/volume order decided per row (``Quote.field_order``); every ``|``
  snapshot is kept; lv10 block order checked; a bad row dead-letters the frame while the
  good rows still come out (``ParseError.partial``).
* Infoway: 10002/10005/10008 pushes; acks, welcome, greeting, ``Subscribe fail`` and error
  frames are control; unknown codes and other text are errors.
* Jin10: Engine.IO/Socket.IO control packets are ``[]``; ``quote``/``price`` events become
  Quotes; unknown events are errors so they reach the DLQ for study.

Records are exactly the Avro records of ``schemas/<Normalized.schema>.avsc``; times are UTC
epoch ms; China wall-clock times are dated by the frame's receive time. ``dead_letter``
builds the DLQ record whose ``reason`` equals what ``marketpipe decode`` prints.
"""

from __future__ import annotations

from typing import Callable

from processors.decode import infoway, jin10, jvquant
from processors.decode.base import PARSER_VERSION, Normalized, ParseError, RawFrame, dead_letter

DECODERS: dict[str, Callable[[RawFrame], list[Normalized]]] = {
    "jvquant": jvquant.decode,
    "infoway": infoway.decode,
    "jin10": jin10.decode,
}

PROVIDERS: tuple[str, ...] = tuple(DECODERS)


def decode(frame: RawFrame) -> list[Normalized]:
    try:
        decoder = DECODERS[frame.provider]
    except KeyError:
        raise ParseError(f"unknown provider {frame.provider!r}") from None
    return decoder(frame)


__all__ = ["decode", "dead_letter", "DECODERS", "PROVIDERS", "PARSER_VERSION", "ParseError", "RawFrame", "Normalized"]
