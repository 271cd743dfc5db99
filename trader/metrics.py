"""Prometheus metrics of the trade consumer (served by marketpipe.metrics.serve)."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("marketpipe_trader_events_total", "Order events published, by state", ["state"])
REJECTIONS = Counter("marketpipe_trader_rejections_total", "Commands rejected, by the rule that failed", ["rule"])
HALTED = Gauge("marketpipe_trader_halted", "1 while the kill switch halts new orders")
