"""The demo's building blocks: the process supervisor leaves no orphans; the live state counts right."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from marketpipe.liveview import LiveState, Percentiles, RateMeter
from marketpipe.runtime.supervisor import Supervisor
from marketpipe.testing import wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_supervisor_stops_children_and_grandchildren(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", grace=2)
    # a child that ignores SIGTERM and has a grandchild: both must be gone after stop_all
    # (their sleeps only keep them running until they are killed)
    script = ("import signal,subprocess,sys,time;signal.signal(signal.SIGTERM, signal.SIG_IGN);"
              "p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
              "print(p.pid, flush=True);time.sleep(60)")
    child = sup.start("stubborn", [sys.executable, "-c", script], os.environ)
    polite = sup.start("polite", [sys.executable, "-c", "import time; print('hi', flush=True); time.sleep(60)"],
                       os.environ)
    wait_for(lambda: child.log.read_text().strip() and polite.log.read_text().strip(), 20, step=0.05,
             what="the first line of both children")
    grandchild = int(child.log.read_text().split()[0])
    assert _alive(grandchild)
    codes = sup.stop_all()
    assert codes["stubborn"] == -9  # needed SIGKILL after the grace period
    assert codes["polite"] == -15
    # SIGKILL is delivered asynchronously: wait for the processes themselves (unkilled, they would sleep 60 s)
    wait_for(lambda: not (_alive(child.pid) or _alive(polite.pid) or _alive(grandchild)), 5, step=0.02,
             what=lambda: f"child {child.pid}, polite child {polite.pid} and grandchild {grandchild} gone")
    assert "hi" in sup.log_tail(polite)


def test_supervisor_reports_early_exits(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    child = sup.start("fails", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], os.environ)
    child.proc.wait(10)
    assert [c.name for c in sup.exited()] == ["fails"]
    assert child.returncode() == 3
    assert "boom" in sup.log_tail(child)
    sup.stop_all()


def test_rate_meter_and_percentiles() -> None:
    meter = RateMeter(window=2.0)
    meter.add(10, now=100.0)
    meter.add(6, now=101.5)
    assert meter.rate(now=101.9) == 8.0
    assert meter.rate(now=102.6) == 3.0  # the first 10 fell out of the window
    p = Percentiles(cap=100)
    for v in range(1, 201):
        p.add(float(v))
    assert len(p) == 100  # only the newest 100 kept: 101..200
    assert p.pct(50) in (150.0, 151.0)
    assert p.pct(99) == 199.0
    assert Percentiles().pct(50) is None


def test_live_state_counts_and_keeps_the_latest() -> None:
    st = LiveState(watch_symbols=2, since_ns=500_000_000)
    st.on_raw("jvquant", now=1.0)
    st.on_raw("jvquant", now=1.1)
    base = {"provider": "jvquant", "event_time": 1, "receive_time_ns": 0}
    for sym, last in (("600519.SH", 1.0), ("000001.SZ", 2.0), ("300750.SZ", 3.0), ("600519.SH", 4.0)):
        st.on_record("md.quote", "Quote", {**base, "symbol": sym, "last": last})
    assert set(st.quotes) == {"600519.SH", "000001.SZ"}  # capped at watch_symbols, latest kept
    assert st.quotes["600519.SH"]["last"] == 4.0
    st.on_record("md.tick", "Tick", {**base, "symbol": "X", "receive_time_ns": 1_000_000_000},
                 read_ns=1_005_000_000)
    # a replayed tick received before the view started is counted but is not a latency sample
    st.on_record("md.tick", "Tick", {**base, "symbol": "X", "receive_time_ns": 100}, read_ns=1_005_000_000)
    st.on_record("md.dlq", "DeadLetter", {"provider": "jvquant", "reason": "bad"})
    s = st.summary()
    assert s["records"] == {"md.dlq": 1, "md.quote": 4, "md.tick": 2, "raw.jvquant": 2}
    assert s["dlq"] == 1
    assert s["latency_ms_p50"] == 5.0 and s["latency_samples"] == 1 and st.replayed == 1


def test_the_demo_reports_p50_p90_p99_and_max_of_tick_latency() -> None:
    from marketpipe.demo import latency_line
    from marketpipe.liveview import LiveState

    st = LiveState(since_ns=0)
    for ms in range(1, 101):  # 1 .. 100 ms
        st.on_record("md.tick", "Tick", {"symbol": "X", "receive_time_ns": 1_000_000_000},
                     read_ns=1_000_000_000 + ms * 1_000_000)
    s = st.summary()
    assert (s["latency_ms_p50"], s["latency_ms_p90"], s["latency_ms_p99"], s["latency_ms_max"]) == (51.0, 90.0, 99.0, 100.0)
    assert latency_line(s) == "p50 51.0 ms, p90 90.0 ms, p99 99.0 ms, max 100.0 ms (100 ticks)"
    assert latency_line(LiveState().summary()) == "n/a"


def test_the_demo_also_reports_the_p99_of_the_last_30_seconds() -> None:
    """A slow start (a new broker's first minute) fills the whole run's tail; the last 30 s show
    the pipeline as it runs on. Read times come from the records, so the window is exact."""
    from marketpipe.demo import latency_line
    from marketpipe.liveview import LiveState

    st = LiveState(since_ns=0)
    second = 1_000_000_000
    for s in range(60):  # a tick a second: 200 ms each for the first 25 s, then 10 ms
        st.on_record("md.tick", "Tick", {"symbol": "X", "receive_time_ns": s * second},
                     read_ns=s * second + (200 if s < 25 else 10) * 1_000_000)
    summary = st.summary()
    # the last 30 s before the newest read (59.01 s): the ticks read from 29.01 s on
    assert summary["latency_ms_p99"] == 200.0 and summary["latency_recent_samples"] == 31
    assert summary["latency_recent_ms_p99"] == 10.0
    assert latency_line(summary).endswith("(60 ticks); p99 of the last 30 s 10.0 ms (31 ticks)")


def test_demo_plan_uses_a_simulator_only_where_no_token_is_set(tmp_path: Path) -> None:
    import json

    from marketpipe import demo, settings

    args = demo.DemoOptions(rate=100, clock_speed=1.0, bar="5s")
    env = {"MARKETPIPE_HOME": str(tmp_path)}
    names = [step.name for step in demo.plan(settings.load(env), args, env)]
    assert names[:3] == ["sim-jvquant", "sim-infoway", "sim-jin10"]
    trader = next(step for step in demo.plan(settings.load(env), args, env) if step.name == "trader")
    reference = json.loads(Path(trader.env["MARKETPIPE_TRADER_REFERENCE"]).read_text())
    assert reference["600519.SH"]["prev_close"] == "1500.00" and reference["600290.SH"]["st"] is True
    assert reference["113050.SH"]["prev_close"] == "120.000"

    real = {**env, "JVQUANT_TOKEN": "t", "JVQUANT_TRADE_ACCOUNT": "a", "JVQUANT_TRADE_PASSWORD": "p",
            "INFOWAY_API_KEY": "k", "JIN10_URL": "https://dc-quote-old.jin10.com"}
    steps = demo.plan(settings.load(real), args, real)
    assert not [s for s in steps if s.name.startswith("sim-")]
    producer = next(s for s in steps if s.name == "producer-jvquant")
    assert "JVQUANT_BASE_URL" not in producer.env  # the real service from the settings


def test_supervisor_stops_the_sources_first_then_the_rest_in_reverse(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", grace=5)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]  # runs until the supervisor stops it
    for name in ("sim", "producer-a", "producer-b", "processor", "trader"):
        sup.start(name, sleeper, os.environ)
    codes = sup.stop_all(first=("producer-",), drain=0.1)
    assert list(codes) == ["producer-a", "producer-b", "trader", "processor", "sim"]
    assert all(code == -15 for code in codes.values())


def _rendered(state: LiveState) -> str:
    from rich.console import Console

    from marketpipe.liveview import render

    console = Console(record=True, width=200, file=open(os.devnull, "w"))
    console.print(render(state, [], 1.0))
    return console.export_text()


def test_the_live_view_shows_each_market_s_own_clock_with_its_zone() -> None:
    st = LiveState(watch_symbols=8)
    at = 1783503000000  # 2026-07-08T09:30:00Z
    for sym, provider in (("600519.SH", "jvquant"), ("XAUUSD", "jin10"), ("00700.HK", "infoway"),
                          ("AAPL.US", "infoway"), ("BTCUSDT", "infoway")):
        st.on_record("md.quote", "Quote", {"provider": provider, "symbol": sym, "last": 1.0, "event_time": at})
    rows = {line.split()[1]: line for line in _rendered(st).splitlines() if line.split()[1:2] and
            line.split()[1] in ("600519.SH", "XAUUSD", "00700.HK", "AAPL.US", "BTCUSDT")}
    assert "17:30:00 CST" in rows["600519.SH"]  # China time: A-shares and the Shanghai-quoted wall
    assert "17:30:00 CST" in rows["XAUUSD"]
    assert "17:30:00 HKT" in rows["00700.HK"]
    assert "05:30:00 EDT" in rows["AAPL.US"]
    assert "09:30:00 UTC" in rows["BTCUSDT"]
    assert "Z " not in " ".join(rows.values())


def test_the_live_view_shows_schema_ids_or_single_object_per_topic() -> None:
    st = LiveState()
    st.on_record("md.tick", "Tick", {"symbol": "X", "receive_time_ns": 0}, schema_id=7)
    st.on_record("md.bar", "Bar", {"symbol": "X", "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0,
                                   "trade_count": 1})
    assert st.summary()["framings"] == {"md.bar": "Bar single-object", "md.tick": "Tick id 7"}
    text = _rendered(st)
    assert "Tick id 7" in text and "Bar single-object" in text


def test_without_java_the_demo_says_so_in_one_line_and_writes_single_object(tmp_path, monkeypatch, capsys) -> None:

    from marketpipe import settings
    from marketpipe.demo import DemoOptions, start_registry

    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    s = settings.load({"MARKETPIPE_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    registry, used = start_registry(DemoOptions(no_registry=False), s)
    err = capsys.readouterr().err.strip().splitlines()
    assert registry is None and used.schema_registry_url == ""
    assert len(err) == 1 and "Java is not installed: Apicurio Registry" in err[0] and "single-object" in err[0]


def test_a_closed_output_pipe_does_not_stop_the_clean_up() -> None:
    from marketpipe.demo import ForgivingStream

    r, w = os.pipe()
    stream = ForgivingStream(os.fdopen(w, "w", buffering=1))
    os.close(r)  # the reader (tee, head) is gone
    stream.write("a line nobody reads\n")
    stream.flush()
    assert stream.broken and not stream.isatty()


def test_the_demo_stamps_a_record_when_it_is_readable_not_when_a_batch_of_them_fills() -> None:
    """consume(n, timeout) waits until n records are there or the timeout ran out: a watcher that
    waited so stamped every record up to that timeout late, and called it tick latency."""
    from marketpipe.demo import Watcher
    from marketpipe.liveview import LiveState
    from marketpipe.schemas.codec import Codec
    from tests.support.fake_consumer import Message, TimedConsumer

    codec = Codec()
    t = 1_790_000_000_000
    tick = {"provider": "jvquant", "symbol": "600519.SH", "venue_symbol": "600519", "event_time": t,
            "receive_time_ns": 1, "price": 10.0, "size": 100.0, "amount": 1000.0, "side": "UNKNOWN",
            "trade_id": "1", "parser_version": "t", "source": {"topic": "raw.jvquant", "partition": 0,
                                                              "offset": 0, "index": 0}}

    w = Watcher.__new__(Watcher)
    consumer = TimedConsumer([Message(codec.encode("Tick", tick), "md.tick") for _ in range(2)])
    w.consumer, w.codec, w.logical, w.state = consumer, codec, {"md.tick": "md.tick"}, LiveState()
    w.pump(0.01)
    assert w.state.counts["md.tick"] == 2
    assert consumer.blocked() == 0
