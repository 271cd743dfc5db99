"""Jin10 (Engine.IO v3 / socket.io) simulator driven by urllib and websocket-client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Iterator

import pytest
import websocket

from marketpipe.simulators.runner import Running, run

SUBSCRIBE = '42["setAdvSubscription",{"list":["XAUUSD","SH1A0001","EURUSD","NOPE"]}]'


@pytest.fixture
def j10() -> Iterator[Running]:
    # free-form polling clients: the document's sequence is checked in test_conformance_jin10.py
    with run("jin10", rate=300, check_sequence=False) as r:
        yield r


def split_payload(body: str) -> list[str]:
    """Independent reading of an EIO3 text payload: ``<chars>:<packet>`` repeated, nothing left over."""
    out = []
    while body:
        n, _, rest = body.partition(":")
        assert n.isdigit(), body[:40]
        out.append(rest[:int(n)])
        assert len(out[-1]) == int(n)
        body = rest[int(n):]
    return out


def http(url: str, data: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data.encode() if data is not None else None,
                                 method="POST" if data is not None else "GET",
                                 headers={"content-type": "text/plain;charset=UTF-8"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def poll_url(r: Running, sid: str | None = None) -> str:
    url = f"{r.base_url}/socket.io/?EIO=3&transport=polling&t=PZx9a-b"
    return url + (f"&sid={sid}" if sid else "")


def handshake(r: Running) -> tuple[str, dict]:
    status, body = http(poll_url(r))
    assert status == 200
    packets = split_payload(body)
    assert len(packets) == 1 and packets[0][0] == "0"
    info = json.loads(packets[0][1:])
    assert http(poll_url(r, info["sid"])) == (200, "2:40")  # the connect packet waits for the next GET
    return info["sid"], info


def subscribe(r: Running, sid: str) -> None:
    assert http(poll_url(r, sid), f"{len(SUBSCRIBE)}:{SUBSCRIBE}") == (200, "ok")


def test_handshake_payload_framing_and_new_sid_each_time(j10: Running) -> None:
    status, body = http(poll_url(j10))
    first = body[:body.index(":")]
    packet = body[len(first) + 1:len(first) + 1 + int(first)]
    assert len(body) == len(first) + 1 + int(first) and packet.endswith("}")
    info = json.loads(packet[1:])
    assert info["upgrades"] == ["websocket"] and (info["pingInterval"], info["pingTimeout"]) == (25000, 60000)
    assert handshake(j10)[0] != handshake(j10)[0] != info["sid"]


def test_polling_client_gets_quotes_with_character_length_prefixes(j10: Running) -> None:
    sid, _ = handshake(j10)
    subscribe(j10, sid)
    quotes: list[dict] = []
    for _ in range(20):
        status, body = http(poll_url(j10, sid))
        assert status == 200
        for packet in split_payload(body):
            if packet.startswith("42"):
                event, data = json.loads(packet[2:])
                assert event == "quote"
                quotes.append(data)
        if {q["code"] for q in quotes} >= {"XAUUSD", "SH1A0001"}:
            break
    names = {q["code"]: q["name"] for q in quotes}
    assert names["SH1A0001"] == "上证指数" and names["XAUUSD"] == "现货黄金"
    assert set(names) <= {"XAUUSD", "SH1A0001", "EURUSD"}
    q = quotes[-1]
    assert set(q) == {"code", "name", "last", "open", "high", "low", "prev_close", "time"}
    assert q["low"] <= q["last"] <= q["high"] and q["time"] > 1e12
    # the Chinese names make byte and character lengths differ: a byte-counting parser would break
    assert any(len(n.encode()) != len(n) for n in names.values())


def test_eio_errors(j10: Running) -> None:
    status, body = http(poll_url(j10, "nope"))
    assert status == 400 and json.loads(body) == {"code": 1, "message": "Session ID unknown"}
    status, body = http(f"{j10.base_url}/socket.io/?EIO=4&transport=polling")
    assert status == 400 and json.loads(body)["code"] == 5
    assert http(poll_url(j10, "nope"), "1:2")[0] == 400


def test_probe_upgrade_ping_pong_and_quotes_over_websocket(j10: Running) -> None:
    sid, _ = handshake(j10)
    subscribe(j10, sid)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{j10.port}/socket.io/?EIO=3&transport=websocket&sid={sid}", timeout=5)
    try:
        ws.send("2probe")
        assert ws.recv() == "3probe"
        ws.send("5")
        ws.send("2")
        got_pong, events = False, []
        for _ in range(500):
            msg = ws.recv()
            if msg == "3":
                got_pong = True
            elif msg.startswith("42"):
                events.append(json.loads(msg[2:]))
            if got_pong and len(events) >= 3:
                break
        assert got_pong and all(e[0] == "quote" for e in events)
        assert http(poll_url(j10, sid))[0] == 400  # polling is over for this session
    finally:
        ws.close()


def test_session_dropped_without_ping_but_kept_with_pings() -> None:
    with run("jin10", rate=0, ping_interval_ms=300, ping_timeout_ms=300, check_sequence=False) as r:
        quiet, _ = handshake(r)
        alive, _ = handshake(r)
        end = time.monotonic() + 1.2
        while time.monotonic() < end:
            assert http(poll_url(r, alive), "1:2") == (200, "ok")
            assert "3" in split_payload(http(poll_url(r, alive))[1])
            time.sleep(0.15)  # the scenario: a client pinging every 0.15 s for 1.2 s
        assert http(poll_url(r, quiet))[0] == 400
        assert http(poll_url(r, alive))[0] == 200


def test_faults_over_http_control(j10: Running) -> None:
    def fault(kind: str, seconds: float = 0) -> None:
        assert http(f"{j10.base_url}/_control/fault", json.dumps({"kind": kind, "seconds": seconds}))[0] == 200

    fault("rate_limit", 30)
    assert http(poll_url(j10))[0] == 429
    fault("clear")
    fault("reject_auth", 30)
    assert http(poll_url(j10))[0] == 403
    fault("clear")

    sid, _ = handshake(j10)
    subscribe(j10, sid)
    fault("garbage")
    bad = None
    for _ in range(20):
        for packet in split_payload(http(poll_url(j10, sid))[1]):
            try:
                json.loads(packet[2:]) if packet.startswith("42") else None
            except ValueError:
                bad = packet
        if bad:
            break
    assert bad is not None

    ws = websocket.create_connection(f"ws://127.0.0.1:{j10.port}/socket.io/?EIO=3&transport=websocket&sid={sid}",
                                     timeout=5)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    fault("stall", 0.5)
    ws.settimeout(0.25)
    with pytest.raises(websocket.WebSocketTimeoutException):
        while True:  # reads what was in flight, then the stall's silence
            ws.recv()
    ws.settimeout(5)
    assert ws.recv().startswith("42")  # resumes after the stall

    fault("drop")
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        for _ in range(10000):
            ws.recv()
    assert http(poll_url(j10, sid))[0] == 400  # the session is gone: a new handshake is needed
    stats = json.loads(http(f"{j10.base_url}/_control/stats")[1])
    assert stats["totals"]["garbage"] == 1 and stats["open_connections"] == 0
    assert http(f"{j10.base_url}/_control/fault", json.dumps({"kind": "explode"}))[0] == 400


def test_websocket_only_client_and_configurable_event_name() -> None:
    with run("jin10", rate=200, event="price", symbols=["XAUUSD", "SH1A0001"], check_sequence=False) as r:
        ws = websocket.create_connection(f"ws://127.0.0.1:{r.port}/socket.io/?EIO=3&transport=websocket", timeout=5)
        try:
            opened = json.loads(ws.recv()[1:])
            assert opened["sid"] and opened["upgrades"] == [] and ws.recv() == "40"
            ws.send('42["setAdvSubscription",{"list":["SH1A0001"]}]')
            events = [json.loads(m[2:]) for m in (ws.recv() for _ in range(3))]
            assert all(e[0] == "price" and e[1]["code"] == "SH1A0001" for e in events)
        finally:
            ws.close()
