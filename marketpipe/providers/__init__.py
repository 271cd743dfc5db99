"""The provider registry: one entry per market-data provider, read by every place that used to
dispatch on a provider's name (``produce``, ``sim``, the simulator runner, the demo, the decoder
dispatch and the raw topic list).

An entry names its parts as ``"module:attribute"`` strings and imports them only when asked, so
reading the registry costs nothing (``marketpipe --help`` stays instant) and a process that only
decodes never imports a websocket client.

Adding a provider ``acme``:

* new: marketpipe/protocol/acme.py (its protocol facts), marketpipe/producers/acme.py (a Feed and
  ``build_feed(settings, options)``), marketpipe/processors/decode/acme.py (``decode(frame, state)``),
  marketpipe/simulators/acme.py (a SimServer), and their tests (tests/test_sim_acme.py,
  tests/test_decode_acme.py, frames under tests/conformance/acme/);
* touched: this file (one :class:`Provider` entry), marketpipe/settings.py (its address and
  credentials), marketpipe/processors/symbols.py (its codes -> canonical symbols), and the deployment:
  deploy/k8s/base/producers.yaml (a Deployment), deploy/k8s/base/secret.yaml and configmap.yaml,
  deploy/k8s/base/topics.yaml regenerated with ``python deploy/k8s/gen_topics.py``, and the
  README's topic table.

tests/test_providers.py checks every entry is complete and every dispatch site offers it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from marketpipe.providers.jin10 import protocol as jin10


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r} (known: {', '.join(names())})"


@dataclass(frozen=True)
class SimOption:
    """A command-line option of ``marketpipe sim <provider>``, passed to the simulator as ``dest``."""

    flag: str
    dest: str
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    action: str | None = None

    def add_to(self, parser: Any) -> None:
        kw: dict[str, Any] = {"dest": self.dest, "help": self.help, "default": self.default}
        if self.action:
            kw["action"] = self.action
        else:
            kw["type"] = self.type
        parser.add_argument(self.flag, **kw)


@dataclass(frozen=True)
class Provider:
    name: str
    #: logical raw topic (before the settings' prefix) and what it holds
    raw_topic: str
    raw_topic_doc: str
    #: ``feed(settings, options: FeedOptions) -> producers.session.Feed``
    feed: str
    #: ``decode(frame, state) -> list[Normalized]``, raising only ParseError
    decoder: str
    #: a ``marketpipe.simulators.server.SimServer`` subclass
    simulator: str
    #: ``marketpipe produce`` codes when ``--codes`` is not given, and the demo's (wider) set
    default_codes: tuple[str, ...]
    demo_codes: tuple[str, ...]
    #: the environment variable that, when set, makes the demo use the real service
    live_env: str
    #: frames carry clock times without a date, dated by the receive time (``marketpipe decode``
    #: then defaults the receive time to now)
    clock_times: bool
    #: settings (environment) a producer needs to reach the simulator on ``{port}``
    sim_settings: Mapping[str, str]
    #: ``marketpipe sim <name>``: one-line help, description, extra options
    sim_help: str
    sim_description: str
    sim_options: tuple[SimOption, ...] = ()
    #: whether the simulator speaks both readings where documents and notes differ (``--dialect``)
    sim_dialects: bool = False
    #: a class whose ``add_routes(app)`` the simulator mounts as well (jvQuant: the trade API)
    sim_routes: str | None = None

    def load_feed(self) -> Callable[..., Any]:
        return resolve(self.feed)

    def load_decoder(self) -> Callable[..., Any]:
        return resolve(self.decoder)

    def load_simulator(self) -> type:
        return resolve(self.simulator)

    def sim_env(self, port: int) -> dict[str, str]:
        return {k: v.format(port=port) for k, v in self.sim_settings.items()}


@dataclass(frozen=True)
class FeedOptions:
    """What ``marketpipe produce`` passes to a provider's feed factory."""

    codes: tuple[str, ...]
    url: str | None = None  # overrides the settings' address
    levels: tuple[str, ...] = ("lv1", "lv2")  # jvQuant only


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` string names (imported now)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        name="jvquant",
        raw_topic="raw.jvquant",
        raw_topic_doc="jvQuant websocket frames as received (binary raw-DEFLATE and text)",
        feed="marketpipe.providers.jvquant.feed:build_feed",
        decoder="marketpipe.providers.jvquant.decode:decode",
        simulator="marketpipe.providers.jvquant.simulator:JvQuantSim",
        default_codes=("600519", "000001"),
        demo_codes=("600519", "000001", "300750", "688981", "430047", "113050", "159506"),
        live_env="JVQUANT_TOKEN",
        clock_times=True,
        sim_settings={"JVQUANT_BASE_URL": "http://127.0.0.1:{port}", "JVQUANT_TOKEN": "demo-token"},
        sim_help="allocation HTTP + quote websocket (+ trade API)",
        sim_description="Prints JVQUANT_BASE_URL; allocate with GET /query/server?market=ab&type=websocket&token=T.",
        sim_dialects=True,
        sim_routes="marketpipe.providers.jvquant.trade_simulator:TradeCounter",
    ),
    Provider(
        name="infoway",
        raw_topic="raw.infoway",
        raw_topic_doc="Infoway websocket frames as received (JSON text)",
        feed="marketpipe.providers.infoway.feed:build_feed",
        decoder="marketpipe.providers.infoway.decode:decode",
        simulator="marketpipe.providers.infoway.simulator:InfowaySim",
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
    ),
    Provider(
        name="jin10",
        raw_topic="raw.jin10",
        raw_topic_doc="Jin10 Engine.IO packets as received",
        feed="marketpipe.providers.jin10.feed:build_feed",
        decoder="marketpipe.providers.jin10.decode:decode",
        simulator="marketpipe.providers.jin10.simulator:Jin10Sim",
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
                      f"advertised pingInterval (default {jin10.PING_INTERVAL_MS})", type=int,
                      default=jin10.PING_INTERVAL_MS),
            SimOption("--ping-timeout-ms", "ping_timeout_ms",
                      f"advertised pingTimeout (default {jin10.PING_TIMEOUT_MS})", type=int,
                      default=jin10.PING_TIMEOUT_MS),
        ),
    ),
)


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PROVIDERS)


def get(name: str) -> Provider:
    for p in PROVIDERS:
        if p.name == name:
            return p
    raise UnknownProvider(name)
