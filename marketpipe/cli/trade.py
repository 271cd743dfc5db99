"""``marketpipe trade``: the trade consumer."""

from __future__ import annotations

import argparse
import signal
import threading

from marketpipe.settings import Settings


def cmd_trade(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import durability
    from marketpipe.runtime import metrics
    from marketpipe.trader import consumer, loop

    trader = consumer.build(settings, args.reference)
    durability.warn_if_weak(settings.kafka.client_config(), [settings.topic(t) for t in consumer.DURABLE_TOPICS],
                            "trader", consumer.log)
    metrics.serve(settings.metrics_port, "trader", settings.metrics_host)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loop.run_loop(trader, stop)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("trade", help="run the trade consumer: order.commands -> jvQuant trade API -> order.events",
                       description="Consume signed order commands, check them, place them with the jvQuant trade API at most "
                       "once per command id, and publish every state change to order.events.")
    t.add_argument("--reference", default=None,
                   help="JSON {symbol: {prev_close, name, st}} (default: MARKETPIPE_TRADER_REFERENCE)")
    t.set_defaults(func=cmd_trade)
