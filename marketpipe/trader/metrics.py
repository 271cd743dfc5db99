"""Prometheus metrics of the trade consumer (served by marketpipe.runtime.metrics.serve)."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("marketpipe_trader_events_total", "Order events published, by state", ["state"])
REJECTIONS = Counter("marketpipe_trader_rejections_total", "Commands rejected, by the rule that failed", ["rule"])
HALTED = Gauge("marketpipe_trader_halted", "1 while the kill switch halts new orders")
POISON = Counter("marketpipe_trader_poison_records_total",
                 "order.commands records that could not be handled (rejected, offset committed), by rule", ["rule"])
CONTROL_UNREADABLE = Gauge("marketpipe_trader_control_unreadable",
                           "1 while trading is halted because the last kill-switch record could not be read")
REALLOCATIONS = Counter("marketpipe_trader_counter_reallocations_total",
                        "Times the trade counter address was dropped and allocated again, by cause", ["cause"])
