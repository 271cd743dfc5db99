"""Infoway codes -> canonical symbols (marketpipe/market/symbols.py has the canonical forms)."""

from __future__ import annotations

from functools import lru_cache

from marketpipe.market.symbols import CACHE, SymbolError, a_share


@lru_cache(maxsize=CACHE)
def canonical(code: str) -> str:
    """Infoway codes are already canonical (``600519.SH``, ``AAPL.US``, ``BTCUSDT``); normalize case."""
    text = code.strip().upper()
    if not text or not text.isascii() or any(c.isspace() or c == "," for c in text):
        raise SymbolError(f"bad Infoway code: {code!r}")
    if len(text) == 6 and text.isdigit():  # an A-share code without its exchange
        return a_share(text)
    if text.endswith(".HK"):
        num = text[:-3]
        if num.isdigit() and len(num) <= 5:
            return f"{num.zfill(5)}.HK"
    return text
