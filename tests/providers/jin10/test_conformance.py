"""The Jin10 producer, protocol module and simulator against the provider document's request
sequence and packets (tests/data/conformance/jin10, copied verbatim from the provider's socket.io script)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websocket

from marketpipe.producers.session import Session
from marketpipe.providers.jin10 import protocol as proto
from marketpipe.providers.jin10.feed import Jin10Feed
from marketpipe.simulators.runner import run
from tests.support.paths import CONFORMANCE

CORPUS = CONFORMANCE / "jin10"
SEQ = json.loads((CORPUS / "request_sequence.json").read_text(encoding="utf-8"))
DOC_BODY = (CORPUS / "subscribe_post_body.txt").read_text(encoding="utf-8")
DOC_CODES = json.loads(DOC_BODY.partition(":")[2][2:])[1]["list"]


# ---- protocol module -----------------------------------------------------------------------------
def test_subscribe_post_body_is_byte_for_byte_the_documents() -> None:
    assert proto.encode_payload([proto.subscribe_packet(DOC_CODES)]) == DOC_BODY
    assert proto.decode_payload(DOC_BODY) == [DOC_BODY.partition(":")[2]]


def test_documented_handshake_answer_is_read() -> None:
    [packet] = proto.decode_payload((CORPUS / "handshake_body.txt").read_text(encoding="utf-8"))
    info = proto.parse_open(packet)
    assert info == proto.OpenInfo("C10ZwKOEHslD9QOyAGrS", 25000, 60000, ("websocket",))
    assert proto.open_packet(info) == packet


def test_the_documents_commented_out_short_body_has_a_wrong_length_and_is_refused() -> None:
    with pytest.raises(proto.PayloadError):
        proto.decode_payload((CORPUS / "subscribe_post_body_short.txt").read_text(encoding="utf-8"))


def test_t_parameter_uses_the_documents_alphabet() -> None:
    assert proto.ALPHABET == SEQ["t_alphabet"]
    assert proto.yeast(0) == "0" and proto.yeast(64) == "10" and proto.yeast(63) == "_"


# ---- producer against the corpus (fake transport) -------------------------------------------------
class FakeHttp:
    """Answers like a polling EIO3 server and records each request as the corpus names its steps."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def __call__(self, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 10.0) -> tuple[int, bytes]:
        parsed = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        method = "POST" if data is not None else "GET"
        h = {k.lower(): v for k, v in (headers or {}).items()}
        self.steps.append({"method": method, "path": parsed.path, "query": query, "headers": h,
                           "body": data.decode() if data is not None else None, "timeout": timeout})
        if method == "POST":
            return 200, b"ok"
        if "sid" not in query:
            return 200, (CORPUS / "handshake_body.txt").read_bytes()
        polls = sum(1 for s in self.steps if s["method"] == "GET" and "sid" in s["query"])
        return 200, (b"2:40" if polls == 1 else b'21:42["quote",{"c":"X"}]')


def test_producer_follows_the_documents_request_sequence_exactly() -> None:
    fake = FakeHttp()
    feed = Jin10Feed("https://dc-quote-old.jin10.com", DOC_CODES, http=fake)
    emitted: list[tuple[bytes, str]] = []
    url, headers = feed.prepare(lambda data, opcode, kind: emitted.append((data, kind)))
    expected = SEQ["requests"]
    assert [s["method"] for s in fake.steps] == [r["method"] for r in expected[:-1]]
    sid = "C10ZwKOEHslD9QOyAGrS"
    for got, want in zip(fake.steps, expected):
        assert got["path"] == want["path"]
        assert set(got["query"]) == set(want["query"])
        assert {k: v for k, v in got["query"].items() if k != "t"} == \
            {k: (sid if v == "<sid>" else v) for k, v in want["query"].items() if k != "t"}
        assert all(c in proto.ALPHABET for c in got["query"]["t"])
        for name, value in want.get("headers", {}).items():
            assert got["headers"][name] == value
        if "body_file" in want:
            assert got["body"] == (CORPUS / want["body_file"]).read_text(encoding="utf-8")
    # the document's websocket address, with the sid of the handshake
    assert url == expected[-1]["url"].replace("<sid>", sid)
    # long polls may be held by the server: the GETs with sid wait longer than a ping period
    assert all(s["timeout"] > 85 for s in fake.steps if s["method"] == "GET" and "sid" in s["query"])
    assert (b"40", "control") in emitted and any(kind == "data" for _, kind in emitted)


