"""The Infoway producer as a careful client, on fake sockets and a fake clock (no real sleeps):
subscriptions paced like the provider's sample, every documented error code handled as the one
table says, no burst loop on 501, and the ``kline_types`` header."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket

from marketpipe.producers.session import AuthFailed, Backoff, RateLimited, Retry, Session, Stopped
from marketpipe.providers.infoway import protocol as proto
from marketpipe.providers.infoway.feed import InfowayFeed
from marketpipe.rawframe import RawMeta, parse_meta
from tests.support import paths

CONFORMANCE = paths.CONFORMANCE / "infoway"
SEEDS = paths.ROOT.parents[1] / "shared" / "reference" / "seeds"  # beside the worktrees, if present
SEED = next(SEEDS.glob("002_*"), None) if SEEDS.is_dir() else None
CASES = json.loads((CONFORMANCE / "error_codes.json").read_text(encoding="utf-8"))["cases"]
EXCEPTION = {"stop": Stopped, "back off": RateLimited, "reconnect": Retry}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeWs:
    def __init__(self, clock: Clock, answer: Any = None) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict]] = []
        self.answer = answer  # frame sent once all subscriptions arrived
        self.answered = False

    def send(self, data: str) -> None:
        self.sent.append((self.clock.now, json.loads(data)))

    def recv_data(self, control_frame: bool = False) -> tuple[int, bytes]:
        self.clock.now += 0.5
        if self.answer is not None and not self.answered:
            self.answered = True
            return websocket.ABNF.OPCODE_TEXT, self.answer.encode()
        raise websocket.WebSocketTimeoutException("quiet")

    def settimeout(self, _: float) -> None:
        pass

    connected = False  # as if the peer had closed: the session only releases the socket

    def shutdown(self) -> None:
        pass


def feed(clock: Clock, **kw: Any) -> InfowayFeed:
    return InfowayFeed("ws://x/ws", "key", "crypto", ["BTCUSDT", "ETHUSDT"], sleep=clock.sleep, clock=clock, **kw)


def subscribes(sent: list[tuple[float, dict]]) -> list[tuple[float, dict]]:
    return [(t, f) for t, f in sent if f["code"] in (proto.SUBSCRIBE_TRADE, proto.SUBSCRIBE_DEPTH,
                                                      proto.SUBSCRIBE_KLINE)]


# ---- pacing -----------------------------------------------------------------------------------
def test_subscriptions_wait_between_requests_like_the_documented_client() -> None:
    clock = Clock()
    f = feed(clock)
    ws = FakeWs(clock)
    f.on_open(ws, lambda *a: None)  # type: ignore[arg-type]
    times = [t for t, _ in subscribes(ws.sent)]
    assert [fr["code"] for _, fr in ws.sent] == [10000, 10003, 10006]
    assert [b - a for a, b in zip(times, times[1:])] == [5.0, 5.0]
    assert ws.sent[2][1]["data"] == {"arr": [{"type": 1, "codes": "BTCUSDT,ETHUSDT"}]}


def test_pacing_is_configurable_and_holds_across_a_reconnect() -> None:
    clock = Clock()
    f = feed(clock, pace_seconds=2.0)
    first, second = FakeWs(clock), FakeWs(clock)
    f.on_open(first, lambda *a: None)  # type: ignore[arg-type]
    f.on_open(second, lambda *a: None)  # type: ignore[arg-type]
    times = [t for t, _ in subscribes(first.sent + second.sent)]
    assert all(b - a >= 2.0 for a, b in zip(times, times[1:])), times


def test_a_resubscribe_sends_the_connections_requests_again_paced_and_within_the_frame_budget() -> None:
    clock = Clock()
    f = feed(clock)
    ws = FakeWs(clock)
    f.on_open(ws, lambda *a: None)  # type: ignore[arg-type]
    clock.now += 1.0  # the liveness watch acts one second after the last subscribe
    f.resubscribe(ws, ["ETHUSDT"])  # type: ignore[arg-type]
    sent = subscribes(ws.sent)
    # every code in every request: whether a request adds to the set or replaces it is undocumented
    assert [fr["code"] for _, fr in sent[3:]] == [10000, 10003, 10006]
    assert all(fr["data"].get("codes", "BTCUSDT,ETHUSDT") == "BTCUSDT,ETHUSDT" for _, fr in sent[3:])
    times = [t for t, _ in sent]
    assert all(b - a >= f.pace_seconds for a, b in zip(times, times[1:])), times
    # repeated re-subscribes never pass the 60-frames-a-minute budget (two frames kept spare)
    for _ in range(30):
        f.resubscribe(ws, ["ETHUSDT"])  # type: ignore[arg-type]
    times = [t for t, _ in ws.sent]
    assert max(sum(1 for u in times if t <= u < t + 60) for t in times) <= proto.FRAMES_PER_MINUTE - 2


def test_push_frames_name_their_codes_for_the_liveness_watch() -> None:
    f = feed(Clock())
    trade = b'{"code":10002,"data":{"s":"BTCUSDT","p":"1","v":"1","t":1}}'
    kline = b'{"code":10008,"data":[{"s":"ETHUSDT","respList":[]},{"s":"BTCUSDT","respList":[]}]}'
    assert f.codes_in(trade, "text") == {"BTCUSDT"}
    assert f.codes_in(kline, "text") == {"ETHUSDT", "BTCUSDT"}
    assert f.codes_in(b'{"code":10001,"msg":"ok"}', "text") == set()  # an ack names nothing
    assert f.watched_codes() == ("BTCUSDT", "ETHUSDT")


# ---- error codes ------------------------------------------------------------------------------
def test_the_printed_error_list_is_the_seed_verbatim_and_every_code_is_in_the_one_table() -> None:
    printed = (CONFORMANCE / "error_codes.txt").read_text(encoding="utf-8").splitlines()
    if SEED is not None:
        seed = SEED.read_text(encoding="utf-8")
        assert all(line in seed.splitlines() for line in printed)
    codes = [int(line.split(":")[0]) for line in printed]
    assert sorted(codes) == [401, 404, 429, 499, 500, 501, 505, 506, 513, 515, 524]
    assert all(code in proto.ERRORS for code in codes)
    assert {c["printed"] for c in CASES if c["printed"]} == set(printed)


@pytest.mark.parametrize("case", CASES, ids=[c["frame"][:40] for c in CASES])
def test_every_documented_error_frame_gets_its_action(case: dict) -> None:
    error = proto.error_of(case["frame"].encode())
    assert error is not None and error.rule.action.value == case["action"]
    with pytest.raises(EXCEPTION[case["action"]]) as exc:
        feed(Clock()).classify(case["frame"].encode(), "text")
    if case["action"] == "stop":
        assert "Fix:" in str(exc.value) and "\n" not in str(exc.value)


def test_401_frame_is_an_authentication_stop_and_pushes_acks_greeting_are_not_errors() -> None:
    with pytest.raises(AuthFailed, match="INFOWAY_API_KEY"):
        feed(Clock()).classify('{"traceId":"t","code":401,"msg":"認證錯誤"}'.encode(), "text")
    frames = paths.FRAMES
    f = feed(Clock())
    assert f.classify((frames / "infoway_trade.json").read_bytes().strip(), "text") == "data"
    assert f.classify(b'{"data":{"s":"BTCUSDT"},"code":10005}', "text") == "data"  # any key order
    for name in ("infoway_ack.json", "infoway_welcome.json", "infoway_greeting.txt"):
        assert f.classify((frames / name).read_bytes().strip(), "text") == "control"


def run_session(clock: Clock, answers: list[Any], f: InfowayFeed, monkeypatch: pytest.MonkeyPatch,
                connections: int) -> tuple[Session, list[FakeWs]]:
    sockets: list[FakeWs] = []

    class Sink:
        def send(self, value: bytes, meta: RawMeta) -> None:
            pass

    def connect(url: str, **_: Any) -> FakeWs:
        ws = FakeWs(clock, answers[min(len(sockets), len(answers) - 1)])
        if len(sockets) >= connections:
            session.stopping = True  # this one closes unused
        else:
            sockets.append(ws)
        return ws

    monkeypatch.setattr(websocket, "create_connection", connect)
    session = Session(f, Sink(), "c", clock=clock, wallclock=lambda: 1.79e9 + clock.now, sleep=clock.sleep,
                      backoff=Backoff(base=0.05), seed=1)
    session.run()
    return session, sockets


def test_501_waits_out_the_minute_and_never_bursts(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    f = feed(clock)
    rate = '{"traceId":"t2","code":501,"msg":"Request frequency exceed the limit：60 times per minute"}'
    _, sockets = run_session(clock, [rate], f, monkeypatch, connections=4)
    times = [t for ws in sockets for t, _ in subscribes(ws.sent)]
    assert len(times) >= 9
    assert all(b - a >= f.pace_seconds for a, b in zip(times, times[1:])), times
    gaps_after_501 = [sockets[i + 1].sent[0][0] - sockets[i].sent[-1][0] for i in range(len(sockets) - 1)]
    assert all(g >= 60 for g in gaps_after_501), gaps_after_501


@pytest.mark.parametrize("code", [505, 506, 515, 401])
def test_refusals_stop_instead_of_leaving_an_empty_connection(code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    frame = json.dumps({"traceId": "t", "code": code, "msg": "x"})
    with pytest.raises(Stopped, match="Fix:"):
        run_session(clock, [frame], feed(clock), monkeypatch, connections=5)


def test_429_backs_off(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    _, sockets = run_session(clock, ['{"traceId":"t","code":429,"msg":"請求頻率限制"}'], feed(clock), monkeypatch,
                             connections=2)
    assert sockets[1].sent[0][0] - sockets[0].sent[-1][0] >= 60


# ---- kline_types header -----------------------------------------------------------------------
def test_kline_types_header_names_what_the_connection_subscribed() -> None:
    clock = Clock()
    assert feed(clock).headers() == (("kline_types", "1"),)
    two = feed(clock, kline=["1m", "5m"])
    assert two.headers() == (("kline_types", "1,2"),)
    ws = FakeWs(clock)
    two.on_open(ws, lambda *a: None)  # type: ignore[arg-type]
    assert ws.sent[-1][1]["data"]["arr"] == [{"type": 1, "codes": "BTCUSDT,ETHUSDT"},
                                              {"type": 2, "codes": "BTCUSDT,ETHUSDT"}]
    assert feed(clock, channels=("trade",)).headers() == ()


def test_session_frames_carry_the_kline_types_header_after_the_standard_ones() -> None:
    got: list[RawMeta] = []

    class Sink:
        def send(self, value: bytes, meta: RawMeta) -> None:
            got.append(meta)

    clock = Clock()
    session = Session(feed(clock, kline=["1m", "5m"]), Sink(), "c")
    session.emit(b"{}", "text", "data")
    headers = got[0].headers()
    assert [k for k, _ in headers] == ["provider", "connection", "seq", "session", "recv_ns", "opcode", "frame",
                                       "kline_types"]
    assert dict(headers)["kline_types"] == b"1,2"
    assert parse_meta(headers).seq == 1


# ---- HTTP refusals at the websocket upgrade (seed 002's error table) ---------------------------
def refusing_server(status: int) -> tuple[Any, str]:
    """A local HTTP server answering every request (the websocket upgrade too) with ``status``."""
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = b'{"code":%d,"message":"Not Found"}' % status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"ws://127.0.0.1:{server.server_address[1]}/no-such-endpoint"


def test_http_404_at_the_upgrade_stops_with_the_reason_instead_of_retrying() -> None:
    # seed 002: "404:API接口不存在" — the endpoint does not exist; retrying the same URL cannot help
    server, url = refusing_server(404)
    sleeps: list[float] = []

    class Sink:
        def send(self, value: bytes, meta: RawMeta) -> None:
            pass

    f = InfowayFeed(url, "key", "crypto", ["BTCUSDT"])
    session = Session(f, Sink(), "c", backoff=Backoff(base=0.01), seed=1, connect_timeout=5,
                      sleep=lambda s: (sleeps.append(s), setattr(session, "stopping", len(sleeps) >= 3)))
    try:
        with pytest.raises(Stopped, match="404") as info:
            session.run()
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP 404" in str(info.value) and "INFOWAY_WS_URL" in str(info.value) and sleeps == []
