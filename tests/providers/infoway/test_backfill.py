"""Producer lifecycle on md.status, and the Infoway kline backfill: the REST batch_kline answer as
seed 003 prints it, its path and limits, the backfill frame, and its decoding to Kline records."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
import websocket

from marketpipe.processors.decode import RawFrame, decode
from marketpipe.producers import session as session_mod
from marketpipe.producers.session import Feed, Session
from marketpipe.providers.infoway import protocol as proto
from marketpipe.providers.infoway.feed import InfowayFeed
from marketpipe.rawframe import H_BACKFILL, RawMeta, header_dict, parse_meta
from marketpipe.schemas.codec import Codec
from marketpipe.simulators.runner import run as run_sim

# seed 003, verbatim: one kline row of the batch_kline answer
SEED_ROW = {"t": "1751958000", "h": "326.880", "o": "326.880", "l": "326.880", "c": "326.880", "v": "1410",
            "vw": "460900.80", "pc": "0.00%", "pca": "0.000"}
# the envelope around the rows (protocols.md §2.7)
SEED_ANSWER = {"ret": 200, "msg": "success", "traceId": "3f1c", "data": [{"s": "002594.SZ", "respList": [SEED_ROW]}]}


def backfill_frame(body: bytes, path: str, offset: int = 7) -> RawFrame:
    meta = RawMeta("infoway", "iw-1", 12, 2, 1_751_958_100_000_000_000, "text", "data",
                   (("kline_types", "1"), (H_BACKFILL, path)))
    # through the headers, as the processor reads them from Kafka
    return RawFrame("infoway", body, parse_meta(meta.headers()), "raw.infoway", 0, offset, header_dict(meta.headers()))


def test_seed_answer_decodes_to_backfilled_klines() -> None:
    path = proto.batch_kline_path("stock", 1, 2, ["002594.SZ"])
    assert path == "/stock/batch_kline/1/2/002594.SZ"  # seed 003: /stock/batch_kline/{klineType}/{klineNum}/{codes}
    recs = decode(backfill_frame(json.dumps(SEED_ANSWER).encode(), path))
    assert len(recs) == 1
    r = recs[0].record
    assert (recs[0].schema, recs[0].topic, recs[0].key) == ("Kline", "md.kline", "002594.SZ")
    assert (r["event_time"], r["interval"], r["open"], r["close"], r["volume"], r["amount"], r["backfilled"]) == \
        (1_751_958_000_000, "1m", 326.88, 326.88, 1410.0, 460900.80, True)
    codec = Codec()
    assert codec.decode(codec.encode("Kline", r)).record["backfilled"] is True


def test_millisecond_row_times_and_code_instead_of_ret_are_read_too() -> None:
    answer = {"code": 200, "msg": "success", "data": [{"s": "BTCUSDT", "respList": [
        {**SEED_ROW, "t": "1751958060000"}, SEED_ROW]}]}
    recs = decode(backfill_frame(json.dumps(answer).encode(), "/crypto/batch_kline/2/2/BTCUSDT"))
    assert [(r.record["event_time"], r.record["interval"]) for r in recs] == \
        [(1_751_958_060_000, "5m"), (1_751_958_000_000, "5m")]


def test_live_klines_are_not_backfilled() -> None:
    push = {"code": 10008, "data": {"c": "63039.00000", "h": "63048.00000", "l": "63038.99000", "o": "63048.00000",
                                    "pca": "-9.00000", "pfr": "-0.01%", "s": "BTCUSDT", "t": "1786775220", "ty": 1,
                                    "v": "19.90087", "vw": "1254633.2367064"}}
    meta = RawMeta("infoway", "iw-1", 3, 1, 1_786_775_250 * 10**9, "text", "data", (("kline_types", "1"),))
    recs = decode(RawFrame("infoway", json.dumps(push).encode(), parse_meta(meta.headers()), headers=header_dict(meta.headers())))
    codec = Codec()
    assert [codec.decode(codec.encode("Kline", r.record)).record["backfilled"] for r in recs] == [False]


@pytest.mark.parametrize("answer,why", [
    ({"ret": 508, "msg": "All product not exists"}, "error 508"),
    ({"detail": "Rate limit exceeded"}, "Rate limit"),
    ({"ret": 200, "data": [{"s": "BTCUSDT"}]}, "no respList"),
])
def test_bad_answers_are_dead_lettered_with_the_reason(answer: dict[str, Any], why: str) -> None:
    from marketpipe.processors.decode import ParseError

    with pytest.raises(ParseError, match=why):
        decode(backfill_frame(json.dumps(answer).encode(), "/crypto/batch_kline/1/2/BTCUSDT"))


def test_requests_cover_the_gap_within_the_documented_limits() -> None:
    t0 = 1_751_958_000_000  # a minute boundary
    assert proto.kline_requests("stock", 1, ["600519.SH", "000001.SZ"], t0 + 5_000, t0 + 50_000) == \
        ["/stock/batch_kline/1/2/600519.SH,000001.SZ"]  # two bars each is allowed for several codes
    assert proto.kline_requests("stock", 1, ["600519.SH", "000001.SZ"], t0 + 5_000, t0 + 185_000) == \
        ["/stock/batch_kline/1/4/600519.SH", "/stock/batch_kline/1/4/000001.SZ"]
    assert proto.kline_requests("crypto", 1, ["BTCUSDT"], t0 - 86_400_000, t0)[0] == "/crypto/batch_kline/1/500/BTCUSDT"
    assert proto.rest_base("wss://data.infoway.io/ws") == "https://data.infoway.io"
    assert proto.rest_base("ws://127.0.0.1:8123/ws") == "http://127.0.0.1:8123"


def test_fill_gap_fetches_with_the_key_header_and_emits_backfill_frames() -> None:
    calls: list[tuple[str, dict[str, str]]] = []

    def fetch(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        calls.append((url, headers))
        return 200, json.dumps(SEED_ANSWER).encode()

    feed = InfowayFeed("wss://data.infoway.io/ws", "k3y", "stock", ["002594.SZ"], fetch=fetch)
    emitted: list[tuple[Any, ...]] = []
    assert feed.fill_gap(lambda *a: emitted.append(a), 1_751_958_005_000, 1_751_958_030_000)
    assert calls == [("https://data.infoway.io/stock/batch_kline/1/2/002594.SZ", {"apiKey": "k3y"})]
    assert emitted == [(json.dumps(SEED_ANSWER).encode(), "text", "data",
                        ((H_BACKFILL, "/stock/batch_kline/1/2/002594.SZ"),))]


def test_fill_gap_reports_failure_and_keeps_nothing_bad() -> None:
    feed = InfowayFeed("wss://x/ws", "k", "crypto", ["BTCUSDT"],
                       fetch=lambda url, headers: (200, b'{"detail":"Rate limit exceeded"}'))
    emitted: list[Any] = []
    assert not feed.fill_gap(lambda *a: emitted.append(a), 0, 1000)
    assert emitted == []
    no_klines = InfowayFeed("wss://x/ws", "k", "crypto", ["BTCUSDT"], channels=("trade",),
                            fetch=lambda url, headers: pytest.fail("no kline subscription: nothing to fetch"))
    assert not no_klines.fill_gap(lambda *a: None, 0, 1000)


# ---- the session's lifecycle on md.status ------------------------------------------------------
class ScriptWs:
    """A websocket that yields some frames, then closes (or stops the session)."""

    def __init__(self, frames: list[bytes], session: Session, last: bool) -> None:
        self.frames, self.session, self.last = list(frames), session, last

    def settimeout(self, t: float) -> None:
        pass

    def recv_data(self, control_frame: bool = False) -> tuple[int, bytes]:
        if self.frames:
            return websocket.ABNF.OPCODE_BINARY, self.frames.pop(0)
        if self.last:
            self.session.stopping = True
            raise websocket.WebSocketTimeoutException("quiet")
        return websocket.ABNF.OPCODE_CLOSE, b""

    connected = False  # as if the peer had closed: the session only releases the socket

    def shutdown(self) -> None:
        pass


class FillingFeed(Feed):
    provider = "test"

    def __init__(self) -> None:
        self.gaps: list[tuple[int, int]] = []

    def prepare(self, emit: Any) -> tuple[str, list[str]]:
        return "ws://nowhere", []

    def fill_gap(self, emit: Any, start: int, end: int) -> bool:
        self.gaps.append((start, end))
        emit(b"history", "text", "data", ((H_BACKFILL, "/x"),))
        return True


class StatusSink:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, RawMeta]] = []
        self.statuses: list[dict[str, Any]] = []

    def send(self, value: bytes, meta: RawMeta) -> None:
        self.frames.append((value, meta))

    def status(self, record: dict[str, Any]) -> None:
        self.statuses.append(record)


def test_session_reports_its_lifecycle_and_fills_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    feed, sink = FillingFeed(), StatusSink()
    session = Session(feed, sink, "c1", backoff=session_mod.Backoff(base=0.0), sleep=lambda s: None, seed=1)
    scripts = [([b"a", b"b"],), ([b"c"],)]
    scripts_last = [False, True]
    monkeypatch.setattr(session_mod.websocket, "create_connection",
                        lambda *a, **k: ScriptWs(*scripts.pop(0)[:1], session, scripts_last.pop(0)))
    session.run()
    kinds = [(s["kind"], s["session"]) for s in sink.statuses]
    assert kinds == [("connected", 1), ("disconnected", 1), ("connected", 2), ("reconnected", 2), ("filled", 2),
                     ("disconnected", 2)]
    assert sink.statuses[1]["reason"] == "closed by peer" and sink.statuses[-1]["reason"] == "stopped"
    metas = [m for _, m in sink.frames]
    assert [(v, m.seq, m.session) for v, m in sink.frames] == [(b"a", 1, 1), (b"b", 2, 1), (b"c", 3, 2),
                                                               (b"history", 4, 2)]
    assert (H_BACKFILL, "/x") in metas[3].extra and (H_BACKFILL, "/x") not in metas[2].extra
    rec = sink.statuses[3]
    # the same window the processor reads from the raw headers: last frame before, first after
    assert (rec["gap_start"], rec["gap_end"]) == (metas[1].recv_ns // 1_000_000, metas[2].recv_ns // 1_000_000)
    assert feed.gaps == [(rec["gap_start"], rec["gap_end"])]
    assert sink.statuses[4]["gap_start"] == rec["gap_start"]
    codec = Codec()
    for st in sink.statuses:
        assert codec.decode(codec.encode("FeedStatus", st)).record["connection"] == "c1"


# ---- the simulator serves the endpoint from the bars it pushes -----------------------------------
def pushed_bars(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(symbol, bar start) -> bar of a kline push, in either shape (the documented respList with
    ``pc``, or the flat capture with ``pfr``)."""
    if "respList" in data:
        return {(data["s"], row["t"]): {**row, "pfr": row["pc"]} for row in data["respList"]}
    return {(data["s"], data["t"]): data}


