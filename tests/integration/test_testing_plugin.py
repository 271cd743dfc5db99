"""marketpipe.testing on the session's real broker: a running pipeline, and the example downstream
project's test passing on it."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

EXAMPLE = ROOT / "examples" / "downstream"


def test_pipeline_fixture_delivers_typed_ticks_and_quotes(mp_pipeline) -> None:
    from marketpipe.client import Quote, Tick

    mp_pipeline.start(jvquant=["600519"], infoway=["BTCUSDT"])
    ticks = mp_pipeline.wait_for_ticks(symbol="BTCUSDT", n=5, timeout=120)
    assert len(ticks) == 5 and all(isinstance(t, Tick) and t.provider == "infoway" for t in ticks)
    quotes = mp_pipeline.wait_for_quotes(symbol="600519.SH", n=2, timeout=60)
    assert all(isinstance(q, Quote) and q.last > 0 for q in quotes)
    with pytest.raises(AssertionError, match="0 of 1 md.tick records for NOPE.SH"):
        mp_pipeline.wait_for_ticks(symbol="NOPE.SH", n=1, timeout=2)


def _entry_point_installed() -> bool:
    return any(ep.name == "marketpipe.testing" for ep in importlib.metadata.entry_points(group="pytest11"))


def test_the_example_downstream_project_passes_on_the_session_broker(kafka_bootstrap: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    # An install made before the entry point existed (an old editable install) does not load the
    # plugin by itself; name it then. `-p` and the entry point share a name: never loaded twice.
    load = [] if _entry_point_installed() else ["-p", "marketpipe.testing"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *load],
                            cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "1 passed" in result.stdout
    assert f"marketpipe.testing: Kafka broker external at {kafka_bootstrap}" in output
