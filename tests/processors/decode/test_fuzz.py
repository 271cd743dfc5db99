"""Fuzzing every provider decoder: on arbitrary input a decoder returns records that fit their
schemas or raises ParseError (a one-line reason). Anything else would be a decoder bug that the
processor has to dead-letter as a crash.

Inputs are deterministic (see tests/support/fuzzing.py): arbitrary bytes, arbitrary JSON, and the
documents' own frame shapes with their values replaced by arbitrary JSON or tokens.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.processors.decode import PROVIDERS
from marketpipe.processors.decode.common import Emitter  # noqa: F401 - the decoders' shared helpers are exercised through them
from tests.support.fuzzing import FUZZ, JSON, decoded, deflate, dumps, reshaped
from tests.support.paths import FRAMES

RECV_NS = 1786775236000000000


def check(provider: str, value: bytes, opcode: str = "text", recv_ns: int = RECV_NS) -> None:
    decoded(provider, value, opcode, recv_ns)


@FUZZ
@given(provider=st.sampled_from(PROVIDERS), value=st.binary(max_size=400), opcode=st.sampled_from(["binary", "text"]),
       recv_ns=st.integers(-2**63, 2**63 - 1))
def test_every_decoder_on_arbitrary_bytes(provider: str, value: bytes, opcode: str, recv_ns: int) -> None:
    check(provider, value, opcode, recv_ns)


@FUZZ
@given(provider=st.sampled_from(PROVIDERS), value=JSON)
def test_every_decoder_on_arbitrary_json(provider: str, value) -> None:
    check(provider, dumps(value))
    if provider == "jin10":
        check(provider, b"42" + dumps(value))


INFOWAY = [json.loads((FRAMES / n).read_text()) for n in
           ("infoway_trade.json", "infoway_depth.json", "infoway_kline.json", "infoway_ack.json",
            "infoway_error_507.json", "infoway_welcome.json")]


@FUZZ
@given(doc=st.sampled_from(INFOWAY).flatmap(reshaped), as_list=st.booleans())
def test_infoway_on_document_shaped_frames_with_odd_values(doc, as_list: bool) -> None:
    if as_list and isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc = {**doc, "data": [doc["data"], doc["data"]]}
    check("infoway", dumps(doc))


JIN10 = json.loads((FRAMES / "jin10_quote.txt").read_text()[2:])


@FUZZ
@given(doc=reshaped(JIN10), polling=st.booleans(), recv_ns=st.sampled_from([RECV_NS, 0, -1, 2**63 - 1]))
def test_jin10_on_document_shaped_packets_with_odd_values(doc, polling: bool, recv_ns: int) -> None:
    packet = b"42" + dumps(doc)
    if polling:
        packet = str(len(packet.decode())).encode() + b":" + packet
    check("jin10", packet, "text", recv_ns)


TOKENS = st.sampled_from(["", "0", "-1", "1572.12", "1e999", "nan", "inf", "-0", "10:15:03", "10:15:03.120",
                          "25:61:61", "2026-11-26 10:15:03", "1786775227", "1786775227483", "99999999999999999999",
                          "贵州茅台", "x", " ", "1,2", "|"])


@FUZZ
@given(level=st.sampled_from(["lv1", "lv2", "lv10"]), code=st.sampled_from(["600519", "i000001", "00700", "aapl", "",
                                                                             "12345678", "sh600519"]),
       fields=st.lists(TOKENS, max_size=50), pieces=st.integers(1, 3), compressed=st.booleans(),
       recv_ns=st.sampled_from([RECV_NS, 0, -1, 2**63 - 1, -2**63, 253402300799 * 10**9]))
def test_jvquant_on_document_shaped_rows_with_odd_values(level: str, code: str, fields: list[str], pieces: int,
                                                          compressed: bool, recv_ns: int) -> None:
    row = f"{level}_{code}=" + "|".join([",".join(fields)] * pieces)
    text = row.encode()
    if compressed:
        check("jvquant", deflate(text), "binary", recv_ns)
    else:
        check("jvquant", text, "text", recv_ns)
