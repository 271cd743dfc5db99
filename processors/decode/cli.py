"""``marketpipe decode <provider> [FILE|-]``: decode one captured raw frame, print JSON lines.

The input is ONE frame exactly as stored on the raw topic (value bytes). Output: one JSON
object per normalized record, field names as in the Avro schemas, plus nothing else. A
malformed frame prints the dead-letter reason on stderr and exits 1 (records decoded from
the frame's good rows, if any, are still printed). A control frame prints nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from typing import Any


def register(subparsers: Any) -> None:
    from processors.decode import PROVIDERS

    p = subparsers.add_parser(
        "decode", help="decode one raw frame (as stored on a raw topic) to JSON lines",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=PROVIDERS)
    p.add_argument("file", nargs="?", default="-", help="file holding the frame bytes, or - for stdin (default)")
    p.add_argument("--recv-ns", type=int, default=None,
                   help="receive time, UTC epoch ns (dates jvQuant clock times; default: now)")
    p.add_argument("--opcode", choices=("auto", "binary", "text"), default="auto",
                   help="websocket opcode of the frame; auto = binary if it inflates as raw DEFLATE, else text")
    p.set_defaults(func=handle)


def guess_opcode(value: bytes) -> str:
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflater.decompress(value, 1 << 16)
        return "binary" if inflater.eof else "text"
    except zlib.error:
        return "text"


def handle(args: argparse.Namespace, settings: Any = None) -> int:
    import orjson

    from marketpipe.rawframe import RawMeta
    from processors.decode import ParseError, RawFrame, decode

    if args.file == "-":
        value = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as fh:
            value = fh.read()
    recv_ns = args.recv_ns if args.recv_ns is not None else time.time_ns()
    opcode = guess_opcode(value) if args.opcode == "auto" else args.opcode
    meta = RawMeta(args.provider, "cli", 0, 0, recv_ns, opcode, "data")
    frame = RawFrame(args.provider, value, meta, topic=str(args.file), partition=0, offset=0)
    out = sys.stdout.buffer
    try:
        records = decode(frame)
    except ParseError as exc:
        for n in exc.partial:
            out.write(orjson.dumps(n.record) + b"\n")
        out.flush()
        print(str(exc), file=sys.stderr)
        return 1
    for n in records:
        out.write(orjson.dumps(n.record) + b"\n")
    out.flush()
    return 0
