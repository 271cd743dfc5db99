"""jvQuant level-1/level-2 quote protocol facts, shared by the producer, the decoder, the
simulator and the trade client (pure, no I/O).

**Allocation.** A client asks ``GET <base>/query/server?market=ab&type=websocket&token=T`` for a
server before every connect. The documents disagree on the path: the provider's lv1/lv2 and
trade documents print ``/server``, the official SDK and the current wiki use ``/query/server``.
Both are tried; the second only when the first does not answer like an allocation endpoint
(HTTP 404, not a JSON object), so a refusal (bad token, rate limit) is never asked twice.
``code`` counts only where present (``"0"`` as a string or a number); ``server`` comes with or
without a scheme.

**Commands** are text frames ``<verb>=<level>_<code>,...`` (``add``, ``del``, ``all``) or the
bare verbs ``list`` and ``his``. Their replies are short text; the format is undocumented.

**Data frames** are raw DEFLATE (no zlib header) of UTF-8 text: rows separated by ``\\n``, each
``<level>_<code>=<payload>``, ``|`` separating records batched in one payload and ``,`` the
fields of a record. The field layouts (A-share unless named):

* lv1: ``time,name,price,ratio,f5,f6`` then 5 bid and 5 ask levels as ``qty,price`` pairs;
  f5/f6 are volume,amount in the provider documents and amount,volume in later notes;
* HK lv1: ``time,name_en,name_zh,price,ratio,amount,volume`` then 10+10 ``qty,price`` pairs;
* US lv1: ``code,price,ratio,amount,volume,time,update_time``;
* lv10: ``time,name,price,last_close,amount,volume`` then per side 10 prices and 10 quantities;
* lv2: ``time,id,price,vol`` (the documents' packet example prints later records of a row
  ``id,time,price,vol``); US lv2: ``time,session,id,price,vol``.

Names may contain commas, so the fixed fields of a row are counted from its end.
"""

from __future__ import annotations

import urllib.parse
import zlib
from typing import Any, Callable, Iterable

# ---- allocation --------------------------------------------------------------------------------
PATHS = ("/query/server", "/server")
#: markets a server is allocated for, and the ``type`` of server asked for
MARKETS = ("ab", "hk", "us")
KIND_WEBSOCKET, KIND_TRADE, KIND_SQL = "websocket", "trade", "sql"

#: fetch(url) -> (HTTP status, parsed JSON body or None when the body is not JSON)
Fetch = Callable[[str], "tuple[int, Any]"]


class AllocationRefused(Exception):
    """No server was allocated; the message is the provider's (or why none was found)."""


def server_address(body: Any, scheme: str) -> str:
    """The allocated address from one answer, with ``scheme`` added when it has none."""
    if not isinstance(body, dict):
        raise AllocationRefused("the answer is not a JSON object")
    code = body.get("code")
    server = str(body.get("server") or "").strip()
    if (code is not None and str(code) != "0") or not server:
        message = body.get("msg") or body.get("message") or (f"code {code}" if code is not None else "no server")
        raise AllocationRefused(str(message))
    return server if "://" in server else f"{scheme}://{server}"


def allocate(base_url: str, *, market: str, kind: str, token: str, scheme: str, fetch: Fetch) -> str:
    """Ask ``base_url`` for a ``kind`` server (websocket, trade, sql); the address has a scheme."""
    query = urllib.parse.urlencode({"market": market, "type": kind, "token": token})
    missing = []
    for path in PATHS:
        status, body = fetch(f"{base_url.rstrip('/')}{path}?{query}")
        if isinstance(body, dict) and status != 404:
            return server_address(body, scheme)
        missing.append(f"{path} HTTP {status}")
    raise AllocationRefused(f"no allocation endpoint answered ({', '.join(missing)})")


# ---- commands ----------------------------------------------------------------------------------
LEVELS = ("lv1", "lv2", "lv10")
ADD, DEL, ALL, LIST, HIS = "add", "del", "all", "list", "his"
#: verbs that carry ``=<level>_<code>,...``
SUBSCRIPTION_VERBS = (ADD, DEL, ALL)
COMMAND_VERBS = (*SUBSCRIPTION_VERBS, LIST, HIS)


def row_key(level: str, code: str) -> str:
    """``lv1_600519``: how a subscription names a code and how a data row starts."""
    return f"{level}_{code}"


def command(verb: str, codes: Iterable[str], levels: Iterable[str]) -> str:
    """``add=lv1_600519,lv2_600519,...``: every level of every code."""
    levels = list(levels)
    return f"{verb}=" + ",".join(row_key(lv, code) for code in codes for lv in levels)


def parse_subscription(arg: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``lv1_600519,lv2_600519`` -> ([(level, code)], [items that are not <level>_<code>])."""
    good, bad = [], []
    for item in filter(None, (s.strip() for s in arg.split(","))):
        level, _, code = item.partition("_")
        (good.append((level, code)) if level in LEVELS and code else bad.append(item))
    return good, bad


# ---- data frames -------------------------------------------------------------------------------
#: zlib ``wbits`` of raw DEFLATE: no header, no checksum
RAW_DEFLATE_WBITS = -15
ROW_SEP, KEY_SEP, RECORD_SEP, FIELD_SEP = "\n", "=", "|", ","
#: the key prefixes a data row starts with
ROW_PREFIXES = tuple(f"{lv}_" for lv in LEVELS)

#: lv1 fields 5/6: the provider documents' order and the later notes' order
VOLUME_AMOUNT, AMOUNT_VOLUME = "volume,amount", "amount,volume"
#: book levels per side and fields after the name, A-share lv1 (price, ratio, f5, f6, 5+5 pairs)
LV1_DEPTH, LV1_TAIL_FIELDS = 5, 24
#: HK lv1 (price, ratio, amount, volume, 10+10 pairs after name_zh)
HK_LV1_DEPTH, HK_LV1_TAIL_FIELDS = 10, 45
US_LV1_FIELDS = 7
#: lv10: book levels per side and fields after the name (price, last_close, amount, volume, 4x10)
LV10_DEPTH, LV10_TAIL_FIELDS = 10, 44
LV2_FIELDS = 4
US_LV2_FIELDS = 5


def deflate_raw(text: str) -> bytes:
    """One data frame as the server sends it."""
    c = zlib.compressobj(6, zlib.DEFLATED, RAW_DEFLATE_WBITS)
    return c.compress(text.encode()) + c.flush()


def row_codes(data: bytes, limit: int = 1 << 22) -> set[str]:
    """The codes whose rows a data frame carries (``lv2_600519=...`` -> ``600519``), read without
    decoding the rows: what the producer's per-subscription liveness needs for every frame, so it
    jumps from row start to row start (a row holds up to 200 trades) instead of splitting the text.
    A frame that does not inflate names no code (the processor reports it; the producer keeps it
    as it came)."""
    try:
        text = zlib.decompressobj(RAW_DEFLATE_WBITS).decompress(data, limit)
    except zlib.error:
        return set()
    codes: set[str] = set()
    pos = 0
    while pos >= 0:
        eq = text.find(b"=", pos, pos + _MAX_KEY)
        level, sep, code = text[pos:eq].partition(b"_") if eq > 0 else (b"", b"", b"")
        if sep and code and level in _LEVEL_BYTES:
            codes.add(code.decode("utf-8", "replace"))
        pos = text.find(b"\n", pos)
        pos = pos + 1 if pos >= 0 else -1
    return codes


_LEVEL_BYTES = frozenset(lv.encode() for lv in LEVELS)
_MAX_KEY = 40  # longer than any <level>_<code> key
