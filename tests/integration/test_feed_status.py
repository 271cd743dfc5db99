"""Feed health end to end on a real broker: simulators with fault injection, real producers and a
real processor worker; md.status, md.bar and raw.infoway read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import websocket

from marketpipe import settings as settings_mod
from marketpipe.processors.decode import RawFrame, decode
from marketpipe.rawframe import H_BACKFILL, extra_header, header_dict, parse_meta
from marketpipe.simulators.runner import run as run_sim
from tests.integration.test_producers import raw_frames
from tests.support.pipeline import final_bars, read_topic, start_producer, start_worker, stop_worker, wait_for


def statuses(s: settings_mod.Settings) -> list[dict[str, Any]]:
    return read_topic(s, "md.status", idle=1)


def kinds(recs: list[dict[str, Any]], provider: str) -> list[str]:
    return [r["kind"] for r in recs if r["provider"] == provider]


def test_dropped_connection_and_killed_producer_show_on_md_status_and_in_bars(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    env = {**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}
    worker = start_worker(env, tmp_path / "worker.log")
    producer = None
    try:
        with run_sim("jvquant", rate=300, symbols=["600519", "000001"]) as sim:
            penv = {**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}
            args = ("--codes", "600519,000001", "--levels", "lv1,lv2", "--backoff-base", "0.3",
                    "--connection-id", "jv-test-1")
            producer = start_producer(penv, "jvquant", tmp_path / "p1.log", *args)
            wait_for(lambda: sim.stats()["totals"].get("data_frames", 0) > 50)
            sim.sim.fault("drop")  # the simulator kills the connection mid-stream
            wait_for(lambda: "reconnected" in kinds(statuses(s), "jvquant"), timeout=60)
            wait_for(lambda: "gap" in kinds(statuses(s), "jvquant"), timeout=90)
            # a producer killed with -9 says nothing; its restart under the same id is a gap downstream.
            # It is killed once its second session has closed a bar without a gap, so the two gaps
            # flag different bars with a clean one between them
            [drop] = [r for r in statuses(s) if r["kind"] == "gap"]
            # bars keep coming while the feed runs: the read is cut at 2 s instead of waiting for a pause
            wait_for(lambda: any(b["window_start"] > drop["gap_end"] and not b["gap"] for b in
                                 final_bars(read_topic(s, "md.bar", idle=0.5, timeout=2)).values()),
                     timeout=60, what="a bar without a gap after the reconnect")
            producer.send_signal(signal.SIGKILL)
            producer.wait(10)
            producer = start_producer(penv, "jvquant", tmp_path / "p2.log", *args)
            wait_for(lambda: any("restarted" in r["reason"] for r in statuses(s) if r["kind"] == "gap"), timeout=90)
            sim.sim.fault("stall", 600)
        recs = statuses(s)
        life = [(r["kind"], r["session"]) for r in recs if r["provider"] == "jvquant" and r["kind"] in
                ("connected", "disconnected", "reconnected")]
        first = life.index(("disconnected", 1))
        assert ("connected", 1) in life[:first]
        # the drop, then a killed producer (no goodbye for session 2), then the new process
        assert life[first:first + 4] == [("disconnected", 1), ("connected", 2), ("reconnected", 2), ("connected", 1)]
        reconnected = next(r for r in recs if r["kind"] == "reconnected")
        gaps = [r for r in recs if r["kind"] == "gap"]
        assert len(gaps) == 2 and {r["connection"] for r in gaps} == {"jv-test-1"}
        # the processor's gap from the headers is the window the producer reported
        assert (gaps[0]["gap_start"], gaps[0]["gap_end"]) == (reconnected["gap_start"], reconnected["gap_end"])
        assert gaps[0]["gap_end"] - gaps[0]["gap_start"] == reconnected["silent_ms"] > 0
        assert gaps[1]["seq_from"] > 1 and gaps[1]["session"] == 1

        def flagged() -> list[dict[str, Any]]:
            return [b for b in final_bars(read_topic(s, "md.bar", idle=1)).values() if b["gap"]]

        wait_for(lambda: len(flagged()) >= 2, timeout=60)
        bars = final_bars(read_topic(s, "md.bar", idle=1))
        for b in bars.values():
            over = any(g["gap_start"] < b["window_end"] and g["gap_end"] >= b["window_start"] for g in gaps)
            assert b["gap"] == over, b
        assert any(not b["gap"] for b in bars.values())
        # the live table's script form agrees
        out = subprocess.run([sys.executable, "-m", "marketpipe", "status", "--once", "--json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        row = [json.loads(line) for line in out.stdout.splitlines() if '"jvquant"' in line][0]
        assert (row["reconnects"], row["gaps"]) == (1, 2)
        live = subprocess.run([sys.executable, "-m", "marketpipe", "status", "--seconds", "1.5"],
                              env={**env, "COLUMNS": "200"},
                              capture_output=True, text=True, timeout=60)
        assert live.returncode == 0 and "jvquant" in live.stdout, live.stderr
    finally:
        if producer is not None and producer.poll() is None:
            os.killpg(producer.pid, signal.SIGTERM)
            producer.wait(30)
        stop_worker(worker)


def test_infoway_gap_is_backfilled_with_the_klines_the_simulator_pushed(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    with run_sim("infoway", rate=200, symbols=["BTCUSDT"], api_key="key", clock_speed=30.0) as sim:
        # an observer on its own connection sees every kline push
        observer = websocket.create_connection(f"{sim.url}?business=crypto&apikey=key", timeout=5)
        observer.send(json.dumps({"code": 10006, "trace": "o", "data": {"arr": [{"type": 1, "codes": "BTCUSDT"}]}}))
        wait_for(lambda: len(sim.stats()["per_connection"]) == 1)
        observed = list(sim.stats()["per_connection"])
        producer = start_producer({**mp_env, "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "key",
                                   "INFOWAY_SUBSCRIBE_INTERVAL": "0.1"}, "infoway", tmp_path / "p.log",
                                  "--codes", "BTCUSDT", "--backoff-base", "0.5")
        pushes: list[bytes] = []
        try:
            def read_observer(seconds: float) -> None:
                observer.settimeout(0.3)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    try:
                        pushes.append(observer.recv().encode())
                    except websocket.WebSocketTimeoutException:
                        pass

            read_observer(4)  # two simulated minutes
            ours = [c for id_, c in sim.sim.connections.items() if id_ not in observed]
            assert len(ours) == 1
            sim.call(ours[0].drop())  # kill the producer's connection only
            read_observer(4)
            wait_for(lambda: "filled" in kinds(statuses(s), "infoway"), timeout=30)
            sim.sim.fault("stall", 600)
            read_observer(1.5)
        finally:
            observer.close()
            producer.send_signal(signal.SIGTERM)
            assert producer.wait(60) == 0, (tmp_path / "p.log").read_text()
    frames = raw_frames(s, "infoway", idle=2)
    backfills = [m for m in frames if extra_header(parse_meta(m.headers()), H_BACKFILL)]
    assert backfills, "no backfill frame on raw.infoway"
    klines = []
    for m in backfills:
        recs = decode(RawFrame("infoway", m.value(), parse_meta(m.headers()), m.topic(), m.partition(), m.offset(),
                               header_dict(m.headers())))
        klines += [r.record for r in recs]
    assert klines and all(k["backfilled"] for k in klines)

    def shape(k: dict[str, Any]) -> tuple[Any, ...]:
        return (k["symbol"], k["interval"], k["event_time"], k["open"], k["high"], k["low"], k["close"],
                k["volume"], k["amount"])

    pushed: dict[int, list[tuple[Any, ...]]] = {}
    subscribed = {"kline_types": "1"}  # the observer subscribed 1m klines; documented pushes carry no ty
    for raw in (p for p in pushes if p.startswith(b'{"code":10008')):
        for rec in decode(RawFrame("infoway", raw, parse_meta([]), headers=subscribed)):
            pushed.setdefault(rec.record["event_time"], []).append(shape(rec.record))
    newest = max(k["event_time"] for k in klines)
    for k in klines:
        assert shape(k) in pushed[k["event_time"]], "a backfilled kline the simulator never pushed"
        if k["event_time"] < newest:  # a finished bar: its final state
            assert shape(k) == pushed[k["event_time"]][-1]
    st = [r for r in statuses(s) if r["provider"] == "infoway"]
    reconnected = next(r for r in st if r["kind"] == "reconnected")
    filled = next(r for r in st if r["kind"] == "filled")
    assert (filled["connection"], filled["gap_start"]) == (reconnected["connection"], reconnected["gap_start"])
