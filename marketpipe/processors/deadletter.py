"""Dead letters: the ``DeadLetter`` records (marketpipe/schemas/DeadLetter.avsc) of what could not
be used, built in one place for every part of the processor (the normalize path, ``marketpipe
decode``, the bar agent) and written by :meth:`marketpipe.processors.output.Output.dead_letter`.

A dead letter carries the frame (or the bad row or record of it), the one-line reason, the
exception's class and where the frame is on its raw topic (``source``), so ``marketpipe dlq
redrive`` can decode it again after a fix.
"""

from __future__ import annotations

import hashlib
from typing import Any

from marketpipe.processors.decode.base import MAX_REASON, PARSER_VERSION, ParseError, RawFrame, one_line


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


def dead_letters(frame: RawFrame, error: BaseException, now_ms: int,
                 headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The DeadLetter records for a failed decode: one per rejected row/record when the error
    names them (``ParseError.rejects``), else one for the whole frame."""
    rejects = error.rejects if isinstance(error, ParseError) else []
    if not rejects:
        return [dead_letter(frame, error, now_ms, headers)]
    out = []
    for rej in rejects:
        dl = dead_letter(frame, error, now_ms, headers)
        dl["reason"] = one_line(rej.reason)
        dl["symbol"] = rej.symbol
        if rej.raw is not None:
            dl["raw"] = rej.raw
        dl["source"] = {**dl["source"], "index": rej.position}
        out.append(dl)
    return out


def omit_raw(letter: dict[str, Any]) -> dict[str, Any]:
    """The digest form of a dead letter: SHA-256 and length instead of the frame's bytes (``source``
    still points at the frame on its raw topic), headers and reason cut to a bounded size."""
    raw = letter["raw"]
    headers = {str(k)[:64]: str(v)[:256] for k, v in list(letter.get("headers", {}).items())[:32]}
    return {**letter, "raw": b"", "raw_length": len(raw), "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "headers": headers, "reason": letter["reason"][:MAX_REASON]}
