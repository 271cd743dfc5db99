"""Canonical symbols: one spelling per instrument, whichever provider sent it.

Canonical forms (the Kafka key of every ``md.*`` record):

=====================  ==============================  ==========================
instrument             canonical                       provider spellings
=====================  ==============================  ==========================
A-share / bond / fund  ``600519.SH`` ``000001.SZ``     jvQuant ``600519`` (no
                       ``430047.BJ`` ``113050.SH``      exchange: inferred from the
                       ``127063.SZ`` ``159506.SZ``      code prefix), Infoway
                                                        ``600519.SH``
A-share index          ``000001.SH`` ``399001.SZ``     jvQuant ``i000001``, Jin10
                                                        ``SH1A0001`` / ``SZ399001``
HK stock               ``00700.HK``                    jvQuant ``00700``, Infoway
US stock               ``AAPL.US``                     jvQuant ``aapl``, Infoway
crypto / FX / metals   ``BTCUSDT`` ``XAUUSD``          as sent, upper-cased
=====================  ==============================  ==========================

Index naming follows the usual Wind/exchange convention: an index keeps its exchange
code and the exchange suffix (``000001.SH`` is the SSE Composite, never a stock, because
SSE stocks are ``6xxxxx``; ``399001.SZ`` is the SZSE Component). Jin10's ``SH1A0001`` is
the SSE's internal spelling of ``000001`` (``1A0xxx`` -> ``000xxx``).

Exchange from the code prefix (protocols.md §4, [I]): ``6``/``5``/``7``/``9`` (but ``92``)
and bonds ``10``/``11`` -> SH; ``0``/``2``/``3`` and other ``1x`` (SZ bonds ``12x``,
ETFs/LOFs ``15x``/``16x``) -> SZ; ``4``/``8``/``92`` -> BJ.

This module holds what every provider shares (the exchange rules, the A-share and index forms);
each provider's own spelling is read by ``canonical`` in marketpipe/providers/<provider>/symbols.py.
All functions are pure and cached (a few thousand distinct codes per process at most).
They raise :class:`SymbolError` (a ``ValueError``) for a code they cannot place.
"""

from __future__ import annotations

from functools import lru_cache

CACHE = 1 << 14


class SymbolError(ValueError):
    """The code does not look like any instrument this provider sends."""


def exchange_of(code: str) -> str:
    """``SH`` | ``SZ`` | ``BJ`` for a 6-digit mainland code."""
    if len(code) != 6 or not code.isdigit() or not code.isascii():
        raise SymbolError(f"not a 6-digit A-share code: {code!r}")
    head = code[0]
    if head == "6" or head == "5" or head == "7":
        return "SH"
    if head == "9":
        return "BJ" if code[1] == "2" else "SH"
    if head == "0" or head == "2" or head == "3":
        return "SZ"
    if head == "1":
        return "SH" if code[1] in "01" else "SZ"
    return "BJ"  # 4 and 8


@lru_cache(maxsize=CACHE)
def a_share(code: str) -> str:
    """``600519`` -> ``600519.SH``; an already suffixed code is checked and upper-cased."""
    if "." in code:
        num, _, exch = code.partition(".")
        exch = exch.upper()
        if exch not in ("SH", "SZ", "BJ") or len(num) != 6 or not (num.isdigit() and num.isascii()):
            raise SymbolError(f"not an A-share symbol: {code!r}")
        return f"{num}.{exch}"
    return f"{code}.{exchange_of(code)}"


def _index_exchange(code: str) -> str:
    # SZSE indices are 399xxx; SSE and CSI indices (000xxx, 93xxxx published on SH) are SH.
    return "SZ" if code.startswith("399") else "SH"


@lru_cache(maxsize=CACHE)
def index(code: str) -> str:
    """A-share index code (``000001``, ``399001``) -> ``000001.SH`` / ``399001.SZ``."""
    if len(code) != 6 or not (code.isdigit() and code.isascii()):
        raise SymbolError(f"not an index code: {code!r}")
    return f"{code}.{_index_exchange(code)}"
