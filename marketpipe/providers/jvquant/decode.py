"""jvQuant quote frames -> Quote (lv1), Tick (lv2), Depth (lv10) records.

A data frame is raw DEFLATE (no zlib header) of UTF-8 text: rows separated by ``\\n``, each
``<level>_<code>=<payload>``; ``|`` separates records batched in one payload. A frame that
is already plain ``lvN_`` text is accepted as is. Other text frames carry no market data:
replies to our own commands (add/del/all/list/his, format undocumented: §1.3, §7.1) and any
other text. Both are counted as control (``metrics.CONTROL``, kind ``command reply`` when the
text names a command verb or a subscription code, else ``unknown text``) rather than
dead-lettered: an undocumented reply we fail to recognise must not flood the DLQ, and the
counter still shows it.

Readings where the provider documents and protocols.md disagree (§0):

* **lv1 fields 5/6**: the documents say 成交量,成交额 (volume, amount); later notes say amount,
  volume. The order is decided per symbol from the numbers (:func:`readable_orders`: the
  average price amount / volume must lie within 0.5x..2x of the last price, or 10x / 100x
  that when volume is counted in 10-unit bond lots or 100-share lots). When exactly one
  reading is plausible it decides, once, in the caller's :class:`DecoderState`; a later row
  that contradicts it is counted (``metrics.LV1_ORDER_CONTRADICTIONS``) and read the decided
  way. When the numbers cannot tell (nothing traded yet, an ETF priced near 1 where both
  readings fit, an index whose level is no price) the documented order is used: volume,
  amount for A-shares (the jvQuant quote document); for HK and US, whose only sources (§1.4.4) say amount,
  volume, that one. The reading is in ``Quote.field_order``.
* **lv2 records**: the documents print the first record ``time,id,price,vol`` and later ones
  ``id,time,price,vol``. The time is recognised by its shape (``HH:MM:SS[.fff]``) in every
  record; an A-share record with no such field is rejected, never dated from its trade
  number. A record with price 0 is not a trade: skipped and counted (``metrics.SKIPPED``).

* **lv1 book columns**: the documents give each level as 挂单数量,挂单价格 (size, price). A row
  whose best levels only make sense as (price, size) — the price near the last price, the size
  a whole number — is read that way and counted (``metrics.BOOK_REORIENTED``, kind ``price/size
  columns``); when both or neither reading fits, the documented one is used. Every book then
  goes through ``common.oriented``: bids and asks sent under each other's place are turned
  round (kind ``sides``), a book crossed either way dead-letters its row (``crossed book``).

Other readings where protocols.md §1.4 is [I]/[U]:

* **Batched snapshots** (``|`` in lv1/lv10): every piece becomes a record with its own
  ``source.index`` (the SDK keeps only the last one; we lose nothing).
* **lv10 blocks** per side: prices then quantities (SDK). If that reading fails the sanity
  check (non-zero prices within 0.5x..1.5x of the last price, quantities whole numbers) and
  quantities-then-prices passes it, the latter is used.
* **lv2 pieces** carrying several ``price,vol`` pairs (HK, US) give one Tick per pair; the
  k-th extra pair gets trade id ``<id>#<k>`` so ids stay unique.
* **Market** comes from the code: 6 digits or ``i``+6 digits -> A-share, <=5 digits -> HK,
  letters -> US. Times are China wall time (``HH:MM:SS[.fff]``) without a date, dated by
  the trading calendar (marketpipe/market/tradingdays.py): the latest instant with that time of day
  on a trading day (A-share: SSE/SZSE holidays and weekends; HK/US: every day, no table
  shipped) at most 1 h after the receive time. So a 15:00:03 snapshot received on Monday at
  08:30 or on a Saturday is Friday's close, and no record is dated more than 1 h ahead of its
  receipt. HK/US time formats are unknown, so ``YYYY-MM-DD HH:MM:SS`` (China time) and epoch
  seconds/ms are accepted too, within the event-time window of the receive time.
* HK lv1 is 47 fields (10 levels); an HK row of exactly 26 fields is read in the A-share
  layout (5 levels). Empty book levels (price 0) are dropped.

Plausibility bounds (each dead-letters with its own reason): ``lv1 field count`` /
``lv10 field count`` / ``lv2 field count`` (the documented count, plus at most
:data:`MAX_NAME_COMMAS` for commas inside a name), ``name length`` (:data:`MAX_NAME_CHARS`),
``records per row`` (:data:`MAX_RECORDS_PER_ROW` lv2 trades, :data:`MAX_SNAPSHOTS_PER_ROW`
lv1/lv10 snapshots), ``event time`` (common.check_event_time), and a text frame that is not
UTF-8 (``not valid UTF-8``).

**Bad rows and records**: a bad row, or a bad record of an lv2 row, is rejected on its own
(``ParseError.rejects``, each replayable as a one-row frame); the frame's good records are
still decoded (``ParseError.partial``).
"""

