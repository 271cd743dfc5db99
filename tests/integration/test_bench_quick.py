"""Every benchmark in bench/ runs in its quick mode (a small backlog, seconds) and reports sane structure.

These tests check that a benchmark works — it finishes, exits 0, and its JSON report has the shape
its tables are printed from — never its figures: those depend on the machine and its load and are
only meaningful as ratios from one ``make bench`` run.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

from tests.support.bench import BENCH, positive, run_quick


def test_records_in_waits_for_a_topic_that_is_still_being_created(mp_settings) -> None:
    """A topic created a moment ago may be missing from the metadata; counting it must wait, not crash."""
    sys.path.insert(0, str(BENCH))
    from common import records_in
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"late.{uuid.uuid4().hex[:6]}"

    def create_soon() -> None:
        time.sleep(1.0)  # the scenario: the topic appears only while records_in is already waiting
        admin = AdminClient(mp_settings.kafka.client_config())
        admin.create_topics([NewTopic(mp_settings.topic(name), 3, -1)])[mp_settings.topic(name)].result(30)

    creator = threading.Thread(target=create_soon)
    creator.start()
    try:
        assert records_in(mp_settings, [name]) == 0
    finally:
        creator.join()


def test_processors_quick(mp_env: dict[str, str], tmp_path: Path) -> None:
    report = run_quick("processors", mp_env, tmp_path)
    by = {r["key"]: r for r in report["variants"]}
    assert set(by) - {"c0"} == {"a", "b", "c", "c-lat", "c+", "d"}
    assert report["expected_records"] > report["frames"] > 0
    for key, row in by.items():
        if row.get("skipped"):
            assert key == "d", f"only the Quix variant may be skipped (quixstreams missing): {row}"
            continue
        positive(row, "records")
        assert row["cpu"] >= 0 and row["wall"] >= 0 and row["per_cpu"] >= 0, row
        want = report["frames"] if key == "a" else report["expected_records"]
        assert row["records"] >= want, row
    assert report["ratios"]["c/b"] > 0


def test_producers_quick(mp_env: dict[str, str], tmp_path: Path) -> None:
    report = run_quick("producers", mp_env, tmp_path)
    kinds = {(r["provider"], r["kind"]) for r in report["rows"]}
    assert kinds == {(p, k) for p in ("jvquant", "infoway") for k in ("bare", "producer")}
    for row in report["rows"]:
        positive(row, "fps")
        assert row["cpu_us"] >= 0, row  # /proc counts CPU in 10 ms ticks: a 1 s window may show none
        assert row["total"] <= row["sent"] + 1, row


def test_latency_quick(mp_env: dict[str, str], tmp_path: Path) -> None:
    report = run_quick("latency", mp_env, tmp_path)
    rows = {(r["profile"], r["records_per_s"]) for r in report["rows"]}
    assert rows == {(p, n) for p in ("default", "throughput") for n in (1000, 10000)}
    cells = {(c["profile"], c["rate"]): c for c in report["cells"]}
    assert len(cells) == 4 and all(c["runs"] == 1 for c in cells.values())
    for c in cells.values():
        assert c["p99_min"] <= c["p99_median"] <= c["p99_max"] <= c["max"], c
    for row in report["rows"]:
        assert 0 < row["got"] <= row["expected"] * 1.05, row
        positive(row, "p50", "p90", "p99", "max")
        assert row["p50"] <= row["p90"] <= row["p99"] <= row["max"], row
