"""Shared by the integration tests that run pipeline processes on the session broker: bar and
trade-id bookkeeping here; starting, stopping and reading processes in ``marketpipe.testing``."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from marketpipe import settings as settings_mod

# the process helpers live once, in the pytest plugin downstream services use too
from marketpipe.testing import read_topic, start_producer, start_worker, stop_worker, wait_for  # noqa: F401


def source_key(r: dict[str, Any]) -> tuple[Any, ...]:
    src = r["source"]
    return src["topic"], src["partition"], src["offset"], src["index"]


def final_bars(bars: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for b in bars:
        key = (b["provider"], b["symbol"], b["window_start"])
        if key not in latest or b["revision"] > latest[key]["revision"]:
            latest[key] = b
    return latest


def bar_differences(got: dict[tuple[str, str, int], dict[str, Any]],
                    expected: dict[tuple[str, str, int], dict[str, Any]]) -> list[str]:
    """Readable field-by-field differences between final bars and offline bars (revision ignored)."""
    out = [f"missing bar {k}" for k in expected.keys() - got.keys()]
    out += [f"unexpected bar {k}" for k in got.keys() - expected.keys()]
    for k in expected.keys() & got.keys():
        for field, want in expected[k].items():
            if field != "revision" and got[k].get(field) != want:
                out.append(f"{k} {field}: got {got[k].get(field)!r}, expected {want!r}")
    return sorted(out)


def wait_for_bars(s: settings_mod.Settings, expected: dict[tuple[str, str, int], dict[str, Any]],
                  timeout: float = 90.0) -> list[str]:
    """Poll md.bar until its final bars equal ``expected``; the remaining differences otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        diff = bar_differences(final_bars(read_topic(s, "md.bar", idle=1)), expected)
        if not diff or time.monotonic() > deadline:
            return diff
        time.sleep(1)


def quiesce(sim: Any) -> dict[str, Any]:
    """Stop the simulator's pushes (socket kept open), let in-flight frames arrive, return its counters."""
    sim.sim.fault("stall", 600)
    time.sleep(1.5)
    return sim.stats()


def sent_trade_ids(record: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in record.read_text().splitlines():
        for row in json.loads(line).get("rows", []):
            for tid in row.get("trade_ids", []):
                ids[f"{row.get('code', '')}:{tid}"] += 1
    return ids
