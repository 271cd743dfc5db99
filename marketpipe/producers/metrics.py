"""Prometheus metrics of the producers (served by marketpipe.runtime.metrics.serve)."""

from prometheus_client import Counter, Gauge

FRAMES = Counter("marketpipe_producer_frames_total", "Frames received and handed to Kafka",
                 ["provider", "frame"])
BYTES = Counter("marketpipe_producer_bytes_total", "Bytes of frames received", ["provider"])
RECONNECTS = Counter("marketpipe_producer_reconnects_total", "Reconnect attempts", ["provider", "reason"])
ERRORS = Counter("marketpipe_producer_errors_total", "Errors by kind", ["provider", "kind"])
QUEUE = Gauge("marketpipe_producer_queue_depth", "Frames waiting in the local Kafka queue", ["provider"])
BLOCKED = Counter("marketpipe_producer_blocked_seconds_total",
                  "Seconds the receive loop waited for the Kafka queue to drain", ["provider"])
CONNECTED = Gauge("marketpipe_producer_connected", "1 while a provider session is up", ["provider"])
LIVENESS_ACTIONS = Counter("marketpipe_producer_liveness_actions_total",
                           "Silent subscriptions acted on: resubscribed, recycled", ["provider", "action"])
