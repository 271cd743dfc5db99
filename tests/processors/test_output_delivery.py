"""A record Kafka refuses is counted by the processor's Output, so the batch is never acknowledged.

The delivery callback is set once in the producer's configuration (not per produce call); this
checks that it still fires for failures. No broker answers on the port, and records time out
after 300 ms.
"""

from __future__ import annotations

from marketpipe import settings
from marketpipe.processors.output import Output
from marketpipe.runtime.localhost import free_port


def test_a_refused_record_is_reported_by_flush() -> None:
    out = Output(settings.load({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                                "KAFKA_OPT_MESSAGE_TIMEOUT_MS": "300"}))
    out.send("md.tick", "Tick", "600519.SH", {
        "provider": "jvquant", "symbol": "600519.SH", "venue_symbol": "600519", "event_time": 1, "receive_time_ns": 2,
        "price": 1.0, "size": 100.0, "amount": None, "side": "UNKNOWN", "trade_id": "1", "session": None,
        "parser_version": "t", "source": {"topic": "raw.jvquant", "partition": 0, "offset": 1, "index": 0}}, 1)
    problem = out.flush_now()
    assert problem is not None and problem.startswith("0 records unacknowledged and 1 refused by Kafka (")
    assert "Message timed out" in problem  # the reason is said, not only counted
