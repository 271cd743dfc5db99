"""Canonical symbols and exchange inference (protocols.md §2.8, §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketpipe.market import symbols
from marketpipe.market.symbols import SymbolError
from marketpipe.providers.infoway import symbols as infoway_symbols
from marketpipe.providers.jin10 import symbols as jin10_symbols
from marketpipe.providers.jvquant import symbols as jvquant_symbols


@pytest.mark.parametrize("code,expected", [
    ("600519", "600519.SH"), ("601318", "601318.SH"), ("603986", "603986.SH"), ("605499", "605499.SH"),
    ("688981", "688981.SH"), ("689009", "689009.SH"), ("900901", "900901.SH"),
    ("000001", "000001.SZ"), ("001979", "001979.SZ"), ("002594", "002594.SZ"), ("003816", "003816.SZ"),
    ("300750", "300750.SZ"), ("301236", "301236.SZ"), ("200012", "200012.SZ"),
    ("430047", "430047.BJ"), ("830799", "830799.BJ"), ("871981", "871981.BJ"), ("889999", "889999.BJ"),
    ("920118", "920118.BJ"),
    ("110074", "110074.SH"), ("113050", "113050.SH"), ("111010", "111010.SH"), ("118003", "118003.SH"),
    ("123089", "123089.SZ"), ("127063", "127063.SZ"), ("128079", "128079.SZ"),
    ("512170", "512170.SH"), ("561160", "561160.SH"), ("588000", "588000.SH"),
    ("159506", "159506.SZ"), ("161725", "161725.SZ"),
    ("i000001", "000001.SH"), ("i000300", "000300.SH"), ("i399001", "399001.SZ"), ("i399006", "399006.SZ"),
    ("00700", "00700.HK"), ("700", "00700.HK"), ("09988", "09988.HK"),
    ("aapl", "AAPL.US"), ("amzn", "AMZN.US"), ("brk.b", "BRK.B.US"),
])
def test_jvquant_codes(code: str, expected: str) -> None:
    assert jvquant_symbols.canonical(code) == expected


@pytest.mark.parametrize("code,market", [("600519", "cn"), ("i000001", "cn"), ("00700", "hk"), ("aapl", "us")])
def test_jvquant_market(code: str, market: str) -> None:
    assert jvquant_symbols.market(code) == market


@pytest.mark.parametrize("code,expected", [
    ("600519.SH", "600519.SH"), ("000001.sz", "000001.SZ"), ("aapl.us", "AAPL.US"), ("700.HK", "00700.HK"),
    ("00700.HK", "00700.HK"), ("btcusdt", "BTCUSDT"), ("XAUUSD", "XAUUSD"), (".DJI.US", ".DJI.US"),
    (" USDJPY ", "USDJPY"), ("600519", "600519.SH"),
])
def test_infoway_codes(code: str, expected: str) -> None:
    assert infoway_symbols.canonical(code) == expected


@pytest.mark.parametrize("code,expected", [
    ("SH1A0001", "000001.SH"), ("SZ399001", "399001.SZ"), ("SH000300", "000300.SH"), ("SZ399006", "399006.SZ"),
    ("XAUUSD", "XAUUSD"), ("eurusd", "EURUSD"), ("DJI", "DJI"), ("HSI", "HSI"), ("USOIL", "USOIL"),
])
def test_jin10_codes(code: str, expected: str) -> None:
    assert jin10_symbols.canonical(code) == expected


def test_index_and_stock_namespaces_do_not_collide() -> None:
    # SSE Composite and Ping An Bank share the digits, never the canonical symbol.
    assert jvquant_symbols.canonical("i000001") != jvquant_symbols.canonical("000001")
    assert jin10_symbols.canonical("SH1A0001") == jvquant_symbols.canonical("i000001")


@pytest.mark.parametrize("code", ["", "12345678", "6005190", "i12", "ABC!", "60051x", "１２３４５６"])
def test_bad_jvquant_codes(code: str) -> None:
    with pytest.raises(SymbolError):
        jvquant_symbols.canonical(code)


@pytest.mark.parametrize("bad", ["", " ", "A B", "X,Y", "黄金"])
def test_bad_infoway_and_jin10_codes(bad: str) -> None:
    with pytest.raises(SymbolError):
        infoway_symbols.canonical(bad)
    with pytest.raises(SymbolError):
        jin10_symbols.canonical(bad)


@given(st.from_regex(r"\A[0-9]{6}\Z"))
def test_every_six_digit_code_gets_exactly_one_exchange(code: str) -> None:
    sym = jvquant_symbols.canonical(code)
    assert sym[:6] == code and sym[6:] in (".SH", ".SZ", ".BJ")
    assert symbols.a_share(sym) == sym  # canonical form is a fixed point
    assert infoway_symbols.canonical(sym.lower()) == sym


@given(st.text(max_size=12))
def test_converters_raise_only_symbol_error(text: str) -> None:
    for convert in (jvquant_symbols.canonical, infoway_symbols.canonical, jin10_symbols.canonical, symbols.a_share):
        try:
            out = convert(text)
        except SymbolError:
            continue
        assert out and out == out.strip()
