"""jvQuant: everything that knows its wire — quote protocol (protocol.py), feed, decoder, symbol codes,
simulator, trade API client (trade_api.py) and the trade API simulator — and its registry entry.

The entry's callables import their module only when called: reading the registry must not import
websocket-client (feed), aiohttp (simulators) or the decoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketpipe.providers.entry import FeedOptions, Provider, SimRoutes
from marketpipe.providers.identity import Identity

if TYPE_CHECKING:
    from marketpipe.processors.decode import Decoder
    from marketpipe.producers.session import Feed
    from marketpipe.settings import Settings
    from marketpipe.simulators.server import SimServer
    from marketpipe.trader.trade_api import TradeApi


def feed(settings: Settings, options: FeedOptions) -> Feed:
    from marketpipe.providers.jvquant.feed import build_feed

    return build_feed(settings, options)


def load_decoder() -> Decoder:
    from marketpipe.providers.jvquant.decode import decode

    return decode


def load_identity() -> Identity:
    from marketpipe.providers.jvquant.identity import identity

    return identity


def load_simulator() -> type[SimServer]:
    from marketpipe.providers.jvquant.simulator import JvQuantSim

    return JvQuantSim


def trade_counter() -> SimRoutes:
    from marketpipe.providers.jvquant.trade_simulator import TradeCounter

    return TradeCounter()


def trade_api(settings: Settings) -> TradeApi:
    from marketpipe.providers.jvquant.trade_api import JvQuantBroker

    p = settings.providers
    if not p.jvquant_token:
        raise SystemExit("marketpipe trade: JVQUANT_TOKEN is not set")
    if not p.jvquant_trade_account or not p.jvquant_trade_password:
        raise SystemExit("marketpipe trade: JVQUANT_TRADE_ACCOUNT and JVQUANT_TRADE_PASSWORD must be set")
    return JvQuantBroker(p.jvquant_base_url, p.jvquant_token.reveal(), p.jvquant_trade_account.reveal(),
                         p.jvquant_trade_password.reveal())


PROVIDER = Provider(
    name="jvquant",
    raw_topic="raw.jvquant",
    raw_topic_doc="jvQuant websocket frames as received (binary raw-DEFLATE and text)",
    feed=feed,
    load_decoder=load_decoder,
    load_simulator=load_simulator,
    default_codes=("600519", "000001"),
    demo_codes=("600519", "000001", "300750", "688981", "430047", "113050", "159506"),
    live_env="JVQUANT_TOKEN",
    clock_times=True,
    sim_settings={"JVQUANT_BASE_URL": "http://127.0.0.1:{port}", "JVQUANT_TOKEN": "demo-token"},
    sim_help="allocation HTTP + quote websocket (+ trade API)",
    sim_description="Prints JVQUANT_BASE_URL; allocate with GET /query/server?market=ab&type=websocket&token=T.",
    sim_dialects=True,
    sim_routes=trade_counter,
    trade_api=trade_api,
    load_identity=load_identity,
)
