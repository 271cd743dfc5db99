"""Write deploy/grafana/marketpipe.json: a Grafana dashboard over marketpipe's Prometheus metrics.

Run ``python deploy/grafana/gen_dashboard.py`` after changing a metric; tests/deploy/test_deploy.py checks
that every metric the dashboard queries exists in the code.
"""

from __future__ import annotations

import json
from pathlib import Path

PANELS = [
    ("Producer frames/s by provider", 'sum by (provider) (rate(marketpipe_producer_frames_total[1m]))', "ops"),
    ("Producer reconnects (5m)", 'sum by (provider, reason) (increase(marketpipe_producer_reconnects_total[5m]))', "short"),
    ("Producer Kafka queue depth", 'max by (provider) (marketpipe_producer_queue_depth)', "short"),
    ("Producer blocked on Kafka (s/s)", 'sum by (provider) (rate(marketpipe_producer_blocked_seconds_total[1m]))', "s"),
    ("Provider sessions up", 'sum by (provider) (marketpipe_producer_connected)', "short"),
    ("Producer errors (5m)", 'sum by (provider, kind) (increase(marketpipe_producer_errors_total[5m]))', "short"),
    ("Processor frames/s", 'sum by (provider) (rate(marketpipe_processor_frames_total[1m]))', "ops"),
    ("Records written/s by topic", 'sum by (topic) (rate(marketpipe_processor_records_total[1m]))', "ops"),
    ("Dead letters (5m)", 'sum(increase(marketpipe_processor_records_total{topic="md.dlq"}[5m]))', "short"),
    ("Receive → written p99",
     'histogram_quantile(0.99, sum by (le) (rate(marketpipe_processor_receive_to_written_seconds_bucket[5m])))', "s"),
    ("Batch time p99 by agent",
     'histogram_quantile(0.99, sum by (le, agent) (rate(marketpipe_processor_batch_seconds_bucket[5m])))', "s"),
    ("Late ticks beyond horizon (5m)", 'sum(increase(marketpipe_processor_late_ticks_total[5m]))', "short"),
    ("Order events/s by state", 'sum by (state) (rate(marketpipe_trader_events_total[5m]))', "ops"),
    ("Rejections by rule (1h)", 'sum by (rule) (increase(marketpipe_trader_rejections_total[1h]))', "short"),
    ("Kill switch", 'max(marketpipe_trader_halted)', "short"),
]


def dashboard() -> dict:
    panels = []
    for i, (title, expr, unit) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title,
            "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": (i // 3) * 8},
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr, "datasource": {"type": "prometheus", "uid": "${datasource}"}}],
        })
    return {
        "title": "marketpipe", "uid": "marketpipe", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "tags": ["marketpipe", "kafka"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("marketpipe.json")
    out.write_text(json.dumps(dashboard(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(PANELS)} panels)")
