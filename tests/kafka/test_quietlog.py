"""Repeated log lines collapse into one line plus a count; plaintext credentials are flagged once."""

from __future__ import annotations

import logging

import pytest

from marketpipe.kafka.quietlog import RepeatFilter, warn_plaintext


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, name: str = "x", level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_an_outage_flood_becomes_one_line_plus_a_count() -> None:
    clock = Clock()
    f = RepeatFilter(window=10, clock=clock)
    passed = []
    for i in range(700):  # 70 lines/s for 10 s, numbers differing as librdkafka's do
        clock.now += 0.01428
        rec = _record("Connect to ipv4#127.0.0.1:%d failed (after %dms in state CONNECT)", 9092, i % 7)
        if f.filter(rec):
            passed.append(rec.getMessage())
    clock.now += 0.5
    last = _record("Connect to ipv4#127.0.0.1:%d failed (after %dms in state CONNECT)", 9092, 3)
    assert f.filter(last)
    assert len(passed) == 1
    assert last.getMessage().endswith("(repeated 699 times in 10 s)"), last.getMessage()


def test_different_lines_and_loggers_are_not_merged() -> None:
    f = RepeatFilter(window=10, clock=Clock())
    assert f.filter(_record("broker down"))
    assert f.filter(_record("broker down", name="other"))
    assert f.filter(_record("broker down", level=logging.ERROR))
    assert f.filter(_record("topic missing"))
    assert not f.filter(_record("broker down"))


def test_a_line_after_a_quiet_window_passes_without_a_count() -> None:
    clock = Clock()
    f = RepeatFilter(window=10, clock=clock)
    assert f.filter(_record("reconnecting"))
    clock.now += 11
    rec = _record("reconnecting")
    assert f.filter(rec) and rec.getMessage() == "reconnecting"


def test_the_filter_on_a_real_handler(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("quietlog.test")
    caplog.handler.addFilter(RepeatFilter(window=60))
    for _ in range(100):
        log.warning("Kafka: all brokers down")
    assert [r.getMessage() for r in caplog.records] == ["Kafka: all brokers down"]


@pytest.mark.parametrize("url, warned", [
    ("http://jvquant.com/query/server?token=x", True),
    ("ws://1.2.3.4:8080/?token=x", True),
    ("10.0.0.1:9000", True),  # a bare host:port is dialled as http/ws
    ("https://jvquant.com", False),
    ("wss://data.infoway.io/ws", False),
    ("ws://127.0.0.1:8765/?token=x", False),  # the local simulators: nobody on the path
])
def test_credentials_over_plaintext_are_flagged_once(url: str, warned: bool, caplog) -> None:
    from marketpipe.kafka import quietlog

    quietlog._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="marketpipe.security"):
        for _ in range(3):
            warn_plaintext(url, "jvQuant token")
    lines = [r.getMessage() for r in caplog.records if r.name == "marketpipe.security"]
    assert len(lines) == (1 if warned else 0), lines
    if warned:
        assert lines[0].startswith("jvQuant token sent over plain ") and "token=x" not in lines[0]  # no URL, no secret


def test_every_process_log_handler_collapses_repeats() -> None:
    from marketpipe.runtime import logs

    logs.setup("INFO")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_marketpipe", False)]
    assert ours and all(any(isinstance(f, RepeatFilter) for f in h.filters) for h in ours)
