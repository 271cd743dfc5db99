"""Infoway websocket protocol facts: request codes, pacing, kline types, and what a careful
client does with every error code.

Pacing: the provider's own sample client waits 5 s between subscribe requests, and the
documented budget is 60 client frames per minute, heartbeats included (protocols.md §2.6).

Error frames arrive as ``{"traceId":..,"code":N,"msg":..}``, sometimes behind a plain-text
``Subscribe fail:`` prefix, which may also be followed by prose only (protocols.md §2.5).
:data:`ERRORS` is the one table that maps every code to an :class:`Action`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

# client requests; each subscribe is acknowledged with its own code + 1
SUBSCRIBE_TRADE, SUBSCRIBE_DEPTH, SUBSCRIBE_KLINE = 10000, 10003, 10006
ACK_TRADE, ACK_DEPTH, ACK_KLINE = 10001, 10004, 10007
UNSUBSCRIBE_TRADE, UNSUBSCRIBE_DEPTH, UNSUBSCRIBE_KLINE = 11000, 11001, 11002
ACK_UNSUBSCRIBE = 11010
HEARTBEAT, ACK_HEARTBEAT = 10010, 10011  # production does not answer heartbeats
# server pushes
PUSH_TRADE, PUSH_DEPTH, PUSH_KLINE = 10002, 10005, 10008
ACKS = frozenset({ACK_TRADE, ACK_DEPTH, ACK_KLINE, ACK_HEARTBEAT, ACK_UNSUBSCRIBE})
PUSH_CODES = frozenset({PUSH_TRADE, PUSH_DEPTH, PUSH_KLINE})
WELCOME = 200
SUBSCRIBE_FAIL_PREFIX = "Subscribe fail:"
#: the plain-text line the stock channel sends before the welcome
GREETING_PREFIX = "You have permission"

# error codes a client (and the simulator) names; every code is in ERRORS below
RATE_LIMITED = 501  # more than FRAMES_PER_MINUTE client frames in a minute
OVER_QUOTA = 429  # the plan's request rate, also the HTTP status of that answer
TOO_MANY_CODES = 505
PARAM_ERROR, PARAM_LOST = 506, 507
WRONG_URL = 514
NOT_JSON = 515


@dataclass(frozen=True)
class KlineType:
    number: int  # ``type`` in a subscription, ``ty`` in a flat push
    interval: str  # the name records and settings use
    seconds: int  # nominal length: where a bar starts (months, quarters, years counted as 30, 90, 365 days)
    longest_ms: int  # the longest such a bar lasts (31, 92, 366 days): how far before a window its start may be


_MIN, _DAY = 60_000, 86_400_000
KLINES: tuple[KlineType, ...] = (
    KlineType(1, "1m", 60, _MIN), KlineType(2, "5m", 300, 5 * _MIN), KlineType(3, "15m", 900, 15 * _MIN),
    KlineType(4, "30m", 1800, 30 * _MIN), KlineType(5, "1h", 3600, 60 * _MIN), KlineType(6, "2h", 7200, 120 * _MIN),
    KlineType(7, "4h", 14400, 240 * _MIN), KlineType(8, "1d", 86400, _DAY), KlineType(9, "1w", 604800, 7 * _DAY),
    KlineType(10, "1M", 2592000, 31 * _DAY), KlineType(11, "1Q", 7776000, 92 * _DAY),
    KlineType(12, "1y", 31536000, 366 * _DAY),
)
KLINE_BY_NUMBER = {k.number: k for k in KLINES}
#: kline interval names -> Infoway kline type numbers; ``1q`` is the settings' older spelling of ``1Q``
KLINE_TYPES = {**{k.interval: k.number for k in KLINES}, "1q": 11}

#: seconds between two subscribe requests, as the provider's sample client waits
SUBSCRIBE_INTERVAL_SECONDS = 5.0
FRAMES_PER_MINUTE = 60
HEARTBEAT_SECONDS = 30.0


class Action(enum.Enum):
    STOP = "stop"  # retrying cannot help: end with a message naming the cause and the fix
    BACK_OFF = "back off"  # the provider asks us to slow down: wait out the limit window, then reconnect
    RECONNECT = "reconnect"  # transient: reconnect with the usual backoff


@dataclass(frozen=True)
class ErrorRule:
    action: Action
    cause: str
    fix: str = ""

    def message(self, code: int, text: str) -> str:
        out = f"Infoway error {code} ({self.cause}): {text}"
        return f"{out}. Fix: {self.fix}" if self.fix else out


_ASK_PLAN = "check the plan of this API key at infoway.io"
#: every documented code: the websocket document's (500, 501, 505, 506, 515, 513, 401, 404, 429, 499,
#: 524) and the SDK's list (502-521)
ERRORS: dict[int, ErrorRule] = {
    500: ErrorRule(Action.RECONNECT, "server error (服務異常)"),
    501: ErrorRule(Action.BACK_OFF, "more than 60 requests in a minute (請求頻率超出一分鐘限制)"),
    502: ErrorRule(Action.STOP, "daily request quota used up", "wait for tomorrow or " + _ASK_PLAN),
    503: ErrorRule(Action.STOP, "kline count over the limit", "subscribe fewer kline types or codes"),
    504: ErrorRule(Action.STOP, "depth subscription over the limit", "subscribe depth for fewer codes"),
    505: ErrorRule(Action.STOP, "too many codes for this connection (產品數量超出限制)",
                  "pass fewer --codes, split them over several producers, or " + _ASK_PLAN),
    506: ErrorRule(Action.STOP, "request parameter missing or wrong (參數缺失)",
                  "the subscribe request is malformed: check the --codes spelling (600519.SH, AAPL.US, BTCUSDT)"),
    507: ErrorRule(Action.STOP, "request parameter lost", "the subscribe request lacks data: report a producer bug"),
    508: ErrorRule(Action.STOP, "API key expired", "renew the key and set INFOWAY_API_KEY"),
    509: ErrorRule(Action.STOP, "API key invalid", "set INFOWAY_API_KEY to a valid key"),
    510: ErrorRule(Action.STOP, "API key empty", "set INFOWAY_API_KEY"),
    511: ErrorRule(Action.STOP, "API key blacklisted", "contact Infoway support"),
    512: ErrorRule(Action.STOP, "too many connections for this key", "stop other producers using the key or "
                  + _ASK_PLAN),
    513: ErrorRule(Action.RECONNECT, "websocket heartbeat timeout (Websocket心跳超時)"),
    514: ErrorRule(Action.STOP, "wrong websocket URL", "check INFOWAY_WS_URL and INFOWAY_BUSINESS"),
    515: ErrorRule(Action.STOP, "request is not JSON (參數不是json格式)", "report a producer bug"),
    516: ErrorRule(Action.BACK_OFF, "account-wide subscription quota reached"),
    517: ErrorRule(Action.STOP, "API key missing at handshake", "set INFOWAY_API_KEY"),
    518: ErrorRule(Action.STOP, "API key unknown at handshake", "set INFOWAY_API_KEY to a valid key"),
    519: ErrorRule(Action.STOP, "no permission for this market", _ASK_PLAN + " and INFOWAY_BUSINESS"),
    520: ErrorRule(Action.STOP, "bad product code or already connected", "check --codes and other producers"),
    521: ErrorRule(Action.STOP, "maximum connections reached", "stop other producers using the key or " + _ASK_PLAN),
    401: ErrorRule(Action.STOP, "authentication error: API key wrong or not in the header/query (認證錯誤)",
                   "set INFOWAY_API_KEY to a valid key"),
    404: ErrorRule(Action.STOP, "API endpoint does not exist (API接口不存在)", "check INFOWAY_WS_URL"),
    429: ErrorRule(Action.BACK_OFF, "request rate over this plan's quota (請求頻率限制)",
                   "lower the request rate or " + _ASK_PLAN),
    499: ErrorRule(Action.RECONNECT, "client closed the request: unstable network (客户端主動中斷)"),
    524: ErrorRule(Action.RECONNECT, "origin server timeout behind the proxy, recovers quickly (源服務器連接超時)"),
}
#: a ``Subscribe fail:`` followed by prose only: wrong business or a market the plan does not include
SUBSCRIBE_FAIL = ErrorRule(Action.STOP, "subscription refused", "check INFOWAY_BUSINESS and " + _ASK_PLAN)


@dataclass(frozen=True)
class ErrorFrame:
    code: int | None
    text: str
    rule: ErrorRule

    def message(self) -> str:
        return self.rule.message(self.code, self.text) if self.code is not None else \
            f"Infoway {self.rule.cause}: {self.text}. Fix: {self.rule.fix}"


def _json(text: str) -> dict | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


_PUSH_HEADS = tuple(f'{{"code":{c},'.encode() for c in sorted(PUSH_CODES))


def error_of(frame: bytes | str) -> ErrorFrame | None:
    """The error a server frame reports, or None (pushes, acks, the welcome, the greeting)."""
    if isinstance(frame, (bytes, bytearray)) and frame.startswith(_PUSH_HEADS):
        return None  # the hot path: a push, as the server writes it (code first)
    text = frame.decode("utf-8", "replace") if isinstance(frame, (bytes, bytearray)) else frame
    stripped = text.strip()
    if stripped.startswith(SUBSCRIBE_FAIL_PREFIX):
        rest = stripped[len(SUBSCRIBE_FAIL_PREFIX):].strip()
        body = _json(rest) if rest.startswith("{") else None
        if body is None or not isinstance(body.get("code"), int):
            return ErrorFrame(None, stripped[:200], SUBSCRIBE_FAIL)
        return _from_body(body, stripped)
    if not stripped.startswith("{"):
        return None
    body = _json(stripped)
    if body is None:
        return None
    return _from_body(body, stripped)


def _from_body(body: dict, text: str) -> ErrorFrame | None:
    code = body.get("code")
    if not isinstance(code, int) or code in PUSH_CODES or code in ACKS or code == WELCOME:
        return None
    rule = ERRORS.get(code)
    if rule is None:
        if "traceId" not in body and code < 400:
            return None
        rule = ErrorRule(Action.RECONNECT, "undocumented error code")
    msg = body.get("msg") or body.get("message") or text[:200]
    return ErrorFrame(code, str(msg), rule)


def is_push(frame: bytes) -> bool:
    if frame.startswith(_PUSH_HEADS):
        return True
    if not frame.startswith(b"{"):
        return False
    body = _json(frame.decode("utf-8", "replace"))
    return body is not None and body.get("code") in PUSH_CODES


def push_codes(frame: bytes) -> set[str]:
    """The codes (``s``) a push frame carries, for the producer's per-subscription liveness; an
    object ``data`` or a list of them (kline pushes), anything else names none."""
    body = _json(frame.decode("utf-8", "replace"))
    data = body.get("data") if body is not None else None
    items = data if isinstance(data, list) else [data]
    return {item["s"] for item in items if isinstance(item, dict) and isinstance(item.get("s"), str)}


# ---- REST kline history (seed 003, protocols.md §2.1, §2.6, §2.7) ------------------------------
# seed 003 prints the endpoint as GET https://data.infoway.io/stock/batch_kline/{klineType}/{klineNum}/{codes}
# (the first segment is the channel, as on the websocket) and one kline row
# {"t":"1751958000","h":..,"o":..,"l":..,"c":..,"v":..,"vw":..,"pc":"0.00%","pca":..}: t in epoch
# SECONDS as a string (older pages print 13 digits: read both). The envelope around the rows,
# {"ret":200,"msg":"success","traceId":..,"data":[{"s":code,"respList":[rows]}]}, and the apiKey
# header come from protocols.md §2.1/§2.7 (some answers say "code" instead of "ret").
REST_KLINE_PATH = "/{business}/batch_kline/{kline_type}/{kline_num}/{codes}"
REST_KEY_HEADER = "apiKey"
REST_OK = 200
REST_MAX_KLINES_ONE_CODE = 500  # more -> 503
REST_MAX_KLINES_SEVERAL_CODES = 2  # several codes in one call get 2 bars each (-> 506 in the SDK)
#: seconds of a kline type, for how many bars a gap needs (month and longer: never backfilled)
KLINE_TYPE_SECONDS = {1: 60, 2: 300, 3: 900, 4: 1800, 5: 3600, 6: 7200, 7: 14400, 8: 86400, 9: 604800}


def rest_base(ws_url: str) -> str:
    """REST base of a websocket endpoint: wss://data.infoway.io/ws -> https://data.infoway.io."""
    scheme, _, rest = ws_url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}"


