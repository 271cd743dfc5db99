"""Fuzzing the codec and the order-command checks: on arbitrary input they fail only with their
documented error types (Codec.decode: CodecError; signing.verify: False; commands.place: ValueError).

Inputs are deterministic (see tests/support/fuzzing.py): arbitrary bytes, payloads that carry a real
schema header in front of arbitrary or mutated bodies, and arbitrary JSON commands.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.schemas.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, Codec, CodecError, kept_writers, schemas
from marketpipe.trader import signing
from tests.support.codec_samples import records
from tests.support.fuzzing import FUZZ

CODEC = Codec()
HEADERS = [SINGLE_OBJECT_MAGIC + s.fingerprint for s in schemas().values()] + \
          [SINGLE_OBJECT_MAGIC + fp for fp in kept_writers()] + [CONFLUENT_MAGIC + b"\x00\x00\x00\x01", b""]

COMMAND = {"command_id": "c-1", "account": "A1", "action": "PLACE", "provider": "jvquant", "symbol": "600519.SH",
           "side": "BUY", "price": Decimal("1572.120"), "volume": 100, "target_command_id": None,
           "broker_order_id": None, "event_time": 1786775236000, "expires_at": 1786775266000, "key_id": "default",
           "signature": ""}
KEY = "k3y"
GOOD = CODEC.encode("OrderCommand", {**COMMAND, "signature": signing.sign(COMMAND, KEY)})


def decode_or_codec_error(data: bytes, expect: str | None = None):
    try:
        return CODEC.decode(data, expect=expect)
    except CodecError as exc:
        assert "\n" not in str(exc)
        return None


@FUZZ
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=300), expect=st.sampled_from([None, "Tick",
                                                                                           "OrderCommand"]))
def test_codec_decode_on_a_real_header_and_arbitrary_body(header: bytes, body: bytes, expect) -> None:
    decode_or_codec_error(header + body, expect)


@FUZZ
@given(data=st.binary(max_size=300))
def test_codec_decode_on_arbitrary_bytes(data: bytes) -> None:
    decode_or_codec_error(data)


VALID = [CODEC.encode(name, record) for name, record in records()] + [GOOD]


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(10, len(data)))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 16))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(data=st.sampled_from(VALID).flatmap(mutated))
def test_codec_decode_on_mutated_records_of_every_schema(data: bytes) -> None:
    decode_or_codec_error(data)


@FUZZ
@given(value=mutated(GOOD), key=st.sampled_from([KEY, "", "other"]))
def test_order_command_parsing_and_verification_on_mutated_commands(value: bytes, key: str) -> None:
    """What the trade consumer does with a message: decode as OrderCommand, then verify."""
    decoded = decode_or_codec_error(value, "OrderCommand")
    if decoded is not None:
        ok = signing.verify(decoded.record, key)
        assert ok in (True, False)
        if ok:  # a tampered command never verifies: only the signed fields' exact values do
            assert key == KEY and signing.canonical(decoded.record) == signing.canonical(COMMAND)
