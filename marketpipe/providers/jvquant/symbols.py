"""jvQuant row codes -> canonical symbols (marketpipe/market/symbols.py has the canonical forms)."""

from __future__ import annotations

from functools import lru_cache

from marketpipe.market.symbols import CACHE, SymbolError, a_share, index


def market(code: str) -> str:
    """Which jvQuant market a row code belongs to: ``cn`` | ``hk`` | ``us``."""
    if code.isdigit() and code.isascii():
        return "cn" if len(code) == 6 else "hk"
    if len(code) == 7 and code[0] == "i" and code[1:].isdigit():
        return "cn"
    return "us"


@lru_cache(maxsize=CACHE)
def canonical(code: str) -> str:
    """jvQuant row code (the part after ``lv1_``) -> canonical symbol."""
    if not code or not code.isascii():
        raise SymbolError(f"bad jvQuant code: {code!r}")
    if code.isdigit():
        if len(code) == 6:
            return a_share(code)
        if len(code) <= 5:
            return f"{code.zfill(5)}.HK"
        raise SymbolError(f"bad jvQuant code: {code!r}")
    if code[0] == "i" and code[1:].isdigit():
        return index(code[1:])
    # US tickers: letters, digits and class separators (BRK.B, BF-B).
    if code[0].isalpha() and all(c.isalnum() or c in ".-" for c in code):
        return f"{code.upper()}.US"
    raise SymbolError(f"bad jvQuant code: {code!r}")
