"""jvQuant quote frames -> Quote (lv1), Tick (lv2), Depth (lv10) records.

A data frame is raw DEFLATE (no zlib header) of UTF-8 text: rows separated by ``\\n``, each
``<level>_<code>=<payload>``; ``|`` separates records batched in one payload. A frame that
is already plain ``lvN_`` text is accepted as is. Other text frames are replies to our own
commands (add/del/list, format undocumented) and decode to ``[]``.

Readings chosen where protocols.md §1.4 is [I]/[U]:

* **lv1 fields 5/6** are ``amount,volume`` in current docs, ``volume,amount`` in old ones.
  Per row, each order is tested: the implied average price (amount / volume) must lie
  within 0.4x..2.5x of the last price (or 40x..250x: volume counted in lots of 100). If
  only ``volume,amount`` passes it is used; otherwise (both, neither, no volume yet) the
  current ``amount,volume``. The choice is in ``Quote.field_order``.
* **Batched snapshots** (``|`` in lv1/lv10): every piece becomes a record with its own
  ``source.index`` (the SDK keeps only the last one; we lose nothing).
* **lv10 blocks** per side: prices then quantities (SDK). If that reading fails the sanity
  check (non-zero prices within 0.5x..1.5x of the last price, quantities whole numbers) and
  quantities-then-prices passes it, the latter is used.
* **lv2 pieces** carrying several ``price,vol`` pairs (HK, US) give one Tick per pair; the
  k-th extra pair gets trade id ``<id>#<k>`` so ids stay unique.
* **Market** comes from the code: 6 digits or ``i``+6 digits -> A-share, <=5 digits -> HK,
  letters -> US. Times are China wall time (``HH:MM:SS[.fff]``) dated by the receive
  time; HK/US time formats are unknown, so ``YYYY-MM-DD HH:MM:SS`` (China time) and epoch
  seconds/ms are accepted too.
* HK lv1 is 47 fields (10 levels); an HK row of exactly 26 fields is read in the A-share
  layout (5 levels). Empty book levels (price 0) are dropped.
* **Bad rows**: the good rows of the frame are still decoded; the frame then raises
  ParseError with ``partial`` = those records (the caller publishes them and dead-letters
  the frame).
"""

from __future__ import annotations

import zlib

from processors import symbols
from processors.decode.base import Normalized, ParseError, RawFrame
from processors.decode.common import Emitter, floats, levels, symbol_or_error

#: Refuse to inflate beyond this (a frame is a few KB; this bounds a deflate bomb).
MAX_INFLATED = 8 << 20
SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"


def decode(frame: RawFrame) -> list[Normalized]:
    text = payload_text(frame)
    if text is None:
        return []
    em = Emitter(frame)
    errors: list[str] = []
    for n, row in enumerate(text.split("\n")):
        row = row.strip()
        if not row:
            continue
        mark = len(em.out)
        try:
            decode_row(em, row)
        except ParseError as exc:
            del em.out[mark:]  # a row is all or nothing
            errors.append(f"row {n}: {exc}")
    if errors:
        raise ParseError(f"jvquant: {len(errors)} bad row(s); {errors[0]}", partial=em.out)
    return em.out


def payload_text(frame: RawFrame) -> str | None:
    """The frame's row text, or None for a command reply (a text frame that has no rows)."""
    value = frame.value
    reason = "empty frame"
    if value and frame.meta.opcode != "text":
        try:
            return inflate(value)
        except ParseError as exc:
            reason = str(exc)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"jvquant: {reason}") from None
    if looks_like_rows(text):
        return text
    if frame.meta.opcode == "text":
        return None
    raise ParseError(f"jvquant: {reason}")


def inflate(data: bytes) -> str:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise ParseError(f"not raw DEFLATE ({exc})") from None
    if inflater.unconsumed_tail:
        raise ParseError(f"inflates beyond {MAX_INFLATED} bytes")
    if not inflater.eof and not data.endswith(SYNC_FLUSH_TAIL):
        raise ParseError("DEFLATE stream is truncated")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"inflated frame is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not looks_like_rows(text):
        raise ParseError(f"inflated frame has no lvN_ rows: {text[:40]!r}")
    return text


def looks_like_rows(text: str) -> bool:
    head = text.lstrip()[:24]
    key = head.partition("=")[0]
    return key.startswith("lv") and "_" in key and "=" in head


def decode_row(em: Emitter, row: str) -> None:
    key, sep, payload = row.partition("=")
    level, us, code = key.partition("_")
    if not sep or not us or not code:
        raise ParseError(f"not <level>_<code>=<payload>: {row[:40]!r}")
    parser = ROW_PARSERS.get(level)
    if parser is None:
        raise ParseError(f"unknown level {level[:12]!r}")
    symbol = symbol_or_error(symbols.jvquant, code)
    parser(em, code, symbol, symbols.jvquant_market(code), payload)