from __future__ import annotations

import zlib

from marketpipe.market import tradingdays
from marketpipe.processors.decode import metrics
from marketpipe.processors.decode.base import DecoderState, Normalized, ParseError, RawFrame, Rejected
from marketpipe.processors.decode.common import (
    Emitter,
    check_event_time,
    clock_ms,
    floats,
    is_clock,
    levels,
    symbol_or_error,
)
from marketpipe.providers.jvquant import protocol, symbols
from marketpipe.providers.jvquant.protocol import AMOUNT_VOLUME, COMMAND_VERBS, VOLUME_AMOUNT

#: Refuse to inflate beyond this (a frame is a few KB; this bounds a deflate bomb).
MAX_INFLATED = 8 << 20
SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"

#: lv1 fields 5/6 when the numbers cannot tell: the jvQuant quote document for A-shares, §1.4.4 for HK/US
DEFAULT_ORDER = {"cn": VOLUME_AMOUNT, "hk": AMOUNT_VOLUME, "us": AMOUNT_VOLUME}
#: average price / last price of a plausible reading, and the volume units that scale it
#: (shares or bonds: 1; bond lots of 10: 10; share lots of 100: 100). The daily price limits
#: (±5..30 %) keep a real VWAP well inside 0.5x..2x of the last price.
VWAP_RATIO = (0.5, 2.0)
VOLUME_UNITS = (1.0, 10.0, 100.0)
AVERAGE_WINDOWS = tuple((VWAP_RATIO[0] * unit, VWAP_RATIO[1] * unit) for unit in VOLUME_UNITS)

#: Plausibility bounds. A-share names are a few characters and HK English names a few words.
MAX_NAME_CHARS = 64
#: a name may contain commas; beyond this many the row is not a quote row
MAX_NAME_COMMAS = 3
#: jvQuant pushes trades as they happen; even the open of the busiest stock gives a few
#: hundred per push, so more than this in one row is not a push.
MAX_RECORDS_PER_ROW = 1000
MAX_SNAPSHOTS_PER_ROW = 100
#: a level-1 book price lies within these multiples of the last price (daily limits are ±5..30 %)
BOOK_LO, BOOK_HI = 0.5, 1.5

#: (record number, its offset in the row payload, the record text, why): a bad record of a row
BadRecord = tuple[int, int, str, ParseError]


