"""Infoway simulator driven by websocket-client."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import pytest
import websocket

from marketpipe.simulators.runner import Running, run
from tests.support.paths import CONFORMANCE

KEY = "iw-key"


@pytest.fixture
def iw() -> Iterator[Running]:
    with run("infoway", rate=300, api_key=KEY, heartbeat_timeout=1.0) as r:
        yield r


def connect(iw: Running, business: str = "crypto", key: str = KEY) -> websocket.WebSocket:
    ws = websocket.create_connection(f"{iw.url}?business={business}&apikey={key}", timeout=5)
    first = ws.recv()
    if business == "stock":
        assert first == "You have permission to subscribe to all market data"
        first = ws.recv()
    assert json.loads(first) == {"code": 200, "msg": "ws connect success"}
    return ws


def until(ws: websocket.WebSocket, pred: Callable[[Any], bool], limit: int = 2000) -> Any:
    """Next JSON frame satisfying pred (pushes in between are skipped)."""
    for _ in range(limit):
        raw = ws.recv()
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = raw
        if pred(msg):
            return msg
    pytest.fail("frame never came")


def closes(ws: websocket.WebSocket, limit: int = 20000) -> bool:
    """True once the server closes (close frame or EOF); pushes before that are skipped."""
    for _ in range(limit):
        try:
            op, _ = ws.recv_data()
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return True
        if op == websocket.ABNF.OPCODE_CLOSE:
            return True
    return False


def code_is(code: int) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, dict) and m.get("code") == code


def test_bad_key_is_rejected_with_401_at_upgrade(iw: Running) -> None:
    for key in ("wrong", ""):
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            websocket.create_connection(f"{iw.url}?business=crypto&apikey={key}", timeout=5)
        assert exc.value.status_code == 401
        assert json.loads(exc.value.resp_body) == {"message": "Invalid API key in request"}


def test_subscribe_acks_echo_trace_and_pushes_have_documented_shapes(iw: Running) -> None:
    ws = connect(iw, "stock")
    try:
        ws.send(json.dumps({"code": 10000, "trace": "t-trade", "data": {"codes": "600519.SH,AAPL.US", "includeTy": True}}))
        assert until(ws, code_is(10001)) == {"code": 10001, "trace": "t-trade", "msg": "ok"}
        ws.send(json.dumps({"code": 10003, "trace": "t-depth", "data": {"codes": "600519.SH"}}))
        assert until(ws, code_is(10004))["trace"] == "t-depth"
        ws.send(json.dumps({"code": 10006, "trace": "t-k", "data": {"arr": [{"type": 1, "codes": "AAPL.US"}]}}))
        assert until(ws, code_is(10007))["trace"] == "t-k"
        trade = until(ws, code_is(10002))["data"]
        assert set(trade) == {"p", "s", "t", "td", "v", "vw", "ty"} and trade["s"] in ("600519.SH", "AAPL.US")
        assert isinstance(trade["t"], int) and trade["t"] > 1e12 and trade["td"] in (0, 1, 2)
        assert float(trade["vw"]) == pytest.approx(float(trade["p"]) * float(trade["v"]), rel=1e-6)
        depth = until(ws, code_is(10005))["data"]
        for side in ("a", "b"):
            prices, qtys = depth[side]
            assert len(prices) == len(qtys) > 0 and all(isinstance(x, str) for x in prices + qtys)
        assert float(depth["a"][0][0]) > float(depth["b"][0][0])
        # the Infoway websocket document: {"s":…, "respList":[{t,h,o,l,c,v,vw,pc,pca}]}
        kline = until(ws, code_is(10008))["data"]
        [bar] = kline["respList"]
        assert kline["s"] == "AAPL.US" and list(bar) == ["t", "h", "o", "l", "c", "v", "vw", "pc", "pca"]
        assert isinstance(bar["t"], str) and int(bar["t"]) % 60 == 0 and bar["pc"].endswith("%")
        ws.send(json.dumps({"code": 11000, "trace": "u1", "data": {"codes": "600519.SH"}}))
        assert until(ws, code_is(11010)) == {"code": 11010, "trace": "u1", "msg": "ok"}
        ws.send(json.dumps({"code": 11000, "trace": "u2"}))  # no codes: everything
        until(ws, code_is(11010))
        ws.send(json.dumps({"code": 11002, "trace": "u3", "data": {"codes": "AAPL.US", "klineTypes": "1"}}))
        until(ws, code_is(11010))
        ws.send(json.dumps({"code": 11001, "trace": "u4"}))
        until(ws, code_is(11010))
        ws.settimeout(0.4)
        with pytest.raises(websocket.WebSocketTimeoutException):
            while True:  # reads what was in flight, then nothing more
                ws.recv()
    finally:
        ws.close()


def test_more_than_60_frames_a_minute_gets_501_and_close(iw: Running) -> None:
    ws = connect(iw)
    try:
        for i in range(61):
            ws.send(json.dumps({"code": 10010, "trace": f"h{i}"}))
        err = until(ws, code_is(501))
        assert err["traceId"] == "h60" and "60 times per minute" in err["msg"]
        assert closes(ws)
    finally:
        ws.close()


def test_no_heartbeat_closes_and_heartbeats_keep_alive(iw: Running) -> None:
    quiet, alive = connect(iw), connect(iw)
    try:
        start = time.monotonic()
        while time.monotonic() - start < 1.8:
            alive.send(json.dumps({"code": 10010, "trace": "hb"}))
            time.sleep(0.3)  # the scenario: a heartbeat every 0.3 s for 1.8 s
        assert closes(quiet)
        alive.send(json.dumps({"code": 10000, "trace": "still", "data": {"codes": "BTCUSDT"}}))
        assert until(alive, code_is(10001))["trace"] == "still"
    finally:
        quiet.close()
        alive.close()


def test_malformed_json_gets_515_and_heartbeat_reply_switch() -> None:
    with run("infoway", rate=0, heartbeat_reply=True) as r:
        ws = connect(r, key="anything")
        try:
            ws.send("{not json")
            assert until(ws, code_is(515))["code"] == 515
            ws.send(json.dumps({"code": 10010, "trace": "hb1"}))
            assert until(ws, code_is(10011)) == {"code": 10011, "trace": "hb1", "msg": "ok"}
            ws.send(json.dumps({"code": 10000, "trace": "x"}))
            assert until(ws, code_is(507))["traceId"] == "x"
        finally:
            ws.close()


def test_fault_rate_limit_sends_501_closes_and_refuses_with_429(iw: Running) -> None:
    ws = connect(iw)
    try:
        iw.sim.fault("rate_limit", 30)
        assert until(ws, code_is(501))["code"] == 501
        assert closes(ws)
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            connect(iw)
        assert exc.value.status_code == 429
        iw.sim.fault("clear")
        connect(iw).close()
    finally:
        ws.close()


def test_fault_reject_auth_garbage_drop(iw: Running) -> None:
    ws = connect(iw)
    try:
        iw.sim.fault("reject_auth", 30)
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            connect(iw)
        assert exc.value.status_code == 401
        iw.sim.fault("clear")
        ws.send(json.dumps({"code": 10000, "trace": "g", "data": {"codes": "BTCUSDT"}}))
        until(ws, code_is(10001))
        iw.sim.fault("garbage")
        garbage = until(ws, lambda m: isinstance(m, str))
        with pytest.raises(ValueError):
            json.loads(garbage)
        iw.sim.fault("drop")
        assert closes(ws)
    finally:
        ws.close()
    stats = iw.stats()
    assert stats["totals"]["garbage"] == 1 and stats["open_connections"] == 0


# ---- the simulator's error frames against the conformance corpus -------------------------------
def corpus_action(frame: str) -> str:
    from marketpipe.providers.infoway import protocol as proto

    error = proto.error_of(frame)
    assert error is not None, frame
    return error.rule.action.value


def test_sim_error_frames_have_the_documented_shape_and_action() -> None:

    cases = json.loads((CONFORMANCE / "infoway" / "error_codes.json")
                       .read_text(encoding="utf-8"))["cases"]
    bodies = [(c["frame"].removeprefix("Subscribe fail: "), c["action"]) for c in cases]
    documented = {json.loads(body)["code"]: action for body, action in bodies if body.startswith("{")}
    with run("infoway", rate=0, max_codes=2, frame_limit=4) as r:
        ws = connect(r, key="anything")
        try:
            ws.send(json.dumps({"code": 10000, "trace": "t1", "data": {"codes": "BTCUSDT,ETHUSDT,XAUUSD"}}))
            refused = ws.recv()
            assert refused.startswith("Subscribe fail: {")
            body = json.loads(refused.partition("Subscribe fail: ")[2])
            assert set(body) == {"traceId", "code", "msg"} and body["code"] == 505 and body["traceId"] == "t1"
            assert corpus_action(refused) == documented[505] == "stop"
            ws.send("{not json")
            bad = ws.recv()
            assert set(json.loads(bad)) == {"traceId", "code", "msg"}
            assert corpus_action(bad) == documented[515] == "stop"
            for i in range(3):
                ws.send(json.dumps({"code": 10010, "trace": f"h{i}"}))
            limited = until(ws, code_is(501))
            assert corpus_action(json.dumps(limited, ensure_ascii=False)) == documented[501] == "back off"
        finally:
            ws.close()


def test_simulated_depth_with_a_as_the_bids_is_turned_round_by_the_decoder() -> None:
    # depth_sides="comments" sends what seed 002's comments say (a = 買盤); the decoder decides by the prices
    from marketpipe.processors.decode import RawFrame, decode
    from marketpipe.rawframe import RawMeta

    with run("infoway", rate=300, api_key=KEY, depth_sides="comments") as iw:
        ws = connect(iw)
        ws.send(json.dumps({"code": 10003, "trace": "t", "data": {"codes": "BTCUSDT"}}))
        push = until(ws, code_is(10005))
        ws.close()
    a, b = push["data"]["a"], push["data"]["b"]
    assert float(a[0][0]) < float(b[0][0])  # the lower prices under `a`: bids
    meta = RawMeta("infoway", "c", 1, 1, time.time_ns(), "text", "data")
    [d] = decode(RawFrame("infoway", json.dumps(push).encode(), meta))
    assert d.record["bids"][0]["price"] == float(a[0][0]) and d.record["asks"][0]["price"] == float(b[0][0])


def test_an_unknown_websocket_path_answers_404_and_the_producer_stops_on_it() -> None:
    from marketpipe.producers.session import Session, Stopped
    from marketpipe.providers.infoway.feed import InfowayFeed

    class Sink:
        def send(self, value: bytes, meta: Any) -> None:
            pass

    with run("infoway", rate=10, api_key=KEY) as iw:
        feed = InfowayFeed(iw.url.rstrip("/") + "/no-such-endpoint", KEY, "crypto", ["BTCUSDT"])
        session = Session(feed, Sink(), "c", seed=1, sleep=lambda s: setattr(session, "stopping", True))
        with pytest.raises(Stopped, match="404"):
            session.run()