def test_simulator_rest_klines_equal_the_last_pushes_of_each_bar() -> None:
    with run_sim("infoway", rate=200, api_key="k", clock_speed=30.0, symbols=["BTCUSDT", "ETHUSDT"]) as sim:
        ws = websocket.create_connection(f"{sim.url}?business=crypto&apikey=k", timeout=5)
        ws.send(json.dumps({"code": 10006, "trace": "t", "data": {"arr": [{"type": 1, "codes": "BTCUSDT,ETHUSDT"}]}}))
        last: dict[tuple[str, str], dict[str, Any]] = {}
        received = 0

        def receive() -> None:
            nonlocal received
            msg = json.loads(ws.recv())
            received += 1
            if msg.get("code") == 10008:
                last.update(pushed_bars(msg["data"]))

        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # 30x clock: about four minutes of bars
            receive()
        sim.sim.fault("stall", 600)  # no more trades: the current bar is final as well
        while received < sim.stats()["totals"]["frames"]:  # what was in flight: every frame it sent
            receive()
        ws.close()
        req = urllib.request.Request(f"{sim.base_url}/crypto/batch_kline/1/500/BTCUSDT", headers={"apiKey": "k"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            answer = json.loads(resp.read())
        bad = urllib.request.Request(f"{sim.base_url}/crypto/batch_kline/1/3/BTCUSDT,ETHUSDT", headers={"apiKey": "k"})
        with urllib.request.urlopen(bad, timeout=5) as resp:
            assert json.loads(resp.read())["ret"] == 506  # several codes: two bars at most
    [(code, rows)] = proto.rest_rows(json.dumps(answer).encode())
    assert code == "BTCUSDT" and set(rows[0]) == set(SEED_ROW)  # the seed's row fields, no more
    pushed = {t: d for (s, t), d in last.items() if s == "BTCUSDT"}
    assert len(rows) >= 3 and {r["t"] for r in rows} == set(pushed)
    for row in rows:
        push = pushed[row["t"]]
        assert {k: row[k] for k in "ohlcv"} == {k: push[k] for k in "ohlcv"}
        assert (row["vw"], row["pca"], row["pc"]) == (push["vw"], push["pca"], push["pfr"])
