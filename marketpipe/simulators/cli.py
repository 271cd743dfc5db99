"""``marketpipe sim jvquant|infoway|jin10``: run one provider simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from typing import Any, Callable

from marketpipe.settings import Settings

log = logging.getLogger("marketpipe.sim")

EPILOG = """\
Fault injection while running (kind: drop|stall|garbage|reject_auth|rate_limit|restart|clear):
  curl -XPOST localhost:PORT/_control/fault -d '{"kind":"stall","seconds":5}'
Counters of what was sent:  curl localhost:PORT/_control/stats
"""


def trade_routes() -> Callable[[Any], None] | None:
    """The jvQuant trade-API counter's ``add_routes`` if ``marketpipe.simulators.jvquant_trade`` is present."""
    name = "marketpipe.simulators.jvquant_trade"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise
    for obj in vars(module).values():
        if isinstance(obj, type) and obj.__module__ == name and callable(getattr(obj, "add_routes", None)):
            return obj().add_routes  # type: ignore[no-any-return]
    log.warning("%s has no class with add_routes(app); trade API not mounted", name)
    return None


def options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = dict(host=args.host, port=args.port, rate=args.rate, seed=args.seed,
                                clock_speed=args.clock_speed, record=args.record, api_key=args.api_key)
    if args.symbols:
        opts["symbols"] = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if getattr(args, "dialect", None):
        opts["dialect"] = args.dialect
    if args.provider == "jvquant":
        opts["extra_routes"] = trade_routes()
    elif args.provider == "infoway":
        opts.update(heartbeat_timeout=args.heartbeat_timeout, heartbeat_reply=args.heartbeat_reply)
    elif args.provider == "jin10":
        opts.update(event=args.event, ping_interval_ms=args.ping_interval_ms, ping_timeout_ms=args.ping_timeout_ms)
    return opts


async def serve(args: argparse.Namespace) -> None:
    from marketpipe.simulators.runner import build

    sim = build(args.provider, **options(args))
    await sim.start()
    try:
        for name, address in sim.addresses().items():
            print(f"{name}={address}", flush=True)
        print(f"# control: {sim.base_url}/_control/fault  stats: {sim.base_url}/_control/stats", flush=True)
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def run(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    # A process started in the background by a non-interactive shell inherits SIGINT as ignored;
    # Ctrl-C (or a supervisor's SIGINT) must still end a simulator cleanly, so claim it explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:  # Ctrl-C is how a simulator is meant to end
        return 0
    except ValueError as exc:  # e.g. unknown symbols
        print(f"marketpipe sim: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="run a local provider simulator (jvquant, infoway, jin10)",
                       description="Local servers speaking each provider's protocol, fed by a seeded random-walk market.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    providers = p.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
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
                              "(as seeds/ print them, default) or notes (jvQuant lv1 amount before volume, lv2 "
                              "records time first; Infoway flat klines with ty)")
    jv = providers.add_parser("jvquant", parents=[common, dialect], help="allocation HTTP + quote websocket (+ trade API)",
                              description="Prints JVQUANT_BASE_URL; allocate with GET /query/server?market=ab&type=websocket&token=T.")
    jv.set_defaults(func=run)
    iw = providers.add_parser("infoway", parents=[common, dialect], help="JSON quote websocket /ws?business=..&apikey=..",
                              description="Prints INFOWAY_WS_URL.")
    iw.add_argument("--heartbeat-timeout", type=float, default=60.0, help="close after N s without 10010 (default 60)")
    iw.add_argument("--heartbeat-reply", action="store_true", help="answer 10010 with 10011 (production does not)")
    iw.set_defaults(func=run)
    j10 = providers.add_parser("jin10", parents=[common], help="Engine.IO v3 / socket.io price wall",
                               description="Prints JIN10_URL (socket.io at /socket.io/).")
    j10.add_argument("--event", default="quote", help="socket.io event name of quote pushes (default quote)")
    j10.add_argument("--ping-interval-ms", type=int, default=25000, help="advertised pingInterval (default 25000)")
    j10.add_argument("--ping-timeout-ms", type=int, default=60000, help="advertised pingTimeout (default 60000)")
    j10.set_defaults(func=run)
