"""The generated Avro writers write exactly fastavro's bytes, and refuse what fastavro refuses."""

from __future__ import annotations

import io
import math

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketpipe.processors.decode import decode
from marketpipe.schemas.avro_writer import compile_writer
from marketpipe.schemas.codec import Codec, CodecError, schema
from tests.processors.decode.test_avro import frames


def reference(name: str, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema(name).parsed, record)
    return buf.getvalue()


def writer(name: str):
    w = compile_writer(schema(name).parsed)
    assert w is not None, f"{name} should get a generated writer"
    return w


@pytest.mark.parametrize("raw", frames(), ids=lambda f: f.provider)
def test_decoded_records_encode_byte_for_byte_like_fastavro(raw) -> None:
    for n in decode(raw):
        assert writer(n.schema)(n.record) == reference(n.schema, n.record)


longs = st.integers(-(1 << 63), (1 << 63) - 1)
doubles = st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf, -0.0])
texts = st.text(max_size=30)
levels = st.lists(st.fixed_dictionaries({"price": doubles, "size": doubles}), max_size=12)
source = st.fixed_dictionaries({"topic": texts, "partition": st.integers(-2**31, 2**31 - 1), "offset": longs,
                                "index": st.integers(-2**31, 2**31 - 1)})
common = {"provider": texts, "symbol": texts, "venue_symbol": texts, "event_time": longs, "receive_time_ns": longs}
opt = st.none() | doubles
quote = st.fixed_dictionaries({**common, "name": st.none() | texts, "last": doubles, "prev_close": opt,
                               "change_pct": opt, "open": opt, "high": opt, "low": opt, "cum_volume": opt,
                               "cum_amount": opt, "interval_volume": opt, "bids": levels, "asks": levels,
                               "field_order": st.none() | texts, "parser_version": texts, "source": source})
tick = st.fixed_dictionaries({**common, "price": doubles, "size": doubles, "amount": opt,
                              "side": st.sampled_from(["BUY", "SELL", "UNKNOWN"]), "trade_id": st.none() | texts,
                              "session": st.none() | texts, "parser_version": texts, "source": source})
dead = st.fixed_dictionaries({"provider": texts, "symbol": texts, "event_time": longs, "receive_time_ns": longs,
                              "reason": texts, "error_type": texts, "raw": st.binary(max_size=40), "source": source,
                              "headers": st.dictionaries(texts, texts, max_size=5), "parser_version": texts})


@settings(max_examples=300, deadline=None)
@given(st.one_of(quote.map(lambda r: ("Quote", r)), tick.map(lambda r: ("Tick", r)),
                 dead.map(lambda r: ("DeadLetter", r))))
def test_any_record_encodes_like_fastavro(item) -> None:
    name, record = item
    assert writer(name)(record) == reference(name, record)


@pytest.mark.parametrize("change", [{"price": None}, {"price": "1.5"}, {"event_time": "x"}, {"side": "SIDEWAYS"},
                                    {"symbol": None}, {"source": {"topic": "t"}}, {"event_time": 1 << 64}])
def test_a_record_that_does_not_fit_is_refused_by_the_codec(change) -> None:
    good = {"provider": "p", "symbol": "S", "venue_symbol": "s", "event_time": 1, "receive_time_ns": 2, "price": 1.0,
            "size": 2.0, "amount": None, "side": "BUY", "trade_id": None, "session": None, "parser_version": "v",
            "source": {"topic": "t", "partition": 0, "offset": 1, "index": 0}}
    enc = Codec().encoder("Tick")
    enc(good)
    with pytest.raises(CodecError):
        enc({**good, **change})
    if change != {"price": "1.5"}:  # fastavro parses a numeric string for a double; we refuse it
        with pytest.raises((ValueError, TypeError, KeyError, AttributeError, OverflowError)):
            reference("Tick", {**good, **change})  # fastavro refuses it too


def test_schemas_with_other_shapes_keep_fastavro() -> None:
    assert compile_writer(schema("OrderCommand").parsed) is None  # decimal prices
