"""``marketpipe replay PROVIDER``."""

from __future__ import annotations

import argparse
import sys
import time

from marketpipe.kafka import topics
from marketpipe.settings import Settings

DESCRIPTION = """\
Decode a time range of a raw topic again with today's decoders.

The raw topics keep every frame as received for three days, so a parser fix can be applied to
history. Replay reads [--since, --until) of one provider's raw topic up to the end it saw when
it started, and writes the md.* records, with the current parser version, the way the live
processor does. --to-prefix writes under another topic prefix, so a parser change can be
compared side by side before it goes live. It can run while the live processors run: each
record keeps its source (raw topic, partition, offset, index), the dedupe key downstream.
"""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka.topicrange import parse_time_ms
    from marketpipe.replay import parser_version, replay

    now_ms = int(time.time() * 1000)
    since = parse_time_ms(args.since, now_ms, "--since")
    until = parse_time_ms(args.until, now_ms, "--until") if args.until else None
    done = replay(settings, args.provider, since, until, symbols=frozenset(args.symbols) if args.symbols else None,
                  to_prefix=args.to_prefix, progress=not args.quiet and sys.stderr.isatty())
    print(f"replayed {done.frames} frames of {done.raw_topic}: {done.records} records and {done.rejects} dead letters "
          f"to {done.target} (parser {parser_version()})")
    if done.problem:
        print(f"marketpipe replay: {done.problem}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="decode a time range of a raw topic again with today's decoders",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=sorted(topics.RAW_TOPICS), help="whose raw topic to replay")
    p.add_argument("--since", required=True,
                   help="start: ISO time (2026-11-26T09:30+08:00; no offset means UTC), a duration ago (15m, 2h) "
                        "or epoch ms")
    p.add_argument("--until", help="end (exclusive), same forms; default: the end of the topic when replay starts")
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="only these canonical symbols (600519.SH ...)")
    p.add_argument("--to-prefix", help="write under this topic prefix instead of the live one (its topics are "
                                       "created), to compare a parser change side by side")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
