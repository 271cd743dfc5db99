"""``marketpipe sim ...`` as a process: prints where to connect, serves, stops on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.paths import ROOT

# The sim command alone (as `marketpipe sim` registers it), so a half-built sibling command
# module cannot break this test.
SIM = [sys.executable, "-c",
       "import argparse, sys; from marketpipe import settings; from marketpipe.cli import sim as cli; "
       "p = argparse.ArgumentParser(prog='marketpipe'); cli.register(p.add_subparsers()); "
       "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a, settings.load()))"]


@pytest.mark.parametrize("provider, variable", [("jvquant", "JVQUANT_BASE_URL"), ("jin10", "JIN10_URL")])
def test_sim_command_prints_address_serves_and_stops(provider: str, variable: str, tmp_path: Path) -> None:
    record = tmp_path / "sent.jsonl"
    proc = subprocess.Popen([*SIM, "sim", provider, "--rate", "50", "--seed", "3",
                             "--record", str(record)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        name, _, address = line.partition("=")
        assert name == variable and address.startswith("http://127.0.0.1:")
        if provider == "jvquant":
            with urllib.request.urlopen(f"{address}/query/server?market=ab&type=websocket&token=x", timeout=5) as r:
                assert json.load(r)["code"] == "0"
        else:
            with urllib.request.urlopen(f"{address}/socket.io/?EIO=3&transport=polling&t=x", timeout=5) as r:
                assert ':0{"sid":' in r.read().decode()  # the open packet ("40" follows on the next GET)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if provider == "jin10":
        assert json.loads(record.read_text().splitlines()[0])["type"] == "control"


def test_sim_help_lists_providers() -> None:
    out = subprocess.run([*SIM, "sim", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30).stdout
    assert all(p in out for p in ("jvquant", "infoway", "jin10", "_control/fault"))