def lv1(em: Emitter, code: str, symbol: str, market: str, payload: str) -> None:
    for piece in payload.split("|"):
        f = piece.split(",")
        n = len(f)
        if market == "us":  # code, price, ratio, amount, volume, time, update_time
            if n != 7:
                raise ParseError(f"US lv1 {code}: {n} fields, 7 expected")
            price, ratio, f5, f6 = floats(f[1:5], "lv1")
            amount, volume, order = amount_volume(price, f5, f6)
            when = f[5] or f[6]
            em.quote(symbol, code, em.event_time(when) if when else em.recv_ns // 1_000_000, price,
                     change_pct=ratio, cum_volume=volume, cum_amount=amount, field_order=order)
            continue
        # Names may contain commas: the fixed fields are counted from both ends.
        if market == "hk" and n == 26:  # an HK row in the A-share layout (5 levels): read it as such
            market = "cn"
        depth, tail_len = (10, 45) if market == "hk" else (5, 24)
        if n < tail_len + 2:
            raise ParseError(f"lv1 {code}: {n} fields, {tail_len + 2} expected")
        if market == "hk":  # time, name_en, name_zh, price, ratio, amount, volume, 10+10 (qty, price)
            name = f[n - tail_len] or ",".join(f[1:n - tail_len]) or None
            v = floats(f[n - tail_len + 1:], "lv1")
        else:  # time, name, price, ratio, amount|volume, volume|amount, 5+5 (qty, price)
            name = ",".join(f[1:n - tail_len]) or None
            v = floats(f[n - tail_len:], "lv1")
        price = v[0]
        amount, volume, order = amount_volume(price, v[2], v[3])
        mid = 4 + 2 * depth
        em.quote(symbol, code, em.event_time(f[0]), price, name=name, change_pct=v[1], cum_volume=volume,
                 cum_amount=amount, bids=levels(v[5:mid:2], v[4:mid:2]), asks=levels(v[mid + 1::2], v[mid::2]),
                 field_order=order)


def plausible_average(avg: float, price: float) -> bool:
    r = avg / price
    return 0.4 <= r <= 2.5 or 40.0 <= r <= 250.0


def amount_volume(price: float, f5: float, f6: float) -> tuple[float, float, str]:
    """(amount, volume, field_order) for lv1 fields 5/6; see the module docstring."""
    if price > 0 and f5 > 0 and f6 > 0:
        if plausible_average(f6 / f5, price) and not plausible_average(f5 / f6, price):
            return f6, f5, "volume,amount"
    return f5, f6, "amount,volume"


def lv10(em: Emitter, code: str, symbol: str, market: str, payload: str) -> None:
    for piece in payload.split("|"):
        f = piece.split(",")
        n = len(f)
        if n < 46:
            raise ParseError(f"lv10 {code}: {n} fields, 46 expected")
        v = floats(f[n - 44:], "lv10")  # price, last_close, amount, volume, 4 blocks of 10
        ref = v[0] if v[0] > 0 else v[1]
        bp, bq, ap, aq = v[4:14], v[14:24], v[24:34], v[34:44]
        if not book_reading_ok(ref, bp, bq, ap, aq) and book_reading_ok(ref, bq, bp, aq, ap):
            bp, bq, ap, aq = bq, bp, aq, ap
        em.depth(symbol, code, em.event_time(f[0]), levels(bp, bq), levels(ap, aq))


def book_reading_ok(ref: float, bp: list[float], bq: list[float], ap: list[float], aq: list[float]) -> bool:
    lo, hi = ref * 0.5, ref * 1.5
    for p in bp + ap:
        if p != 0 and not lo <= p <= hi:
            return False
    for q in bq + aq:
        if q < 0 or q != int(q):
            return False
    return True


def lv2(em: Emitter, code: str, symbol: str, market: str, payload: str) -> None:
    first = 3 if market == "us" else 2  # US: time, session, id, pairs...; else time, id, pairs...
    for piece in payload.split("|"):
        f = piece.split(",")
        n = len(f)
        if n < first + 2 or (n - first) % 2:
            raise ParseError(f"lv2 {code}: {n} fields, time,{'session,' if first == 3 else ''}id,price,vol expected")
        session = None
        if first == 3:
            session = f[1].strip().upper()
            if not session.isalpha():
                raise ParseError(f"lv2 {code}: session {f[1][:8]!r} is not PRE/RTH/AFT")
        event = em.event_time(f[0])
        trade_id = f[first - 1]
        if n == first + 2:  # the common case: one trade per piece
            price, vol = floats(f[first:], "lv2")
            em.tick(symbol, code, event, price, vol, trade_id=trade_id, session=session)
            continue
        v = floats(f[first:], "lv2")
        for k in range(0, n - first, 2):
            em.tick(symbol, code, event, v[k], v[k + 1], trade_id=trade_id if k == 0 else f"{trade_id}#{k // 2}",
                    session=session)


ROW_PARSERS = {"lv1": lv1, "lv2": lv2, "lv10": lv10}
