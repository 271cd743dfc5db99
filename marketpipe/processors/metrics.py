"""Prometheus metrics of the processor workers (served by marketpipe.runtime.metrics.serve).

Counters are advanced once per batch from the agents' own tallies, not once per record, so
metering costs nothing measurable on the hot path.
"""

from prometheus_client import Counter, Gauge, Histogram

FRAMES = Counter("marketpipe_processor_frames_total", "Raw frames processed", ["provider"])
RECORDS = Counter("marketpipe_processor_records_total", "Records written, by logical topic", ["topic"])
AB_DROPPED = Counter("marketpipe_processor_ab_duplicates_total", "A/B capture: records dropped because the "
                     "other line delivered them first", ["provider"])
LATE = Counter("marketpipe_processor_late_ticks_total", "Ticks later than the bar correction horizon (not binned)")
BATCH = Histogram("marketpipe_processor_batch_seconds", "Time to process and flush one batch", ["agent"],
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LAG = Histogram("marketpipe_processor_receive_to_written_seconds",
                "From the producer's receive time of a batch's newest frame to its records being written",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
JIN10_UNKNOWN_EVENTS = Counter("marketpipe_processor_jin10_unknown_events_total",
                               "Jin10 push events not understood yet (kept on the raw topic)", ["event"])
BOOKS = Gauge("marketpipe_processor_bar_books", "Bar books (provider, symbol) held by this worker")

# feed health (marketpipe/processors/status.py): what md.status says, as metrics
STATUS_EVENTS = Counter("marketpipe_feed_status_events_total", "md.status records written, by kind "
                        "(gap, stale, fresh, stats, ...)", ["provider", "kind"])
FEED_RATE = Gauge("marketpipe_feed_messages_per_second", "Raw frames per second over the last full minute",
                  ["provider"])
FEED_LATENCY = Gauge("marketpipe_feed_receive_latency_ms", "Receive time - event time over the last full minute",
                     ["provider", "quantile"])
FEED_STALE = Gauge("marketpipe_feed_stale_symbols", "Symbols silent for several usual intervals while their "
                   "market is open", ["provider"])
FEED_GAP_SECONDS = Counter("marketpipe_feed_gap_seconds_total", "Receive-time length of the gaps found in the "
                           "raw sequence (reconnects, lost frames, producer restarts)", ["provider"])
