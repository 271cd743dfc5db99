"""``marketpipe tail TOPIC``."""

from __future__ import annotations

import argparse
import signal
import sys

from marketpipe.settings import Settings

DESCRIPTION = """\
Read a topic and print its records readably or as JSON.

Every topic marketpipe writes can be tailed: Avro records of either framing are decoded
(order.ledger and order.positions too; their JSON values of earlier versions are shown as they
are); raw provider frames are shown with their headers and a text preview (binary frames as a
hex prefix). Tail never joins a consumer group's committed offsets: it assigns partitions
directly, so it cannot disturb the pipeline's own consumers.
"""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.schemas import codec
    from marketpipe.tail import Printer, tail

    topic = args.topic if args.raw_name else settings.topic(args.topic)
    printer = Printer(codec.from_settings(settings), args.json, args.symbol)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        tail(settings, topic, args.from_beginning, args.limit, printer,
             idle_exit=args.idle_exit if args.idle_exit > 0 else None)
    except KeyboardInterrupt:
        pass
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print a topic's records (Avro of either framing, or raw frames)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("topic", help="logical topic name, e.g. md.tick (the topic prefix is applied)")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest record instead of new ones")
    p.add_argument("--limit", type=int, default=None, help="stop after N records")
    p.add_argument("--symbol", help="only records for this canonical symbol (e.g. 600519.SH)")
    p.add_argument("--json", action="store_true", help="one JSON object per line (bytes base64, decimals as strings)")
    p.add_argument("--idle-exit", type=float, default=0, help="stop after N seconds without a record (0: never)")
    p.add_argument("--raw-name", action="store_true", help="TOPIC is a physical name: do not apply the prefix")
    p.set_defaults(func=run)
