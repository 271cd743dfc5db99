"""Hypothesis: on any bytes, and on mutations of valid frames, decoders raise only ParseError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketpipe.processors.decode import PROVIDERS, RawFrame, decode
from marketpipe.rawframe import RawMeta
from tests.support.fuzzing import decoded, deflate
from tests.support.paths import FRAMES


def polling(packet: bytes) -> bytes:
    return b"2:40" + str(len(packet.decode())).encode() + b":" + packet

VALID = {
    "jvquant": [(FRAMES / "jvquant_lv1_lv2.txt").read_bytes(),
                b"lv10_600519=10:00:00,x,10.5,10.4,1,1,"
                + b",".join([b"10.5"] * 10 + [b"100"] * 10 + [b"10.6"] * 10 + [b"1"] * 10),
                b"lv1_aapl=aapl,190.5,0.8,1905000000,10000000,21:30:05,21:30:05\nlv2_aapl=21:30:06,RTH,777,190.51,10",
                b"lv2_00700=10:00:01.5,88,380.2,100,380.4,300"],
    "infoway": [(FRAMES / n).read_bytes() for n in ("infoway_trade.json", "infoway_depth.json", "infoway_kline.json")],
    "jin10": [(FRAMES / "jin10_quote.txt").read_bytes(), polling(b'42["quote",{"code":"XAUUSD","last":1,"time":1786775227}]')],
}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(provider=st.sampled_from(PROVIDERS), value=st.binary(max_size=300),
       opcode=st.sampled_from(["binary", "text"]), recv_ns=st.integers(0, 4_000_000_000_000_000_000))
def test_arbitrary_bytes(provider: str, value: bytes, opcode: str, recv_ns: int) -> None:
    decoded(provider, value, opcode, recv_ns)
    decoded(provider, deflate(value), "binary", recv_ns)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    provider = draw(st.sampled_from(PROVIDERS))
    data = bytearray(draw(st.sampled_from(VALID[provider])))
    alphabet = st.sampled_from([b",", b"|", b"\n", b"=", b":", b".", b"-", b"0", b"9", b"", b"x", b'"', b"{", b"}",
                                b"[", b"]", b"1e999", b"nan", b"null", b"\xff", b"_", b"lv1_", b"\xe9\x87\x91"])
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(alphabet)
        if op == "insert":
            data[pos:pos] = piece
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos + len(piece)] = piece
    return provider, bytes(data)


@SETTINGS
@given(case=mutated(), recv_ns=st.integers(0, 4_000_000_000_000_000_000))
def test_mutated_valid_frames(case: tuple[str, bytes], recv_ns: int) -> None:
    provider, value = case
    decoded(provider, value, "text", recv_ns)
    if provider == "jvquant":
        decoded(provider, deflate(value), "binary", recv_ns)


@given(st.sampled_from(PROVIDERS))
def test_valid_samples_decode_cleanly(provider: str) -> None:
    for value in VALID[provider]:
        opcode = "binary" if provider == "jvquant" else "text"
        assert decode(RawFrame(provider, value, RawMeta(provider, "c", 1, 1, 1786775236000000000, opcode, "data")))
