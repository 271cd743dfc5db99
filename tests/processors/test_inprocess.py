"""The processor's pieces in-process, without a broker: normalisation, binning, snapshot load,
idle close and the app built from settings. The same pieces run inside the Faust worker
(tests/integration/test_processor_app.py drives that one against a real broker)."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import pytest

from marketpipe.kafka import topics
from marketpipe.processors.app import build_app, group_id
from marketpipe.processors.bars.book import BarBook
from marketpipe.processors.bars.state import BarState, Watermark
from marketpipe.processors.normalize import Normalizer, RawRecord
from marketpipe.processors.output import Output
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec
from marketpipe.settings import load
from tests.support.paths import ROOT

SEC = 1000
MIN = 60 * SEC


class Collect:
    """Stands in for the confluent producer: keeps what was produced, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int = 0, on_delivery: Any = None) -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout: float = 0) -> int:
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [Codec().decode(v).record for t, _, v in self.sent if t == topic]


def settings(**env: str):
    return load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_TOPIC_PREFIX": "p.", **env})


def deflate(text: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(text.encode()) + c.flush()


def jv_record(text: str, offset: int, recv_ns: int) -> RawRecord:
    meta = RawMeta("jvquant", "jv-1", offset + 1, 1, recv_ns, "binary", "data")
    return RawRecord("p.raw.jvquant", 2, offset, deflate(text), meta.headers())


def shanghai_ns(hms: str) -> int:
    """Today at ``hms`` in Shanghai, as receive-time nanoseconds (decoders date rows by the receive day)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    h, m, s = (int(x) for x in hms.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, s, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()) * 10**9


def test_a_frame_becomes_records_and_a_bad_one_a_dead_letter() -> None:
    sink = Collect()
    n = Normalizer(Output(settings(), producer=sink))
    recv = shanghai_ns("10:00:01")
    written = n.process("jvquant", jv_record("lv2_600519=10:00:00.120,77001,1572.12,100|77002,10:00:00.350,1572.10,200",
                                             5, recv))
    ticks = sink.records("p.md.tick")
    assert written.records == 2 and written.rejects == 0 and [(t["price"], t["size"], t["trade_id"]) for t in ticks] == \
        [(1572.12, 100.0, "77001"), (1572.10, 200.0, "77002")]
    assert [t["source"] for t in ticks] == [{"topic": "p.raw.jvquant", "partition": 2, "offset": 5, "index": i}
                                           for i in range(2)]
    assert n.process("jvquant", RawRecord("p.raw.jvquant", 2, 6, b"\x00not deflate",
                                          RawMeta("jvquant", "jv-1", 7, 1, recv, "binary", "data").headers())).rejects == 1
    [letter] = sink.records("p.md.dlq")
    assert letter["source"]["offset"] == 6 and letter["raw"] == b"\x00not deflate" and letter["reason"]


LV1_ROW = ("lv1_600519=10:00:{s},贵州茅台,1572.12,1.25,{vol},{amt},300,1572.10,100,1572.05,200,1572.00,500,1571.99,"
          "100,1571.90,200,1572.12,100,1572.20,300,1572.50,100,1572.58,400,1572.60")


def test_a_replayed_quote_is_byte_identical_to_the_original() -> None:
    """A worker restarted after a crash reads the frames since its last commit again; the records it
    writes must be the same bytes, or "keep the last record per source" keeps a different one. The
    interval volume depended on the snapshot before, which a fresh worker had not seen (issue 23)."""
    first, second = (jv_record(LV1_ROW.format(s="03", vol=1000, amt=1572120), 1, shanghai_ns("10:00:04")),
                     jv_record(LV1_ROW.format(s="06", vol=1300, amt=2043756), 2, shanghai_ns("10:00:07")))
    original, replay = Collect(), Collect()
    n = Normalizer(Output(settings(), producer=original))
    n.process("jvquant", first)
    n.process("jvquant", second)
    Normalizer(Output(settings(), producer=replay)).process("jvquant", second)  # the restarted worker
    assert [v for t, _, v in original.sent if t == "p.md.quote"][1] == [v for t, _, v in replay.sent if t == "p.md.quote"][0]


def test_the_client_derives_interval_volume_from_the_quotes_it_reads() -> None:
    """What the processor leaves out (it depends on the record before) the reader derives, in the order
    it reads: the previous quote of the symbol, the trading-day and reordering rules of marketpipe/market/volume.py."""
    from marketpipe.client import IntervalVolumes, Quote, RecordDeserializer

    sink = Collect()
    n = Normalizer(Output(settings(), producer=sink))
    n.process("jvquant", jv_record(LV1_ROW.format(s="03", vol=1000, amt=1572120), 1, shanghai_ns("10:00:04")))
    n.process("jvquant", jv_record(LV1_ROW.format(s="06", vol=1300, amt=2043756), 2, shanghai_ns("10:00:07")))
    read = RecordDeserializer()
    quotes = [read(v) for t, _, v in sink.sent if t == "p.md.quote"]
    assert all(isinstance(q, Quote) and q.interval_volume is None for q in quotes)  # not the processor's to say
    volumes = IntervalVolumes()
    filled = [volumes.fill(q) for q in quotes]
    assert [q.interval_volume for q in filled] == [None, 300]
    assert filled[1].cum_volume == 1300 and filled[1].source == quotes[1].source


def tick(t: int, price: float, offset: int, partition: int = 0, size: float = 100) -> dict[str, Any]:
    return {"provider": "jvquant", "symbol": "600519.SH", "venue_symbol": "600519", "event_time": t,
            "receive_time_ns": t * 10**6,
            "price": price, "size": size, "amount": price * size, "side": "UNKNOWN", "trade_id": str(offset),
            "parser_version": "t", "source": {"topic": "raw.jvquant", "partition": partition, "offset": offset,
                                              "index": 0}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bar_state(sink: Collect, clock: Clock, loaded: dict[str, BarBook] | None = None, **env: str) -> BarState:
    s = settings(MARKETPIPE_BAR_INTERVAL="1m", MARKETPIPE_BAR_GRACE="2s", **env)
    base_wall = 1_790_000_000_000
    return BarState(s.processor, Output(s, producer=sink), s.topic(topics.MD_BAR_STATE),
                    lambda partitions: {k: b for k, b in (loaded or {}).items() if b.partition in partitions},
                    monotonic=clock, wall_ms=lambda: base_wall + (clock.now - 1000.0) * 1000)


def encoded(ticks: list[dict[str, Any]], partition: int = 0) -> list[RawRecord]:
    codec = Codec()
    return [RawRecord("p.md.tick", partition, i, codec.encode("Tick", t)) for i, t in enumerate(ticks)]


BASE = 1_790_000_000_000 // MIN * MIN


def test_binning_emits_a_bar_once_the_watermark_passes_and_snapshots_the_book() -> None:
    sink, clock = Collect(), Clock()
    state = bar_state(sink, clock)
    state.bin(encoded([tick(BASE + 1 * SEC, 10.0, 1), tick(BASE + 30 * SEC, 11.0, 2)]))
    assert sink.records("p.md.bar") == []  # the window is still open
    state.bin(encoded([tick(BASE + MIN + 3 * SEC, 12.0, 3)]))  # watermark passes end + grace
    [bar] = sink.records("p.md.bar")
    assert (bar["open"], bar["high"], bar["close"], bar["volume"], bar["trade_count"]) == (10.0, 11.0, 11.0, 200, 2)
    snapshots = [(k, v) for t, k, v in sink.sent if t == "p.md.bar.state"]
    assert snapshots and snapshots[-1][0] == b"jvquant|600519.SH"
    # the same ticks again (a replay after a crash) change nothing
    state.bin(encoded([tick(BASE + 1 * SEC, 10.0, 1), tick(BASE + 30 * SEC, 11.0, 2)]))
    assert len(sink.records("p.md.bar")) == 1


def test_an_unreadable_tick_is_dead_lettered_and_the_batch_goes_on() -> None:
    sink, clock = Collect(), Clock()
    state = bar_state(sink, clock)
    state.bin([RawRecord("p.md.tick", 0, 0, b"garbage"), *encoded([tick(BASE + SEC, 10.0, 1)])[:1]])
    [letter] = sink.records("p.md.dlq")
    assert letter["source"] == {"topic": "p.md.tick", "partition": 0, "offset": 0, "index": -1}
    assert state.books["jvquant|600519.SH"].open


def test_books_loaded_on_assignment_close_by_wall_time_when_the_symbol_stays_quiet() -> None:
    book = BarBook("jvquant", "600519.SH", partition=4)
    book.add(tick(BASE + 5 * SEC, 10.0, 1, partition=0), MIN, 5 * MIN, 0)
    sink, clock = Collect(), Clock()
    state = bar_state(sink, clock, {"jvquant|600519.SH": book})
    asyncio.run(state.own({4}))
    assert state.owned == {4} and state.watermarks[4].event_ms == BASE + 5 * SEC
    assert state.close_idle() == 0  # restart time is the book's last-seen time: not yet
    clock.now += 58  # 58 s of silence: book clock = BASE + 63 s, past end + grace (62 s)
    assert state.close_idle() == 1
    [bar] = sink.records("p.md.bar")
    assert bar["window_start"] == BASE and bar["trade_count"] == 1
    state.disown({4})
    assert state.books == {} and state.owned == set() and 4 not in state.watermarks


def test_a_partition_clock_advances_with_wall_time_while_idle() -> None:
    mark = Watermark(event_ms=5000, seen_at=10.0)
    assert mark.at(10.0) == 5000 and mark.at(12.5) == 7500 and mark.at(9.0) == 5000


@pytest.mark.parametrize("agents,expected", [
    ("all", {"normalize_jvquant", "normalize_infoway", "normalize_jin10", "bars"}),
    ("normalize", {"normalize_jvquant", "normalize_infoway", "normalize_jin10"}),
    ("bars", {"bars"}),
])
def test_the_app_is_built_from_settings_with_the_agents_they_name(agents: str, expected: set[str],
                                                                  tmp_path) -> None:
    s = settings(MARKETPIPE_PROCESSOR_AGENTS=agents, MARKETPIPE_HOME=str(tmp_path))
    started = time.monotonic()
    app = build_app(s)
    assert {a.name.rsplit(".", 1)[-1] for a in app.agents.values()} == expected
    assert app.conf.id == group_id(s) == ("marketpipe-processors" + ("" if agents == "all" else f"-{agents}") + "-p")
    assert time.monotonic() - started < 5  # builds without touching a broker


def test_importing_the_app_module_has_no_side_effects(tmp_path) -> None:
    import subprocess
    import sys

    code = "import marketpipe.processors.app, os; print(sorted(os.listdir('.')))"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                              "MARKETPIPE_TRADER_POLL_SECONDS": "abc"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"  # no .marketpipe folder, no settings read


def test_one_log_level_flag_reaches_the_faust_worker() -> None:
    import subprocess
    import sys

    from marketpipe.processors.readiness import worker_argv

    assert worker_argv("WARNING") == ["worker", "--loglevel", "warn", "--without-web"]
    assert worker_argv("debug", 6066)[:3] == ["worker", "--loglevel", "debug"]
    helped = subprocess.run([sys.executable, "-m", "marketpipe", "process", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "--loglevel" not in helped.stdout


@pytest.mark.parametrize("name", ["latency", "throughput"])
def test_the_workers_kafka_consumer_waits_at_the_broker_only_as_long_as_the_profile_says(name: str, tmp_path) -> None:
    """Faust builds its aiokafka consumer with a 1,500 ms fetch wait; a busy partition can sit
    behind a fetch of quiet ones for that long (marketpipe/processors/faust_consumer.py, fetch_wait)."""
    from marketpipe.processors.profile import profile

    async def built() -> Any:
        app = build_app(settings(MARKETPIPE_HOME=str(tmp_path), MARKETPIPE_PROCESSOR_PROFILE=name,
                                 MARKETPIPE_PROCESSOR_AGENTS="all"))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._max_poll_records
        finally:
            await consumer.stop()

    wait, poll = asyncio.run(built())
    assert wait == profile(name).fetch_max_wait_ms < 1500
    assert poll == profile(name).max_poll_records  # the rest is Faust's consumer as it was


def test_a_bars_only_worker_fetches_md_tick_in_large_paced_batches(tmp_path) -> None:
    """Every bar batch snapshots each book it touched: a bars-only worker fetches for up to
    BAR_FETCH_WAIT_MS until BAR_FETCH_MIN_BYTES are there, where the normalize path fetches at once."""
    from marketpipe.processors import profile as prof

    async def built(agents: str) -> Any:
        app = build_app(settings(MARKETPIPE_HOME=str(tmp_path), MARKETPIPE_PROCESSOR_AGENTS=agents))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes, consumer._max_poll_records
        finally:
            await consumer.stop()

    assert asyncio.run(built("bars")) == (prof.BAR_FETCH_WAIT_MS, prof.BAR_FETCH_MIN_BYTES, prof.BAR_MAX_POLL_RECORDS)
    wait, min_bytes, _ = asyncio.run(built("normalize"))
    assert wait < prof.BAR_FETCH_WAIT_MS and min_bytes == 1


def test_the_process_flags_override_the_environment_and_name_the_profiles() -> None:
    import argparse

    from marketpipe.cli import process as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["process", "--profile", "throughput", "--agents", "normalize", "--bar-grace", "3s"])
    s = cli.with_flags(args, settings(MARKETPIPE_PROCESSOR_PROFILE="latency"))
    assert (s.processor.profile, s.processor.agents, s.processor.bar_grace_ms) == ("throughput", "normalize", 3000)
    unchanged = cli.with_flags(parser.parse_args(["process"]), settings(MARKETPIPE_PROCESSOR_PROFILE="throughput"))
    assert unchanged.processor.profile == "throughput"
    shown = parser._subparsers._group_actions[0].choices["process"].format_help()  # type: ignore[union-attr]
    assert "MARKETPIPE_PROCESSOR_PROFILE" in shown and "latency" in shown and "throughput" in shown


def test_the_trading_calendar_setting_dates_clock_times_on_a_weekend() -> None:
    """A clock time received on a Saturday is the last trading day's on the exchange calendar; a
    simulator trades on Saturdays too, and with ``every-day`` its rows keep the day they were sent."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from marketpipe.processors.normalize import decoder_state

    shanghai = ZoneInfo("Asia/Shanghai")
    saturday = datetime(2026, 12, 5, 10, 0, 1, tzinfo=shanghai)  # the day after Friday 2026-12-04
    recv_ns = int(saturday.timestamp()) * 10**9
    dated = {}
    for calendar in ("exchange", "every-day"):
        s = settings(MARKETPIPE_TRADING_CALENDAR=calendar)
        sink = Collect()
        n = Normalizer(Output(s, producer=sink), decoder_state(s))
        assert n.process("jvquant", jv_record("lv2_600519=10:00:00.120,77001,1572.12,100", 1, recv_ns)).records == 1
        [tick] = sink.records("p.md.tick")
        dated[calendar] = datetime.fromtimestamp(tick["event_time"] / 1000, shanghai)
    assert dated["exchange"] == datetime(2026, 12, 4, 10, 0, 0, 120_000, tzinfo=shanghai)
    assert dated["every-day"] == datetime(2026, 12, 5, 10, 0, 0, 120_000, tzinfo=shanghai)
    assert settings().processor.trading_calendar == "exchange"  # real markets unless told otherwise


def test_simulator_fed_workers_date_clock_times_every_day(monkeypatch, tmp_path) -> None:
    """The demo on simulators and the test helper's worker ask for the every-day calendar (on a
    weekend the exchange calendar dated their feed to Friday: bars on the wrong day, quotes past
    md.quote's one-day retention); a demo on a live feed keeps the exchange's."""
    import argparse

    from marketpipe import demo, testing
    from marketpipe.cli import process as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert cli.with_flags(parser.parse_args(["process", "--trading-calendar", "every-day"]),
                          settings()).processor.trading_calendar == "every-day"
    demo_args = demo.DemoOptions(clock_speed=1, rate=100, bar="5s")
    [simulated] = [s.args for s in demo.plan(settings(), demo_args, {}) if s.name == "processor"]
    live_env = {p.live_env: "token" for p in demo.providers.PROVIDERS if p.clock_times}
    [live] = [s.args for s in demo.plan(settings(), demo_args, live_env) if s.name == "processor"]
    assert simulated[simulated.index("--trading-calendar") + 1] == "every-day"
    assert live[live.index("--trading-calendar") + 1] == "exchange"
    started: list[list[str]] = []
    monkeypatch.setattr(testing.subprocess, "Popen", lambda argv, **_: started.append(argv))
    testing.start_worker({}, tmp_path / "worker.log")
    [argv] = started
    assert argv[argv.index("--trading-calendar") + 1] == "every-day"


def test_a_good_frame_has_its_headers_parsed_once(monkeypatch) -> None:
    """The producer's headers become a RawMeta in one pass; the str dict of every header is built only
    for a dead letter (it was built for every frame as well, ~5 µs each)."""
    from marketpipe.processors import normalize

    built: list[object] = []
    real = normalize.header_dict
    monkeypatch.setattr(normalize, "header_dict", lambda h: built.append(h) or real(h))
    sink = Collect()
    n = Normalizer(Output(settings(), producer=sink))
    n.process("jvquant", jv_record("lv2_600519=10:00:00.120,77001,1572.12,100", 1, shanghai_ns("10:00:01")))
    assert len(sink.records("p.md.tick")) == 1 and built == []
    n.process("jvquant", RawRecord("p.raw.jvquant", 2, 2, b"\x00not deflate", [("provider", b"jvquant"), ("x", b"y")]))
    [letter] = sink.records("p.md.dlq")
    assert len(built) == 1 and letter["headers"] == {"provider": "jvquant", "x": "y"}