def decode(frame: RawFrame, state: DecoderState) -> list[Normalized]:
    text = payload_text(frame)
    if text is None:
        return []
    em = Emitter(frame, state.a_share_calendar)
    rejects: list[Rejected] = []
    bad: list[BadRecord] = []
    offset = 0
    for n, line in enumerate(text.split("\n")):
        row_start, offset = offset, offset + len(line) + 1
        row = line.strip()
        if not row:
            continue
        if len(row) != len(line):  # only then is there leading space to skip (lstrip copies the row)
            row_start += len(line) - len(line.lstrip())
        mark = len(em.out)
        try:
            decode_row(em, state, row, bad)
        except ParseError as exc:
            del em.out[mark:]  # a row is all or nothing, apart from the records it rejected itself
            bad.clear()
            key = row.partition("=")[0]
            rejects.append(Rejected(f"jvquant: row {n}: {exc}", row_start, symbol_of(key), row.encode()))
        if bad:
            key = row.partition("=")[0]
            base, symbol = row_start + len(key) + 1, symbol_of(key)
            rejects += [Rejected(f"jvquant: row {n} record {k}: {exc}", base + at, symbol, f"{key}={piece}".encode())
                        for k, at, piece, exc in bad]
            bad.clear()
    if rejects:
        first = rejects[0].reason.removeprefix("jvquant: ")
        raise ParseError(f"jvquant: {len(rejects)} bad row(s) or record(s); {first}",
                         partial=em.out, rejects=rejects)
    return em.out


def symbol_of(key: str) -> str:
    """The canonical symbol of a row key, or '' (for dead letters of rows that failed)."""
    try:
        return symbols.canonical(key.partition("_")[2])
    except symbols.SymbolError:
        return ""


