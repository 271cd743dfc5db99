"""Infoway: everything that knows its wire — protocol facts (protocol.py), feed, decoder, symbol codes and
simulator — and its registry entry.

The entry's callables import their module only when called: reading the registry must not import
websocket-client (feed), aiohttp (simulator) or the decoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpipe.providers.entry import FeedOptions, Provider, SimOption
from marketpipe.providers.identity import Identity

if TYPE_CHECKING:
    from marketpipe.processors.decode import Decoder
    from marketpipe.producers.session import Feed
    from marketpipe.settings import Settings
    from marketpipe.simulators.server import SimServer


def feed(settings: Settings, options: FeedOptions) -> Feed:
    from marketpipe.providers.infoway.feed import build_feed

    return build_feed(settings, options)


def load_decoder() -> Decoder:
    from marketpipe.providers.infoway.decode import decode

    return decode


def load_identity() -> Identity:
    from marketpipe.providers.infoway.identity import identity

    return identity


def load_simulator() -> type[SimServer]:
    from marketpipe.providers.infoway.simulator import InfowaySim

    return InfowaySim


PROVIDER = Provider(
    name="infoway",
    raw_topic="raw.infoway",
    raw_topic_doc="Infoway websocket frames as received (JSON text)",
    feed=feed,
    load_decoder=load_decoder,
    load_simulator=load_simulator,
    default_codes=("BTCUSDT", "ETHUSDT"),
    demo_codes=("BTCUSDT", "ETHUSDT"),
    live_env="INFOWAY_API_KEY",
    clock_times=False,
    sim_settings={"INFOWAY_WS_URL": "ws://127.0.0.1:{port}/ws", "INFOWAY_API_KEY": "demo-key",
                  "INFOWAY_BUSINESS": "crypto"},
    sim_help="JSON quote websocket /ws?business=..&apikey=..",
    sim_description="Prints INFOWAY_WS_URL.",
    sim_options=(
        SimOption("--heartbeat-timeout", "heartbeat_timeout", "close after N s without 10010 (default 60)",
                  type=float, default=60.0),
        SimOption("--heartbeat-reply", "heartbeat_reply", "answer 10010 with 10011 (production does not)",
                  action="store_true", default=False),
    ),
    sim_dialects=True,
    fills_gaps=True,
    load_identity=load_identity,
)
