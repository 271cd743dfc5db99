"""Jin10 price-wall codes -> canonical symbols (marketpipe/market/symbols.py has the canonical forms)."""

from __future__ import annotations

from functools import lru_cache

from marketpipe.market.symbols import CACHE, SymbolError


@lru_cache(maxsize=CACHE)
def canonical(code: str) -> str:
    """Jin10 price-wall code -> canonical: ``SH1A0001`` -> ``000001.SH``, ``XAUUSD`` stays."""
    text = code.strip()
    if not text or not text.isascii() or any(c.isspace() or c == "," for c in text):
        raise SymbolError(f"bad Jin10 code: {code!r}")
    upper = text.upper()
    if len(upper) == 8 and upper[:2] in ("SH", "SZ"):
        num = upper[2:]
        if upper[:2] == "SH" and num.startswith("1A"):
            num = "00" + num[2:]
        if num.isdigit():
            return f"{num}.{upper[:2]}"
    return upper
