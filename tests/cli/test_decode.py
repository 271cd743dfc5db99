"""`marketpipe decode <provider> [FILE|-]`: one raw frame in, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys

from marketpipe.processors.decode import ParseError, RawFrame, decode
from marketpipe.rawframe import RawMeta
from tests.support.paths import FRAMES

RECV_NS = 1786775227483000000


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "marketpipe", "decode", *args], input=stdin,
                          capture_output=True, timeout=60)


def test_deflated_jvquant_file_prints_avro_field_names() -> None:
    path = FRAMES / "jvquant_lv1_lv2.deflate"
    run = cli("jvquant", str(path), "--recv-ns", str(RECV_NS))
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    expected = decode(RawFrame("jvquant", path.read_bytes(), RawMeta("jvquant", "", 0, 0, RECV_NS, "binary", "data"),
                               str(path)))
    assert rows == [n.record for n in expected]
    assert [r["symbol"] for r in rows] == ["600519.SH"] * 3 and rows[0]["field_order"] == "amount,volume"


def test_stdin_infoway_trade() -> None:
    run = cli("infoway", "-", stdin=(FRAMES / "infoway_trade.json").read_bytes())
    assert run.returncode == 0, run.stderr
    [row] = [json.loads(line) for line in run.stdout.splitlines()]
    assert (row["symbol"], row["price"], row["side"]) == ("BTCUSDT", 63039.0, "BUY")


def test_control_frame_prints_nothing() -> None:
    run = cli("jin10", stdin=b"3probe")
    assert (run.returncode, run.stdout) == (0, b"")


def test_malformed_frame_exits_1_with_the_dlq_reason() -> None:
    bad = b'{"code":10002,"data":{"p":"x","s":"BTCUSDT","t":1,"v":"1"}}'
    run = cli("infoway", stdin=bad)
    frame = RawFrame("infoway", bad, RawMeta("infoway", "", 0, 0, 0, "text", "data"))
    try:
        decode(frame)
        raise AssertionError("frame should not decode")
    except ParseError as exc:
        reason = str(exc)
    assert run.returncode == 1 and run.stdout == b""
    assert run.stderr.decode().strip() == reason
