"""What a registry entry is: :class:`Provider` and the option types its parts are called with.

Kept apart from marketpipe/providers/__init__.py (which re-exports every name here) because each
provider folder's ``__init__`` builds its own entry from these classes while the registry package
is still importing the folders: a module of its own is complete before any folder asks for it.

Nothing here imports a provider's parts; the types below are for the type checker only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from marketpipe.providers.identity import Identity, whole_content

if TYPE_CHECKING:
    from marketpipe.processors.decode import Decoder
    from marketpipe.producers.session import Feed
    from marketpipe.settings import Settings
    from marketpipe.simulators.server import SimServer
    from marketpipe.trader.trade_api import TradeApi


def whole_content_identity() -> Identity:
    """The identity of a provider that declares none: every field but receive time and source."""
    return whole_content


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
class FeedOptions:
    """What ``marketpipe produce`` passes to a provider's feed factory."""

    codes: tuple[str, ...]
    url: str | None = None  # overrides the settings' address
    levels: tuple[str, ...] = ("lv1", "lv2")  # jvQuant only


class SimRoutes(Protocol):
    """Extra HTTP routes a provider's simulator serves beside its quote protocol (jvQuant: the trade API)."""

    def add_routes(self, app: Any) -> None: ...


@dataclass(frozen=True)
class Provider:
    """One provider's registry entry. The callables import the provider's heavy modules (websocket-client,
    aiohttp, the decode tables) only when called, so reading the registry imports none of them."""

    name: str
    #: logical raw topic (before the settings' prefix) and what it holds
    raw_topic: str
    raw_topic_doc: str
    #: ``marketpipe produce``: the provider's feed for these settings and options
    feed: Callable[[Settings, FeedOptions], Feed]
    #: the decoder, ``decode(frame, state) -> list[Normalized]`` raising only ParseError (read once per process)
    load_decoder: Callable[[], Decoder]
    #: the simulator's class; built with ``SimConfig`` fields and the provider's keyword options
    load_simulator: Callable[[], type[SimServer]]
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
    #: the producer backfills a gap from the provider's history (:meth:`Feed.fill_gap`); the
    #: completeness ledger marks the other providers' gaps unfillable at once
    fills_gaps: bool = False
    #: routes the simulator mounts as well, built per simulator (jvQuant: the trade API's counter)
    sim_routes: Callable[[], SimRoutes] | None = None
    #: ``marketpipe trade``: the provider's trade API client for these settings (None: it has none);
    #: raises SystemExit naming the missing credentials
    trade_api: Callable[[Settings], TradeApi] | None = None
    #: A/B capture: what makes a decoded record the same on both lines (marketpipe/providers/identity.py);
    #: every field but receive time and source unless the provider numbers or names its records
    load_identity: Callable[[], Identity] = whole_content_identity

    def sim_env(self, port: int) -> dict[str, str]:
        return {k: v.format(port=port) for k, v in self.sim_settings.items()}
