"""``marketpipe sim PROVIDER``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from marketpipe import providers
from marketpipe.settings import Settings

EPILOG = """\
Fault injection while running (kind: drop|stall|garbage|reject_auth|rate_limit|restart|mute|reorder|duplicate|clear):
  curl -XPOST localhost:PORT/_control/fault -d '{"kind":"stall","seconds":5}'
  curl -XPOST localhost:PORT/_control/fault -d '{"kind":"mute","symbol":"600519","seconds":30}'
Counters of what was sent:  curl localhost:PORT/_control/stats
"""


def options(args: argparse.Namespace) -> dict[str, Any]:
    entry = providers.get(args.provider)
    opts: dict[str, Any] = dict(host=args.host, port=args.port, rate=args.rate, seed=args.seed,
                                clock_speed=args.clock_speed, record=args.record, api_key=args.api_key)
    if args.symbols:
        opts["symbols"] = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if entry.sim_dialects:
        opts["dialect"] = args.dialect
    for option in entry.sim_options:
        opts[option.dest] = getattr(args, option.dest)
    if entry.sim_routes:
        opts["extra_routes"] = entry.sim_routes().add_routes
    return opts


def run(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from marketpipe.simulators.runner import serve

    # A process started in the background by a non-interactive shell inherits SIGINT as ignored;
    # Ctrl-C (or a supervisor's SIGINT) must still end a simulator cleanly, so claim it explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        asyncio.run(serve(args.provider, **options(args)))
    except KeyboardInterrupt:  # Ctrl-C is how a simulator is meant to end
        return 0
    except ValueError as exc:  # e.g. unknown symbols
        print(f"marketpipe sim: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help=f"run a local provider simulator ({', '.join(providers.names())})",
                       description="Local servers speaking each provider's protocol, fed by a seeded random-walk market.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sims = p.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    common.add_argument("--port", type=int, default=0, help="port (default 0: any free port, printed)")
    common.add_argument("--rate", type=float, default=200.0,
                        help="trades per second across the subscribed symbols (default 200; tens of thousands work)")
    common.add_argument("--symbols", default="", help="comma-separated market codes (default: the provider's set)")
    common.add_argument("--seed", type=int, default=0, help="random-walk seed (default 0)")
    common.add_argument("--clock-speed", type=float, default=1.0,
                        help="simulated time runs this many times faster than real time (default 1)")
    common.add_argument("--record", default=None, metavar="FILE",
                        help="append one JSON line per frame sent (connection, seq, rows, trade ids) to FILE")
    common.add_argument("--api-key", default=None,
                        help="only accept this token/API key (default: any non-empty one)")
    from marketpipe.simulators.market import DIALECTS

    dialect = argparse.ArgumentParser(add_help=False)
    dialect.add_argument("--dialect", choices=DIALECTS, default="documented",
                         help="frame shapes where the provider documents and later notes differ: documented "
                              "(as the provider documents print them, default) or notes (jvQuant lv1 amount before volume, lv2 "
                              "records time first; Infoway flat klines with ty)")
    for entry in providers.PROVIDERS:
        parents = [common, dialect] if entry.sim_dialects else [common]
        sp = sims.add_parser(entry.name, parents=parents, help=entry.sim_help, description=entry.sim_description)
        for option in entry.sim_options:
            option.add_to(sp)
        sp.set_defaults(func=run)