def payload_text(frame: RawFrame) -> str | None:
    """The frame's row text, or None for a frame without market data (counted as control)."""
    value = frame.value
    if not value:
        raise ParseError("jvquant: empty frame")
    if frame.meta.opcode != "text":
        try:
            return inflate(value)
        except ParseError as exc:
            reason = str(exc)
        try:  # a binary frame may be row text already (replays, ``marketpipe decode``)
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(f"jvquant: {reason}") from None
        if looks_like_rows(text):
            return text
        raise ParseError(f"jvquant: {reason}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"jvquant: text frame is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if looks_like_rows(text):
        return text
    metrics.CONTROL.labels("jvquant", control_kind(text)).inc()
    return None


def control_kind(text: str) -> str:
    """``command reply`` when the text names a command verb or a subscription code, else ``unknown text``."""
    head = text.strip()[:200].lower()
    words = head.replace("=", " ").replace(":", " ").split(None, 1)
    word = words[0] if words else ""
    if word in COMMAND_VERBS or any(prefix in head for prefix in protocol.ROW_PREFIXES):
        return "command reply"
    return "unknown text"


def inflate(data: bytes) -> str:
    inflater = zlib.decompressobj(protocol.RAW_DEFLATE_WBITS)
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
        raise ParseError(f"inflated frame is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not looks_like_rows(text):
        raise ParseError(f"inflated frame has no lvN_ rows: {text[:40]!r}")
    return text


def looks_like_rows(text: str) -> bool:
    head = text.lstrip()[:24]
    key = head.partition("=")[0]
    return key.startswith("lv") and "_" in key and "=" in head


def decode_row(em: Emitter, state: DecoderState, row: str, bad: list[BadRecord]) -> None:
    key, sep, payload = row.partition("=")
    level, us, code = key.partition("_")
    if not sep or not us or not code:
        raise ParseError(f"not <level>_<code>=<payload>: {row[:40]!r}")
    parser = ROW_PARSERS.get(level)
    if parser is None:
        raise ParseError(f"unknown level {level[:12]!r}")
    symbol = symbol_or_error(symbols.canonical, code)
    parser(em, state, code, symbol, symbols.market(code), payload, bad)


def when(em: Emitter, text: str, clock: bool | None = None, market: str = "cn") -> int:
    """Event time of a provider time string, within the plausible window of the receive time.

    A clock time is dated by the trading calendar (:func:`marketpipe.market.tradingdays.clock_anchor`):
    the latest instant with that time of day on a trading day (A-share: SSE/SZSE calendar; HK,
    US: every day) at most 1 h after the receive time. That dating is its window, so only a time
    that carries its own date is checked further.
    """
    if market == "cn":  # rows of a frame repeat their times: dated once (other markets are rare)
        t = em.clock_cache.get(text)
        if t is not None:
            return t
    if clock or (clock is None and is_clock(text)):
        if em.recv_ns <= 0:
            raise ParseError(f"event time {text[:16]!r}: no receive time to date a clock time by")
        return clock_time(em, text, market)
    try:
        return check_event_time(em.event_time(text), em.recv_ns)
    except ParseError:
        em.clock_cache.pop(text, None)  # never served from the cache unchecked
        raise


def clock_time(em: Emitter, text: str, market: str) -> int:
    if market != "cn":
        return tradingdays.clock_anchor(em.recv_ns // 1_000_000, a_share=False).date(clock_ms(text))
    anchor = em.anchor
    if anchor is None:
        anchor = em.anchor = tradingdays.clock_anchor(em.recv_ns // 1_000_000, a_share=em.a_share_calendar)
    t = em.clock_cache[text] = anchor.date(clock_ms(text))
    return t


def check_name(name: str | None, code: str) -> str | None:
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise ParseError(f"name length: {code} name has {len(name)} characters, at most {MAX_NAME_CHARS}")
    return name


def check_count(what: str, code: str, n: int, lo: int, hi: int) -> None:
    if not lo <= n <= hi:
        expected = str(lo) if lo == hi else f"{lo}..{hi}"
        raise ParseError(f"{what} field count: {code} has {n} fields, {expected} expected")


def split_pieces(what: str, code: str, payload: str, most: int) -> list[str]:
    if payload.count("|") >= most:
        raise ParseError(f"records per row: {what} {code} has {payload.count('|') + 1} records, at most {most}")
    return payload.split("|")


def lv1(em: Emitter, state: DecoderState, code: str, symbol: str, market: str, payload: str,
        bad: list[BadRecord]) -> None:
    for piece in split_pieces("lv1", code, payload, MAX_SNAPSHOTS_PER_ROW):
        f = piece.split(",")
        n = len(f)
        if market == "us":  # code, price, ratio, amount, volume, time, update_time
            check_count("lv1", code, n, protocol.US_LV1_FIELDS, protocol.US_LV1_FIELDS)
            price, ratio, f5, f6 = floats(f[1:5], "lv1")
            amount, volume, order = amount_volume(state, symbol, market, price, f5, f6)
            stamp = f[5] or f[6]
            em.quote(symbol, code, when(em, stamp, None, market) if stamp else em.recv_ns // 1_000_000, price,
                     change_pct=ratio, cum_volume=volume, cum_amount=amount, field_order=order)
            continue
        layout = market
        if layout == "hk" and n == 26:  # an HK row in the A-share layout (5 levels): read it as such
            layout = "cn"
        # Names may contain commas: the fixed fields are counted from both ends.
        depth, tail_len = ((protocol.HK_LV1_DEPTH, protocol.HK_LV1_TAIL_FIELDS) if layout == "hk"
                           else (protocol.LV1_DEPTH, protocol.LV1_TAIL_FIELDS))
        check_count("lv1", code, n, tail_len + 2, tail_len + 2 + MAX_NAME_COMMAS)
        if layout == "hk":  # time, name_en, name_zh, price, ratio, amount, volume, 10+10 (qty, price)
            name = f[n - tail_len] or ",".join(f[1:n - tail_len]) or None
            v = floats(f[n - tail_len + 1:], "lv1")
        else:  # time, name, price, ratio, volume|amount, amount|volume, 5+5 (qty, price)
            name = (f[1] if n == tail_len + 2 else ",".join(f[1:n - tail_len])) or None
            v = floats(f[n - tail_len:], "lv1")
        check_name(name, code)
        price = v[0]
        amount, volume, order = amount_volume(state, symbol, market, price, v[2], v[3])
        mid = 4 + 2 * depth
        # the documented (size, price) columns when the best levels read so (inlined: the hot path)
        b1, a1 = v[5], v[mid + 1]
        p = 1 if ((b1 == 0 or BOOK_LO * price <= b1 <= BOOK_HI * price and not v[4] % 1)
                  and (a1 == 0 or BOOK_LO * price <= a1 <= BOOK_HI * price and not v[mid] % 1)) \
            else book_columns(price, v, mid)
        em.quote(symbol, code, when(em, f[0], None, market), price, name=name, change_pct=v[1], cum_volume=volume,
                 cum_amount=amount, bids=levels(v[4 + p:mid:2], v[5 - p:mid:2]),
                 asks=levels(v[mid + p::2], v[mid + 1 - p::2]), field_order=order)


def plausible_level(ref: float, p: float, q: float) -> bool:
    """A (price, size) reading of a book level: an empty level (price 0), or a price near the last
    price (``ref``; any positive price when nothing traded yet) and a whole, non-negative size."""
    if p == 0:
        return True
    return (ref <= 0 or BOOK_LO * ref <= p <= BOOK_HI * ref) and q >= 0 and q == int(q)


def book_columns(ref: float, v: list[float], mid: int) -> int:
    """Offset of the price column in a level-1 book: 1 for the documented (size, price) pairs, 0
    for (price, size) when only that reading fits the prices (counted)."""
    if plausible_level(ref, v[5], v[4]) and plausible_level(ref, v[mid + 1], v[mid]):
        return 1
    if plausible_level(ref, v[4], v[5]) and plausible_level(ref, v[mid], v[mid + 1]):
        metrics.BOOK_REORIENTED.labels("jvquant", "price/size columns").inc()
        return 0
    return 1


def plausible_average(avg: float, price: float) -> bool:
    r = avg / price
    (lo1, hi1), (lo10, hi10), (lo100, hi100) = AVERAGE_WINDOWS
    return lo1 <= r <= hi1 or lo10 <= r <= hi10 or lo100 <= r <= hi100


def readable_orders(price: float, f5: float, f6: float) -> tuple[bool, bool]:
    """Whether (volume, amount) and (amount, volume) give a plausible average price."""
    if not (price > 0 and f5 > 0 and f6 > 0):
        return False, False
    return plausible_average(f6 / f5, price), plausible_average(f5 / f6, price)


def amount_volume(state: DecoderState, symbol: str, market: str, price: float, f5: float,
                  f6: float) -> tuple[float, float, str]:
    """(amount, volume, field_order) for lv1 fields 5/6; see the module docstring."""
    decided = state.lv1_order.get(symbol)
    va, av = readable_orders(price, f5, f6)
    if va != av:  # the numbers tell
        told = VOLUME_AMOUNT if va else AMOUNT_VOLUME
        if decided is None:
            decided = state.lv1_order[symbol] = told
        elif told != decided:
            metrics.LV1_ORDER_CONTRADICTIONS.labels("jvquant").inc()
    order = decided or DEFAULT_ORDER[market]
    return (f6, f5, order) if order == VOLUME_AMOUNT else (f5, f6, order)


def lv10(em: Emitter, state: DecoderState, code: str, symbol: str, market: str, payload: str,
         bad: list[BadRecord]) -> None:
    for piece in split_pieces("lv10", code, payload, MAX_SNAPSHOTS_PER_ROW):
        f = piece.split(",")
        n = len(f)
        tail = protocol.LV10_TAIL_FIELDS
        check_count("lv10", code, n, tail + 2, tail + 2 + MAX_NAME_COMMAS)
        check_name(",".join(f[1:n - tail]), code)
        v = floats(f[n - tail:], "lv10")  # price, last_close, amount, volume, 4 blocks of 10
        ref = v[0] if v[0] > 0 else v[1]
        bp, bq, ap, aq = v[4:14], v[14:24], v[24:34], v[34:44]
        if not book_reading_ok(ref, bp, bq, ap, aq) and book_reading_ok(ref, bq, bp, aq, ap):
            bp, bq, ap, aq = bq, bp, aq, ap
        em.depth(symbol, code, when(em, f[0]), levels(bp, bq), levels(ap, aq))


def book_reading_ok(ref: float, bp: list[float], bq: list[float], ap: list[float], aq: list[float]) -> bool:
    lo, hi = ref * 0.5, ref * 1.5
    for p in bp + ap:
        if p != 0 and not lo <= p <= hi:
            return False
    for q in bq + aq:
        if q < 0 or q != int(q):
            return False
    return True


def lv2(em: Emitter, state: DecoderState, code: str, symbol: str, market: str, payload: str,
        bad: list[BadRecord]) -> None:
    at = 0
    for k, piece in enumerate(split_pieces("lv2", code, payload, MAX_RECORDS_PER_ROW)):
        mark = len(em.out)
        try:
            lv2_record(em, code, symbol, market, piece)
        except ParseError as exc:
            del em.out[mark:]
            bad.append((k, at, piece, exc))
        at += len(piece) + 1


def lv2_record(em: Emitter, code: str, symbol: str, market: str, piece: str) -> None:
    f = piece.split(",")
    n = len(f)
    session = None
    clock: bool | None
    if market == "us":  # time, session, id, price, vol[, price, vol...]
        if n < protocol.US_LV2_FIELDS or (n - 3) % 2:
            raise ParseError(f"lv2 field count: {code} has {n} fields, time,session,id,price,vol expected")
        session = f[1].strip().upper()
        if not session.isalpha():
            raise ParseError(f"lv2 {code}: session {f[1][:8]!r} is not PRE/RTH/AFT")
        stamp, trade_id, first, clock = f[0], f[2], 3, None
    else:
        if market == "cn":  # documented: exactly time,id,price,vol (either of the first two first)
            if n != protocol.LV2_FIELDS:
                check_count("lv2", code, n, protocol.LV2_FIELDS, protocol.LV2_FIELDS)
        elif n < 4 or n % 2:  # HK: time,id,price,vol[,price,vol...]
            raise ParseError(f"lv2 field count: {code} has {n} fields, time,id,price,vol[,price,vol] expected")
        clock = True
        if is_clock(f[0]):
            stamp, trade_id = f[0], f[1]
        elif is_clock(f[1]):  # the documents' later records: id,time,price,vol
            stamp, trade_id = f[1], f[0]
        elif market == "cn":
            raise ParseError(f"lv2 {code}: no HH:MM:SS[.fff] time in {piece[:40]!r}")
        else:  # HK time format undocumented: the event-time window guards against an id read as a time
            stamp, trade_id, clock = f[0], f[1], False
        first = 2
    event = when(em, stamp, clock, market)
    if n == 4:  # the common case: one trade per record
        price, vol = floats(f[2:], "lv2")
        if price == 0:  # not a trade (e.g. a cancellation): nothing to publish
            metrics.SKIPPED.labels("jvquant", "lv2 zero price").inc()
        elif vol < 0:
            raise ParseError(f"lv2 {code}: volume {vol} is negative")
        else:
            em.tick(symbol, code, event, price, vol, trade_id=trade_id, session=session)
        return
    v = floats(f[first:], "lv2")
    for k in range(0, n - first, 2):
        price, vol = v[k], v[k + 1]
        if price == 0:  # not a trade (e.g. a cancellation): nothing to publish
            metrics.SKIPPED.labels("jvquant", "lv2 zero price").inc()
            continue
        if vol < 0:
            raise ParseError(f"lv2 {code}: volume {vol} is negative")
        em.tick(symbol, code, event, price, vol, trade_id=trade_id if k == 0 else f"{trade_id}#{k // 2}",
                session=session)


ROW_PARSERS = {"lv1": lv1, "lv2": lv2, "lv10": lv10}