def batch_kline_path(business: str, kline_type: int, kline_num: int, codes: list[str] | str) -> str:
    joined = codes if isinstance(codes, str) else ",".join(codes)
    return REST_KLINE_PATH.format(business=business, kline_type=kline_type, kline_num=kline_num, codes=joined)


@dataclass(frozen=True)
class KlineRequest:
    business: str
    kline_type: int
    kline_num: int
    codes: tuple[str, ...]


def parse_batch_kline_path(path: str) -> KlineRequest:
    """The request a batch_kline path asked (raises ValueError when it is not one)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) != 5 or parts[1] != "batch_kline":
        raise ValueError(f"not a batch_kline path: {path[:80]!r}")
    return KlineRequest(parts[0], int(parts[2]), int(parts[3]), tuple(c for c in parts[4].split(",") if c))


def kline_requests(business: str, kline_type: int, codes: list[str], gap_start_ms: int,
                   gap_end_ms: int) -> list[str]:
    """The batch_kline paths that cover a gap: every bar from the one holding ``gap_start`` to the
    one holding ``gap_end``. One call for all codes while 2 bars are enough, else one per code."""
    seconds = KLINE_TYPE_SECONDS[kline_type]
    first = gap_start_ms // 1000 // seconds
    last = gap_end_ms // 1000 // seconds
    num = min(REST_MAX_KLINES_ONE_CODE, last - first + 1)
    if num <= REST_MAX_KLINES_SEVERAL_CODES:
        return [batch_kline_path(business, kline_type, REST_MAX_KLINES_SEVERAL_CODES, codes)]
    return [batch_kline_path(business, kline_type, num, [code]) for code in codes]


def rest_rows(body: bytes | str) -> list[tuple[str, list[dict]]]:
    """(code, kline rows) of a batch_kline answer; ValueError names what is wrong (an error answer,
    a rate-limit answer, not JSON)."""
    try:
        obj = json.loads(body)
    except ValueError:
        raise ValueError("batch_kline answer is not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("batch_kline answer is not an object")
    if "detail" in obj and "data" not in obj:
        raise ValueError(f"batch_kline refused: {str(obj['detail'])[:80]}")  # rate limit as HTTP 200
    status = obj.get("ret", obj.get("code"))
    if status is not None and status != REST_OK:
        raise ValueError(f"batch_kline error {status}: {str(obj.get('msg') or obj.get('message'))[:80]}")
    data = obj.get("data")
    items = data if isinstance(data, list) else [data] if isinstance(data, dict) else None
    if items is None:
        raise ValueError("batch_kline answer has no data")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("s"), str):
            raise ValueError("batch_kline data item without a code 's'")
        rows = item.get("respList")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"batch_kline item {item['s'][:20]!r} has no respList of rows")
        out.append((item["s"], rows))
    return out
