"""Jin10: everything that knows its wire — Engine.IO/socket.io protocol facts (protocol.py), feed, decoder,
symbol codes and simulator — and its registry entry.

The entry's callables import their module only when called: reading the registry must not import
websocket-client (feed), aiohttp (simulator) or the decoder. protocol.py is pure and is read here for
the simulator options' defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpipe.providers.entry import FeedOptions, Provider, SimOption
from marketpipe.providers.jin10 import protocol

if TYPE_CHECKING:
    from marketpipe.processors.decode import Decoder
    from marketpipe.producers.session import Feed
    from marketpipe.settings import Settings
    from marketpipe.simulators.server import SimServer


def feed(settings: Settings, options: FeedOptions) -> Feed:
    from marketpipe.providers.jin10.feed import build_feed

    return build_feed(settings, options)


def load_decoder() -> Decoder:
    from marketpipe.providers.jin10.decode import decode

    return decode


def load_simulator() -> type[SimServer]:
    from marketpipe.providers.jin10.simulator import Jin10Sim

    return Jin10Sim


PROVIDER = Provider(
    name="jin10",
    raw_topic="raw.jin10",
    raw_topic_doc="Jin10 Engine.IO packets as received",
    feed=feed,
    load_decoder=load_decoder,
    load_simulator=load_simulator,
    default_codes=("XAUUSD", "XAGUSD", "EURUSD", "USOIL"),
    demo_codes=("XAUUSD", "XAGUSD", "EURUSD", "USOIL"),
    live_env="JIN10_URL",
    clock_times=False,
    sim_settings={"JIN10_URL": "http://127.0.0.1:{port}"},
    sim_help="Engine.IO v3 / socket.io price wall",
    sim_description="Prints JIN10_URL (socket.io at /socket.io/).",
    sim_options=(
        SimOption("--event", "event", "socket.io event name of quote pushes (default quote)", type=str,
                  default="quote"),
        SimOption("--ping-interval-ms", "ping_interval_ms",
                  f"advertised pingInterval (default {protocol.PING_INTERVAL_MS})", type=int,
                  default=protocol.PING_INTERVAL_MS),
        SimOption("--ping-timeout-ms", "ping_timeout_ms",
                  f"advertised pingTimeout (default {protocol.PING_TIMEOUT_MS})", type=int,
                  default=protocol.PING_TIMEOUT_MS),
    ),
)
