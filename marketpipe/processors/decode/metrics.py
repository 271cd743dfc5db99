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
BOOK_REORIENTED = Counter(
    "marketpipe_decode_book_reoriented_total",
    "Books read the other way round because their prices say so: kind 'price/size columns' (a jvQuant "
    "level-1 book sent as price,size pairs) or 'sides' (bids and asks under each other's key)",
    ["provider", "kind"])