class FakeWs:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str]] = []
        self.answers = ["3probe"]

    def send(self, data: str) -> None:
        self.sent.append((self.clock[0], data))

    def settimeout(self, _: float) -> None:
        pass

    def recv_data(self, control_frame: bool = False) -> tuple[int, bytes]:
        self.clock[0] += 0.5
        if self.answers:
            return websocket.ABNF.OPCODE_TEXT, self.answers.pop(0).encode()
        if self.clock[0] >= 60:
            raise websocket.WebSocketConnectionClosedException("end of test")
        if self.sent and self.sent[-1][1] == "2":
            return websocket.ABNF.OPCODE_TEXT, b"3"
        raise websocket.WebSocketTimeoutException("quiet")


def test_upgrade_and_pings_match_the_document() -> None:
    clock = [0.0]
    feed = Jin10Feed("https://x", ["XAUUSD"])
    ws = FakeWs(clock)

    class Sink:
        def send(self, *_: Any) -> None:
            pass

    session = Session(feed, Sink(), "c", clock=lambda: clock[0], wallclock=lambda: 1.79e9 + clock[0])
    feed.on_open(ws, session.emit)  # type: ignore[arg-type]
    assert [d for _, d in ws.sent] == SEQ["websocket"]["client_sends_first"]
    opened = clock[0]
    session._receive(ws)  # type: ignore[arg-type]
    pings = [t - opened for t, d in ws.sent if d == SEQ["websocket"]["ping"]]
    assert pings[0] == pytest.approx(SEQ["websocket"]["first_ping_after_seconds"], abs=0.5)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert gaps and all(g == pytest.approx(SEQ["websocket"]["ping_every_seconds"], abs=0.5) for g in gaps)


