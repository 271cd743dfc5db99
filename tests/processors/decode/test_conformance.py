"""The decoders on the conformance corpus: frames shaped exactly as the provider documents print them.

Every case of ``tests/data/conformance/<provider>/`` (see its README) is decoded as it travels on
the wire and must give exactly the expected records, dead letters, control counts and skips.
``marketpipe decode`` is run on corpus files as printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from marketpipe.processors.deadletter import dead_letters
from marketpipe.processors.decode import DecoderState, ParseError, RawFrame, decode
from marketpipe.processors.decode import metrics as decode_metrics
from marketpipe.rawframe import RawMeta
from tests.support.paths import CONFORMANCE

CORPUS = CONFORMANCE


@dataclass
class Case:
    provider: str
    name: str
    path: Path  # the frame file, as printed
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> bytes:
        return self.path.read_bytes()

    @property
    def recv_ns(self) -> int:
        return iso_ms(self.spec["recv"]) * 1_000_000

    def frames(self) -> list[RawFrame]:
        """The frame as it travels on the wire (and, for jvQuant data, also as plain text)."""
        wire = self.spec.get("wire", "text")
        if wire == "deflate":
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            values = [(c.compress(self.text) + c.flush(), "binary"), (self.text, "text")]
        else:
            values = [(self.text, "text")]
        return [RawFrame(self.provider, v, RawMeta(self.provider, "c", 1, 1, self.recv_ns, op, "data"),
                         f"raw.{self.provider}", 0, 0, headers=dict(self.spec.get("headers", {}))) for v, op in values]


def iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def load(provider: str) -> list[Case]:
    out = []
    for spec_path in sorted((CORPUS / provider).glob("*.expected.json")):
        name = spec_path.name.removesuffix(".expected.json")
        [frame_path] = [p for p in spec_path.parent.glob(f"{name}.*") if p != spec_path]
        out.append(Case(provider, name, frame_path, json.loads(spec_path.read_text(encoding="utf-8"))))
    return out


CASES = load("jvquant") + load("infoway")


def test_corpus_is_complete() -> None:
    # every expected file has its frame (load() unpacks exactly one), and every kind of frame is there
    assert len(CASES) == sum(1 for d in ("jvquant", "infoway") for _ in (CORPUS / d).glob("*.expected.json"))
    kinds = {c.spec.get("control") or c.spec.get("dead_letter") and "dead letter" or
             (c.spec["records"] and c.spec["records"][0]["schema"]) for c in CASES}
    assert {"Quote", "Tick", "Depth", "Kline", "dead letter", "command reply", "ack", "error"} <= kinds


def check_records(records: list[Any], expected: list[dict[str, Any]]) -> None:
    assert [(n.schema, n.key) for n in records] == [(e["schema"], e["key"]) for e in expected]
    for n, e in zip(records, expected):
        for name, want in e["fields"].items():
            got = n.record[name]
            if name == "event_time":
                want = iso_ms(want)
            assert got == want, (n.key, name, got, want)


def counted(c: Any, *labels: str) -> float:
    return float(c.labels(*labels)._value.get())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.provider}/{c.name}")
def test_corpus_case(case: Case) -> None:
    spec = case.spec
    for frame in case.frames():
        control = spec.get("control")
        before_control = counted(decode_metrics.CONTROL, case.provider, control) if control else 0.0
        before_skipped = counted(decode_metrics.SKIPPED, case.provider, "lv2 zero price")
        if spec.get("dead_letter") or spec.get("rejects"):
            with pytest.raises(ParseError) as info:
                decode(frame, DecoderState())
            err = info.value
            if spec.get("dead_letter"):
                assert spec["dead_letter"] in str(err) and err.partial == [] and err.rejects == []
                [dl] = dead_letters(frame, err, 0)
                assert dl["raw"] == frame.value
            else:
                check_records(err.partial, spec["records"])
                assert len(err.rejects) == len(spec["rejects"])
                for rej, want in zip(err.rejects, spec["rejects"]):
                    assert want["reason"] in rej.reason and rej.raw == want["raw"].encode()
        else:
            records = decode(frame, DecoderState())
            check_records(records, spec["records"])
        if control:
            assert counted(decode_metrics.CONTROL, case.provider, control) == before_control + 1
        assert counted(decode_metrics.SKIPPED, case.provider, "lv2 zero price") == before_skipped + spec.get("skipped", 0)


# ---- marketpipe decode on the files as printed -------------------------------------------------

def cli(case: Case, path: Path | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "marketpipe", "decode", case.provider, str(path or case.path),
            "--recv-ns", str(case.recv_ns)]
    for name, value in case.spec.get("headers", {}).items():
        args += ["--header", f"{name}={value}"]
    return subprocess.run(args, capture_output=True, timeout=60)


def by_name(provider: str, name: str) -> Case:
    return next(c for c in CASES if (c.provider, c.name) == (provider, name))


@dataclass
class Printed:
    schema: str
    key: str
    record: dict[str, Any]


@pytest.mark.parametrize("provider,name", [
    ("jvquant", "lv1_documented_order"), ("jvquant", "lv2_documented_packet"), ("jvquant", "lv2_bad_record"),
    ("jvquant", "reply_all"), ("infoway", "kline_resplist"), ("infoway", "kline_resplist_two_types"),
    ("infoway", "trade_002"), ("infoway", "depth_003")])
def test_cli_on_frames_as_printed(provider: str, name: str) -> None:
    case = by_name(provider, name)
    run = cli(case)
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    schema_of = {"md.tick": "Tick", "md.quote": "Quote", "md.depth": "Depth", "md.kline": "Kline"}
    printed = [Printed(next(s for k, s in schema_of.items() if k in topic_guess(r)), r["symbol"], r) for r in rows]
    check_records(printed, case.spec["records"])
    if case.spec.get("dead_letter"):
        assert run.returncode == 1 and case.spec["dead_letter"] in run.stderr.decode()
    elif case.spec.get("rejects"):
        lines = run.stderr.decode().splitlines()
        assert run.returncode == 1 and len(lines) == len(case.spec["rejects"])
        assert all(w["reason"] in line for w, line in zip(case.spec["rejects"], lines))
    else:
        assert run.returncode == 0 and run.stderr == b"", run.stderr


def topic_guess(record: dict[str, Any]) -> str:
    """The logical topic of a printed record, from the fields only its schema has."""
    if "interval" in record:
        return "md.kline"
    if "field_order" in record:
        return "md.quote"
    if "trade_id" in record:
        return "md.tick"
    return "md.depth"


def test_cli_on_the_deflated_wire_frame(tmp_path: Path) -> None:
    case = by_name("jvquant", "lv2_documented_packet")
    wire = tmp_path / "frame.bin"
    wire.write_bytes(case.frames()[0].value)
    run = cli(case, wire)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["trade_id"] for line in run.stdout.splitlines()] == [
        "1234567", "1234568", "2234567", "2234568"]


# ---- the simulators speak the corpus's shapes ---------------------------------------------------

def token(text: str) -> str:
    """What a field looks like: the grammar of a frame, without its values."""
    from marketpipe.processors.decode.common import is_clock

    if is_clock(text):
        return "clock"
    if text.isdigit():
        return "int"
    try:
        float(text)
        return "decimal"
    except ValueError:
        return "text"


def row_shape(row: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
    key, _, payload = row.partition("=")
    return key.partition("_")[0], tuple(tuple(token(f) for f in rec.split(",")) for rec in payload.split("|"))


def json_shape(value: Any) -> Any:
    """Keys in order and value types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return [(k, json_shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", json_shape(value[0])] if value else ["list"]
    return type(value).__name__


def frame_of(provider: str, value: str, recv_ns: int, headers: dict[str, str] | None = None) -> RawFrame:
    return RawFrame(provider, value.encode(), RawMeta(provider, "sim", 1, 1, recv_ns, "text", "data"),
                    f"raw.{provider}", 0, 0, headers=headers or {})


@pytest.mark.parametrize("dialect,lv1_case,lv2_case", [
    ("documented", "lv1_documented_order", "lv2_documented_packet"),
    ("notes", "lv1_notes_order", "lv2_notes_example")])
def test_jvquant_simulator_rows_have_the_corpus_shapes_and_decode_to_its_state(
        dialect: str, lv1_case: str, lv2_case: str) -> None:
    from marketpipe.providers.jvquant.simulator import JvQuantSim
    from marketpipe.simulators.market import Clock

    sim = JvQuantSim(symbols=("600519",), seed=3, dialect=dialect)
    # a trading day's session (Thu 2026-12-03 10:00 Shanghai): on a weekend or holiday the decoder
    # rightly dates a clock time to the last trading day, and the wall clock's date would differ
    sim.market.clock = Clock(start_ms=1_796_263_200_000)
    trades = sim.market.trades(["600519"], 2)
    st = sim.market.states["600519"]
    [(lv1, _)] = sim._rows("lv1", "600519", trades)
    [(lv2, _)] = sim._rows("lv2", "600519", trades)
    corpus_lv1 = by_name("jvquant", lv1_case).text.decode().split("\n")[0]
    corpus_lv2 = by_name("jvquant", lv2_case).text.decode().split("\n")[0]
    assert row_shape(lv1) == row_shape(corpus_lv1)
    assert row_shape(lv2) == row_shape(corpus_lv2)
    recv_ns = trades[-1].ts_ms * 1_000_000
    [q] = decode(frame_of("jvquant", lv1, recv_ns), DecoderState())
    want_order = by_name("jvquant", lv1_case).spec["records"][0]["fields"]["field_order"]
    assert (q.record["field_order"], q.record["cum_volume"], q.record["cum_amount"]) == (
        want_order, st.volume, round(st.amount, 2))
    ticks = decode(frame_of("jvquant", lv2, recv_ns), DecoderState())
    assert [(t.record["trade_id"], t.record["event_time"], t.record["price"]) for t in ticks] == [
        (str(t.trade_id), t.ts_ms, t.price) for t in trades]


@pytest.mark.parametrize("dialect,case,headers", [
    ("documented", "kline_resplist_enveloped", {"kline_types": "1"}),
    ("notes", "kline_flat_capture", {})])
def test_infoway_simulator_klines_have_the_corpus_shapes_and_decode_to_its_bars(
        dialect: str, case: str, headers: dict[str, str]) -> None:
    from marketpipe.providers.infoway.simulator import InfowaySim

    sim = InfowaySim(symbols=("600519.SH",), seed=3, dialect=dialect)
    code = next(iter(sim.market.states))
    trades = sim.market.trades([code], 5)
    pushed = sim._kline_frames(trades, {}, code, 1)[-1]  # the current bar (a finished one may precede it)
    corpus = json.loads(by_name("infoway", case).text)
    if dialect == "documented":
        assert json_shape(json.loads(pushed)) == json_shape(corpus)
    else:  # the capture's keys, in any order
        assert sorted(json_shape(json.loads(pushed)["data"])) == sorted(json_shape(corpus["data"]))
    [k] = decode(frame_of("infoway", pushed, trades[-1].ts_ms * 1_000_000, headers), DecoderState())
    bar = sim.bars.bars[(code, 60)]
    assert (k.key, k.record["interval"], k.record["event_time"]) == ("600519.SH", "1m", bar.start_s * 1000)
    assert (k.record["open"], k.record["high"], k.record["low"], k.record["close"]) == (
        bar.open, bar.high, bar.low, bar.close)


def test_unknown_dialect_is_refused() -> None:
    from marketpipe.providers.jvquant.simulator import JvQuantSim

    with pytest.raises(ValueError, match="dialect"):
        JvQuantSim(dialect="guess")
