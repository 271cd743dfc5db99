"""Prometheus counters of the decoders: frames and records that are neither published nor
dead-lettered still leave a trace here.

Advanced only on rare paths (control frames, skipped records, contradictions), never per
published record.
"""

from prometheus_client import Counter

CONTROL = Counter("marketpipe_decode_control_frames_total",
                  "Frames that carry no market data (acks, greetings, command replies, unknown text)",
                  ["provider", "kind"])
SKIPPED = Counter("marketpipe_decode_skipped_records_total",
                  "Records of a frame that are not market events and are skipped (e.g. lv2 price 0)",
                  ["provider", "reason"])
LV1_ORDER_CONTRADICTIONS = Counter(
    "marketpipe_decode_lv1_order_contradictions_total",
    "jvQuant lv1 rows whose amount/volume numbers contradict the order already decided for the symbol",
    ["provider"])