# ---- simulator against the corpus --------------------------------------------------------------
def http(url: str, data: str | None = None, timeout: float = 5) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data.encode() if data is not None else None,
                                 method="POST" if data is not None else "GET",
                                 headers={"content-type": "text/plain;charset=UTF-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def poll_url(base: str, sid: str | None = None) -> str:
    return f"{base}/socket.io/?EIO=3&transport=polling&t={proto.yeast(int(time.time() * 1000))}" + \
        (f"&sid={sid}" if sid else "")


def sim_handshake(base: str) -> str:
    status, body = http(poll_url(base))
    [packet] = proto.decode_payload(body)  # only the open packet: "40" waits for the next GET
    assert status == 200
    info = proto.parse_open(packet)
    assert info is not None
    return info.sid


def test_simulator_serves_the_documents_sequence_and_refuses_deviations() -> None:
    with run("jin10", rate=200, symbols=["XAUUSD", "SH1A0001"]) as r:
        sid = sim_handshake(r.base_url)
        assert http(poll_url(r.base_url, sid)) == (200, "2:40")
        assert http(poll_url(r.base_url, sid), DOC_BODY) == (200, "ok")
        for _ in range(2):
            status, body = http(poll_url(r.base_url, sid))
            assert status == 200 and any(p.startswith("42") for p in proto.decode_payload(body))
        ws = websocket.create_connection(f"ws://127.0.0.1:{r.port}/socket.io/?EIO=3&transport=websocket&sid={sid}",
                                         timeout=5)
        try:
            ws.send("2probe")
            assert ws.recv() == "3probe"
            ws.send("5")
            assert any(ws.recv().startswith("42") for _ in range(50))
        finally:
            ws.close()
        assert r.sim.sequence_violations == 0

        # deviations: subscribing before the GET with sid; upgrading after one GET; the short body
        early = sim_handshake(r.base_url)
        status, body = http(poll_url(r.base_url, early), DOC_BODY)
        assert status == 400 and "expected GET sid" in json.loads(body)["message"]
        hasty = sim_handshake(r.base_url)
        http(poll_url(r.base_url, hasty))
        http(poll_url(r.base_url, hasty), DOC_BODY)
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(f"ws://127.0.0.1:{r.port}/socket.io/?EIO=3&transport=websocket&sid={hasty}",
                                        timeout=5)
        short = sim_handshake(r.base_url)
        http(poll_url(r.base_url, short))
        assert http(poll_url(r.base_url, short), (CORPUS / "subscribe_post_body_short.txt").read_text())[0] == 400
        assert r.sim.sequence_violations == 2


def test_simulator_holds_an_empty_poll_until_data_or_session_end() -> None:
    with run("jin10", rate=0, ping_interval_ms=400, ping_timeout_ms=400) as r:
        sid = sim_handshake(r.base_url)
        assert http(poll_url(r.base_url, sid)) == (200, "2:40")
        assert http(poll_url(r.base_url, sid), DOC_BODY) == (200, "ok")
        result: list[tuple[int, str]] = []
        t0 = time.monotonic()
        held = threading.Thread(target=lambda: result.append(http(poll_url(r.base_url, sid))))
        held.start()
        held.join(0.3)
        assert held.is_alive()  # nothing queued: the GET is held open
        assert http(poll_url(r.base_url, sid), "1:2") == (200, "ok")  # a ping queues the pong
        held.join(5)
        assert result == [(200, "1:3")]
        # without further pings the session expires; the held poll gets the close packet
        t0 = time.monotonic()
        status, body = http(poll_url(r.base_url, sid))
        assert (status, body) == (200, "1:1") and 0.5 < time.monotonic() - t0 < 3


def test_producer_handshake_against_the_strict_simulator_with_a_quiet_market() -> None:
    """No pushes at all: the held polls are kept alive by pings, and the sequence is the document's."""
    with run("jin10", rate=0, ping_interval_ms=300, ping_timeout_ms=300) as r:
        feed = Jin10Feed(r.base_url, ["XAUUSD", "EURUSD"])
        packets: list[bytes] = []
        url, _ = feed.prepare(lambda data, opcode, kind: packets.append(data))
        assert f"sid={feed.sid}" in url and r.sim.sequence_violations == 0
        assert b"40" in packets and b"3" in packets


# ---- Engine.IO v3 lengths are JavaScript string lengths (UTF-16 code units) ----------------------
def js_length(packet: str) -> int:
    """What ``packet.length`` is in the JavaScript of an EIO v3 server: UTF-16 code units."""
    return len(packet.encode("utf-16-le")) // 2


#: a push naming a CJK Extension B character (𠀀, U+20000) and an emoji: both outside the BMP
ASTRAL = '42["quote",{"code":"XAUUSD","name":"黄金𠀀","price":2345.67,"note":"🚀"}]'


def test_polling_payload_with_characters_outside_the_bmp_decodes_as_a_js_server_counts() -> None:
    assert js_length(ASTRAL) == len(ASTRAL) + 2
    body = f"{js_length(ASTRAL)}:{ASTRAL}{js_length('40')}:40{js_length(ASTRAL)}:{ASTRAL}"
    assert proto.decode_payload(body) == [ASTRAL, "40", ASTRAL]
    assert proto.packets_of(body) == [ASTRAL, "40", ASTRAL]


def test_a_server_counting_code_points_is_read_too_and_a_wrong_length_is_still_refused() -> None:
    body = f"{len(ASTRAL)}:{ASTRAL}2:40"  # a server that counts characters (the notes' reading)
    assert proto.decode_payload(body) == [ASTRAL, "40"]
    with pytest.raises(proto.PayloadError):
        proto.decode_payload(f"{len(ASTRAL) + 1}:{ASTRAL}")


def test_payloads_we_write_count_as_javascript_does() -> None:
    assert proto.encode_payload([ASTRAL, "2"]) == f"{js_length(ASTRAL)}:{ASTRAL}1:2"
