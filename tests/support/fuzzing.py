"""Shared by the fuzz tests: deterministic Hypothesis settings, arbitrary JSON, and one frame
decoded the way the processor decodes it.

Fuzz tests run in every ``make test``; ``derandomize`` makes each run try the same inputs, so
CI is stable and a failure reproduces. ``FUZZ`` bounds each test to a few seconds.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from marketpipe.processors.decode import Normalized, ParseError, RawFrame, decode
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["", "0", "-1", "1e999", "NaN", "Infinity", "1.5", "abc", "10:15:03",
                                                    "BTCUSDT", "600519", "09:30:00.120", "1786775227483"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=16)


@st.composite
def reshaped(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with some of its values swapped for arbitrary JSON (keys and shape kept,
    so the decoder gets past its first checks and meets odd values deep inside)."""
    # leaves mostly become scalars, now and then a whole structure: arbitrary JSON everywhere
    # would be slow to generate and rarely get past the first check
    if isinstance(document, dict):
        return {k: (draw(JSON) if draw(st.integers(0, 7)) == 0 else draw(reshaped(v))) for k, v in document.items()}
    if isinstance(document, list):
        return [draw(JSON) if draw(st.integers(0, 7)) == 0 else draw(reshaped(v)) for v in document]
    return draw(SCALARS) if draw(st.booleans()) else document


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode()


CODEC = Codec()


def decoded(provider: str, value: bytes, opcode: str, recv_ns: int) -> list[Normalized]:
    """The records of one frame (a ParseError's partial ones too); the error must be one line and
    every record produced must still be a valid record."""
    frame = RawFrame(provider, value, RawMeta(provider, "c", 1, 1, recv_ns, opcode, "data"), "raw", 0, 0)
    try:
        out = decode(frame)
    except ParseError as exc:
        assert "\n" not in str(exc)
        out = exc.partial
    for n in out:
        CODEC.encode(n.schema, n.record)
    return out


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE, as jvQuant sends its frames."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()
