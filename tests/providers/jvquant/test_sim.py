"""jvQuant simulator driven by real clients: urllib for allocation, websocket-client for quotes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterator

import pytest
import websocket

from marketpipe.simulators.market import BY_CODE
from marketpipe.simulators.runner import Running, run

TOKEN = "tok-123"


@pytest.fixture
def jv(tmp_path: Path) -> Iterator[Running]:
    with run("jvquant", rate=400, api_key=TOKEN, seed=7, record=tmp_path / "sent.jsonl") as r:
        yield r


def allocate(base: str, token: str = TOKEN, path: str = "/query/server", market: str = "ab",
             kind: str = "websocket") -> tuple[int, dict]:
    url = f"{base}{path}?market={market}&type={kind}&token={token}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def connect(jv: Running, codes: str = "") -> websocket.WebSocket:
    status, body = allocate(jv.base_url)
    assert status == 200 and body["code"] == "0"
    ws = websocket.create_connection(f"{body['server']}?src=pip&token={TOKEN}", timeout=5)
    if codes:
        ws.send(f"add={codes}")
        op, reply = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_TEXT, reply
    return ws


def data_frames(ws: websocket.WebSocket, n: int, deadline_s: float = 5.0) -> list[list[str]]:
    """Inflate the next n binary frames into their rows."""
    out, end = [], time.monotonic() + deadline_s
    while len(out) < n and time.monotonic() < end:
        op, data = ws.recv_data()
        if op == websocket.ABNF.OPCODE_BINARY:
            out.append(zlib.decompress(data, -15).decode().split("\n"))
    assert len(out) == n, f"only {len(out)} data frames"
    return out


def swap_first(fields: list[str]) -> list[str]:
    return [fields[1], fields[0], *fields[2:]]


def trade_id(record: str) -> int:
    """The trade number of an lv2 record in either documented order (the field that is no time)."""
    first, second = record.split(",")[:2]
    return int(second if ":" in first else first)


def test_allocation_both_paths_string_code_and_trade_server(jv: Running) -> None:
    for path in ("/query/server", "/server"):
        status, body = allocate(jv.base_url, path=path)
        assert status == 200 and body["code"] == "0" and isinstance(body["code"], str)
        assert body["server"].startswith(f"ws://127.0.0.1:{jv.port}/")
    status, body = allocate(jv.base_url, kind="trade")
    assert body == {"code": "0", "server": jv.base_url}
    status, body = allocate(jv.base_url, token="wrong")
    assert status == 200 and body["code"] != "0" and body["msg"]
    status, body = allocate(jv.base_url, market="xx")
    assert body["code"] != "0" and body["msg"]


def test_commands_are_answered_with_text_and_track_subscriptions(jv: Running) -> None:
    ws = connect(jv)
    try:
        replies = []
        for cmd in ("add=lv1_600519,lv2_000001,lv10_300750", "del=lv2_000001", "list", "his", "all=", "list",
                    "bogus", "add=lv7_600519"):
            ws.send(cmd)
            # once something is subscribed its binary pushes may arrive before the next reply
            # (a loaded machine makes that likely): a reply is the next text frame
            op, data = ws.recv_data()
            while op == websocket.ABNF.OPCODE_BINARY:
                op, data = ws.recv_data()
            assert op == websocket.ABNF.OPCODE_TEXT
            text = data.decode()
            assert not text.startswith(("lv1_", "lv2_", "lv10_"))
            replies.append(text)
        assert "lv10_300750" in replies[2] and "lv1_600519" in replies[2] and "lv2_000001" not in replies[2]
        assert "lv2_000001" in replies[3]  # the account history keeps what was dropped
        assert "0 codes" in replies[5]
        assert "unknown" in replies[6] and "rejected" in replies[7]
    finally:
        ws.close()


def test_binary_pushes_are_raw_deflate_rows_with_documented_fields(jv: Running) -> None:
    ws = connect(jv, "lv1_600519,lv2_600519,lv10_600519,lv1_688981,lv2_688981,lv1_i000001")
    try:
        frames = data_frames(ws, 6)
    finally:
        ws.close()
    rows = [r for f in frames for r in f]
    assert any(len(f) > 1 for f in frames), "several rows per frame"
    seen = set()
    for row in rows:
        key, _, payload = row.partition("=")
        level, code = key.split("_", 1)
        seen.add(level)
        inst = BY_CODE[code]
        if level == "lv1":
            fields = payload.split(",")
            assert len(fields) == 26 and fields[1] == inst.name
            time.strptime(fields[0], "%H:%M:%S")
            volume, amount = int(fields[4]), float(fields[5])  # the jvQuant quote document: 成交量 then 成交额
            assert amount > float(fields[2]) * volume * 0.5
        elif level == "lv10":
            fields = payload.split(",")
            assert len(fields) == 46 and float(fields[3]) == inst.prev_close
            bid_prices = [float(p) for p in fields[6:16]]
            assert bid_prices == sorted(bid_prices, reverse=True)
        else:
            assert level == "lv2" and code != "i000001"
            for k, trade in enumerate(payload.split("|")):
                # the jvQuant document's packet example: first record time first, later ones id first
                t, tid, price, vol = trade.split(",") if k == 0 else swap_first(trade.split(","))
                hms, _, millis = t.partition(".")
                time.strptime(hms, "%H:%M:%S")
                assert len(millis) == 3 and millis.isdigit()
                down, up = inst.limits()
                assert down <= float(price) <= up and int(vol) % inst.lot == 0 and int(tid) > 0
    assert seen == {"lv1", "lv2", "lv10"}


def test_recorded_trades_match_what_the_client_received(jv: Running, tmp_path: Path) -> None:
    ws = connect(jv, "lv2_600519,lv2_000001")
    conn_id = ws.getheaders()["x-sim-connection"]
    got: list[tuple[str, int]] = []
    try:
        for frame in data_frames(ws, 5):
            for row in frame:
                key, _, payload = row.partition("=")
                got += [(key[4:], trade_id(t)) for t in payload.split("|")]
        jv.sim.fault("drop")  # flushes, then closes: everything recorded was received
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                op, data = ws.recv_data()
                if op == websocket.ABNF.OPCODE_BINARY:
                    for row in zlib.decompress(data, -15).decode().split("\n"):
                        key, _, payload = row.partition("=")
                        got += [(key[4:], trade_id(t)) for t in payload.split("|")]
    finally:
        ws.close()
    jv.sim.recorder.flush()
    lines = [json.loads(x) for x in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert {line["conn"] for line in lines} == {conn_id}
    recorded = [(r["code"], tid) for line in lines if line["type"] == "data" for r in line["rows"]
                for tid in r["trade_ids"]]
    assert recorded == got and len(got) > 0
    for code in ("600519", "000001"):
        ids = [tid for c, tid in got if c == code]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(1, len(seqs) + 1))
    assert jv.stats()["totals"]["trades"] == len(got)


def test_websocket_ping_is_answered(jv: Running) -> None:
    ws = connect(jv)
    try:
        ws.ping(b"hello")
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hello"
    finally:
        ws.close()


def test_bad_token_on_websocket_is_refused(jv: Running) -> None:
    server = allocate(jv.base_url)[1]["server"]
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(f"{server}?token=nope", timeout=5)
    assert exc.value.status_code == 401


def test_fault_stall_keeps_socket_open_without_data(jv: Running) -> None:
    ws = connect(jv, "lv1_600519")
    try:
        data_frames(ws, 1)
        jv.sim.fault("stall", 0.6)
        ws.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            while True:  # reads what was in flight, then the stall's silence
                ws.recv_data()
        ws.settimeout(5)
        assert data_frames(ws, 1)  # resumes on the same socket
    finally:
        ws.close()


def test_fault_garbage_sends_an_undecodable_binary_frame(jv: Running) -> None:
    ws = connect(jv, "lv1_600519")
    try:
        jv.sim.fault("garbage")
        for _ in range(200):
            op, data = ws.recv_data()
            if op == websocket.ABNF.OPCODE_BINARY:
                try:
                    zlib.decompress(data, -15)
                except zlib.error:
                    break
        else:
            pytest.fail("no garbage frame")
    finally:
        ws.close()
    assert jv.stats()["totals"]["garbage"] == 1


def test_fault_reject_auth_and_rate_limit_on_allocation(jv: Running) -> None:
    jv.sim.fault("reject_auth", 30)
    assert allocate(jv.base_url)[1]["code"] != "0"
    jv.sim.fault("clear")
    jv.sim.fault("rate_limit", 30)
    status, body = allocate(jv.base_url)
    assert status == 429 and body["code"] != "0"
    jv.sim.fault("clear")
    assert allocate(jv.base_url)[1]["code"] == "0"


def test_fault_restart_moves_the_server_and_the_old_address_refuses(jv: Running) -> None:
    old = allocate(jv.base_url)[1]["server"]
    ws = websocket.create_connection(f"{old}?token={TOKEN}", timeout=5)
    jv.sim.fault("restart")
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        for _ in range(100):
            ws.recv_data()
    new = allocate(jv.base_url)[1]["server"]
    assert new != old
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        websocket.create_connection(f"{old}?token={TOKEN}", timeout=5)
    assert exc.value.status_code == 404
    websocket.create_connection(f"{new}?token={TOKEN}", timeout=5).close()


def test_extra_routes_are_mounted_on_the_same_server() -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"code": "0", "msg": "trade"})

    with run("jvquant", extra_routes=lambda app: app.router.add_get("/login", hello)) as r:
        with urllib.request.urlopen(r.base_url + "/login", timeout=5) as resp:
            assert json.load(resp)["msg"] == "trade"


def test_high_rate_is_batched_into_few_large_frames() -> None:
    with run("jvquant", rate=20000, symbols=["600519", "000001"]) as r:
        ws = connect(r, "lv2_600519,lv2_000001")
        try:
            frames = data_frames(ws, 3)
        finally:
            ws.close()
    trades_per_frame = [sum(row.count("|") + 1 for row in f) for f in frames]
    assert max(trades_per_frame) > 100, trades_per_frame


@pytest.mark.parametrize("dialect", ["documented", "notes"])
def test_dialect_decides_the_pushed_shapes(dialect: str) -> None:
    from marketpipe.processors.decode.common import is_clock

    with run("jvquant", rate=400, symbols=["600519"], seed=1, dialect=dialect) as r:
        ws = connect(r, "lv1_600519,lv2_600519")
        try:
            rows = [row for f in data_frames(ws, 4) for row in f]
        finally:
            ws.close()
    lv1 = [row.split("=", 1)[1].split(",") for row in rows if row.startswith("lv1_")]
    lv2 = [row.split("=", 1)[1].split("|") for row in rows if row.startswith("lv2_")]
    assert lv1 and lv2
    volume_first = dialect == "documented"
    for f in lv1:
        assert (f[4].isdigit(), f[5].isdigit()) == (volume_first, not volume_first)
    several = [records for records in lv2 if len(records) > 1]
    assert several, "some rows batch several trades"
    for records in lv2:
        assert is_clock(records[0].split(",")[0])
        for rec in records[1:]:
            assert is_clock(rec.split(",")[1 if dialect == "documented" else 0])


def test_sim_command_line_passes_the_dialect() -> None:
    import argparse

    from marketpipe.cli import sim as sim_cli

    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers())
    assert sim_cli.options(parser.parse_args(["sim", "jvquant", "--dialect", "notes"]))["dialect"] == "notes"
    assert sim_cli.options(parser.parse_args(["sim", "infoway"]))["dialect"] == "documented"
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "infoway", "--dialect", "guess"])


def test_simulated_price_first_books_and_close_snapshots_decode_the_right_way() -> None:
    # the shapes of issue 18 through a real socket: lv1 books sent as (price, size), and the day's last
    # snapshot (15:00:03) re-sent at any hour; the decoder must turn the books round and never date a
    # snapshot more than 1 h after it arrived
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from marketpipe.market import tradingdays
    from marketpipe.processors.decode import DecoderState, RawFrame, decode
    from marketpipe.rawframe import RawMeta

    with run("jvquant", rate=400, api_key=TOKEN, seed=7, book_columns="price-first",
             close_snapshot="15:00:03") as jv:
        ws = connect(jv, "lv1_600519,lv1_000001")
        quotes, end, state = [], time.monotonic() + 5, DecoderState()
        while len(quotes) < 4 and time.monotonic() < end:
            op, data = ws.recv_data()
            if op != websocket.ABNF.OPCODE_BINARY:
                continue
            fields = zlib.decompress(data, -15).decode().split("\n")[0].split(",")
            assert fields[0].endswith("=15:00:03") and "." in fields[6] and "." not in fields[7], fields  # price, size
            meta = RawMeta("jvquant", "c", 1, 1, time.time_ns(), "binary", "data")
            quotes += [(meta.recv_ns, q) for q in decode(RawFrame("jvquant", data, meta), state) if q.schema == "Quote"]
        ws.close()
    assert len(quotes) >= 4
    for recv_ns, q in quotes:
        r = q.record
        assert 0 < r["bids"][0]["price"] <= r["asks"][0]["price"]
        assert 0.5 * r["last"] <= r["bids"][0]["price"] <= 1.5 * r["last"]
        assert r["bids"][0]["size"] == int(r["bids"][0]["size"])
        assert r["event_time"] <= recv_ns // 1_000_000 + 3600 * 1000
        when = datetime.fromtimestamp(r["event_time"] / 1000, ZoneInfo("Asia/Shanghai"))
        assert when.strftime("%H:%M:%S") == "15:00:03" and tradingdays.is_a_share_trading_day(when.date())
