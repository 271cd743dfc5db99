"""``marketpipe status``."""

from __future__ import annotations

import argparse

from marketpipe.settings import Settings

DESCRIPTION = """\
The providers' feed health side by side, from md.status.

One row per provider: connections up / known, reconnects, the longest silence of a reconnect,
gaps and their total length, stale symbols (while their market is open), frames per second and
receive latency p50/p99 of the last full minute, and the latest event. --once prints the table
once (or --json: one JSON object per provider) after reading what md.status holds for the last
--minutes; otherwise the table refreshes in place until Ctrl-C or --seconds.

--gaps prints the completeness ledger (md.completeness) instead: per symbol (--symbols, or every
symbol it has for the range) whether the last --minutes are complete, and each hole (gap,
unfillable, unobserved) and backfilled part; --json: one object per symbol. The newest seconds,
not written yet, are shown as "written until". Exit 1 when a symbol has a hole.
"""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.feedstatus import show, show_gaps

    if args.gaps:
        return show_gaps(settings, minutes=args.minutes, symbols=args.symbols or (), as_json=args.json)
    return show(settings, minutes=args.minutes, once=args.once, as_json=args.json, seconds=args.seconds)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="feed health of every provider side by side (md.status)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--once", action="store_true", help="print the table once and exit (for scripts)")
    p.add_argument("--json", action="store_true", help="with --once: one JSON object per provider")
    p.add_argument("--seconds", type=float, default=0, help="live view: stop after N seconds (0: until Ctrl-C)")
    p.add_argument("--minutes", type=float, default=60, help="read md.status from N minutes ago (default 60)")
    p.add_argument("--gaps", action="store_true",
                   help="the completeness ledger instead: is each symbol's last --minutes complete, and its holes")
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="with --gaps: only these canonical symbols")
    p.set_defaults(func=run)
