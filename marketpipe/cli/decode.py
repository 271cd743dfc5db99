"""``marketpipe decode PROVIDER [FILE|-]``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from marketpipe import providers

DESCRIPTION = """\
Decode one captured raw frame and print its records as JSON lines.

The input is ONE frame exactly as stored on the raw topic (value bytes). Output: one JSON
object per normalized record, field names as in the Avro schemas, plus nothing else. A
malformed frame prints the dead-letter reason on stderr and exits 1; when only some rows or
records are bad, the records of the good ones are still printed and stderr has one line per
dead letter (the reason each carries). A control frame prints nothing.

The receive time dates jvQuant clock times (default: now). Other providers' frames carry
their own dates: without --recv-ns their receive time is unknown (0), so a frame captured
long ago still decodes (the event-time window is only checked against a known receive time).
Raw headers the decoder reads (kline_types of an Infoway connection) are given with
--header NAME=VALUE.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decode", help="decode one raw frame (as stored on a raw topic) to JSON lines",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=providers.names())
    p.add_argument("file", nargs="?", default="-", help="file holding the frame bytes, or - for stdin (default)")
    p.add_argument("--recv-ns", type=int, default=None,
                   help="receive time, UTC epoch ns (dates clock times; default: now for "
                        + ", ".join(p.name for p in providers.PROVIDERS if p.clock_times)
                        + ", unknown (0) for the others)")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="a raw Kafka header of the frame, e.g. kline_types=1 (repeatable)")
    p.add_argument("--opcode", choices=("auto", "binary", "text"), default="auto",
                   help="websocket opcode of the frame; auto = binary if it inflates as raw DEFLATE, else text")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace, settings: Any = None) -> int:
    import orjson

    from marketpipe.processors.deadletter import dead_letters
    from marketpipe.processors.decode import ParseError, RawFrame, decode
    from marketpipe.rawframe import RawMeta, guess_opcode

    if args.file == "-":
        value = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as fh:
            value = fh.read()
    headers: dict[str, str] = {}
    for item in args.header:
        name, eq, text = item.partition("=")
        if not eq or not name:
            print(f"marketpipe decode: --header {item!r}: NAME=VALUE expected", file=sys.stderr)
            return 2
        headers[name] = text
    if args.recv_ns is not None:
        recv_ns = args.recv_ns
    else:
        recv_ns = time.time_ns() if providers.get(args.provider).clock_times else 0
    opcode = guess_opcode(value) if args.opcode == "auto" else args.opcode
    meta = RawMeta(args.provider, "cli", 0, 0, recv_ns, opcode, "data")
    frame = RawFrame(args.provider, value, meta, topic=str(args.file), partition=0, offset=0, headers=headers)
    out = sys.stdout.buffer
    try:
        records = decode(frame)
    except ParseError as exc:
        for n in exc.partial:
            out.write(orjson.dumps(n.record) + b"\n")
        out.flush()
        for dl in dead_letters(frame, exc, 0):
            print(dl["reason"], file=sys.stderr)
        return 1
    for n in records:
        out.write(orjson.dumps(n.record) + b"\n")
    out.flush()
    return 0
