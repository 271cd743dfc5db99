"""The provider registry: one entry per market-data provider, read by every place that used to
dispatch on a provider's name (``produce``, ``sim``, the simulator runner, the demo, the decoder
dispatch and the raw topic list).

Everything that knows one provider's wire lives in its folder, ``marketpipe/providers/<name>/``
(protocol.py, feed.py, decode.py, symbols.py, simulator.py; jvQuant also trade_api.py and
trade_simulator.py). The folder's ``__init__`` declares its :class:`Provider` entry with small typed
functions that import the heavy module inside their body, so a type checker follows every part, reading
the registry costs nothing (``marketpipe --help`` stays instant) and a process that only decodes never
imports a websocket client. This module collects the entries.

Adding a provider ``acme``:

* new: one folder, marketpipe/providers/acme/ — ``__init__.py`` (its ``PROVIDER`` entry),
  protocol.py (its protocol facts), feed.py (a Feed and ``build_feed(settings, options)``), decode.py
  (``decode(frame, state)``), symbols.py (``canonical(code)``: its codes -> canonical symbols) and
  simulator.py (a SimServer); and its tests (tests/providers/acme/: test_sim.py, test_decode.py,
  frames under tests/data/conformance/acme/);
* touched, eight existing files: this file (import the folder, add ``acme.PROVIDER`` to
  :data:`PROVIDERS`), marketpipe/settings.py (its address and credentials), and the deployment:
  docker-compose.yml (a simulator and a producer service), deploy/k8s/base/producers.yaml (a
  Deployment), deploy/k8s/base/secret.yaml and configmap.yaml, deploy/k8s/base/topics.yaml
  regenerated with ``python deploy/k8s/gen_topics.py``, and README.md (the topic table, and the
  settings table regenerated with ``python -m marketpipe.settings``).

tests/providers/test_providers.py checks every entry is complete, its parts live in its folder, and every dispatch
site offers it.
"""

from __future__ import annotations

from marketpipe.providers import infoway, jin10, jvquant
from marketpipe.providers.entry import FeedOptions, Provider, SimOption, SimRoutes


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r} (known: {', '.join(names())})"


#: every provider, in the order commands list them; each folder's __init__ declares its entry
PROVIDERS: tuple[Provider, ...] = (jvquant.PROVIDER, infoway.PROVIDER, jin10.PROVIDER)


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PROVIDERS)


def get(name: str) -> Provider:
    for p in PROVIDERS:
        if p.name == name:
            return p
    raise UnknownProvider(name)


__all__ = ["PROVIDERS", "FeedOptions", "Provider", "SimOption", "SimRoutes", "UnknownProvider", "get", "names"]
