"""parse_meta reads the producer headers exactly as reading them through header_dict does."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.rawframe import RawMeta, header_dict, parse_meta

NAMES = ["provider", "connection", "seq", "session", "recv_ns", "opcode", "frame", "other"]


def reference(headers) -> RawMeta:
    """The reading parse_meta had before its one-pass rewrite."""
    h = header_dict(headers)

    def num(name: str) -> int:
        try:
            return int(h.get(name, "0") or 0)
        except ValueError:
            return 0

    extra = tuple((k, v) for k, v in h.items() if k not in NAMES[:7])  # feed-specific headers, in order
    return RawMeta(h.get("provider", ""), h.get("connection", ""), num("seq"), num("session"), num("recv_ns"),
                   h.get("opcode", "binary"), h.get("frame", "data"), extra)


values = st.none() | st.binary(max_size=8) | st.text(max_size=8) | st.integers(-10, 10**19).map(str).map(str.encode)


@given(st.lists(st.tuples(st.sampled_from(NAMES), values), max_size=12))
def test_any_headers_read_as_header_dict_reads_them(headers) -> None:
    assert parse_meta(headers) == reference(headers)


def test_producer_headers_round_trip_and_none_is_neutral() -> None:
    meta = RawMeta("jvquant", "jv-1", 42, 3, time.time_ns(), "text", "control")
    assert parse_meta(meta.headers()) == meta
    assert parse_meta(None) == RawMeta("", "", 0, 0, 0, "binary", "data")
    assert parse_meta([("recv_ns", bytearray(b"17")), ("seq", memoryview(b"x"))]).recv_ns == 17
