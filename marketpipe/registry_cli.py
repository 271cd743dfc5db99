"""marketpipe registry up|down|status: a local Schema Registry for the Confluent wire format.

``up`` runs Apicurio Registry (fetched once from Maven Central, on Java 17, in-memory storage,
bound to 127.0.0.1; see marketpipe/registry_local.py) and prints its Confluent-compatible URL:

  export SCHEMA_REGISTRY_URL=$(marketpipe registry up)

Every marketpipe process started with that variable writes the Confluent wire format and
registers its schemas under ``<topic>-value`` with BACKWARD_TRANSITIVE compatibility. The
storage is in memory: ``down`` forgets every schema id, so topics written with this registry
are readable only while it runs (or ``replay`` them before stopping it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from marketpipe.registry_local import LocalRegistry
from marketpipe.settings import Settings


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def local_registry(settings: Settings, progress: Callable[[str], None] = _say) -> LocalRegistry:

    return LocalRegistry(home=settings.home, cache_dir=settings.local.cache_home / "marketpipe",
                         port=settings.local.registry_port, progress=progress)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka.local import LauncherError

    try:
        print(local_registry(settings).up(timeout=args.timeout), flush=True)
    except LauncherError as exc:
        _say(f"marketpipe registry up: {exc}")
        return 1
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    if local_registry(settings).down():
        _say("Schema Registry stopped")
    else:
        _say("no local Schema Registry was running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    st = local_registry(settings).status()
    print(f"{'running' if st.running else 'stopped'}: {st.url} — {st.detail}; log: {st.log}")
    return 0 if st.running else 1


def register(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("registry", help="start, stop or inspect a local Schema Registry (Apicurio)",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rsub = reg.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    up = rsub.add_parser("up", help="start Apicurio Registry on 127.0.0.1 (idempotent) and print its URL")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness (default 120)")
    up.set_defaults(func=cmd_up)
    down = rsub.add_parser("down", help="stop the registry started by `registry up`")
    down.set_defaults(func=cmd_down)
    status = rsub.add_parser("status", help="say whether the registry runs (exit 0) or not (exit 1)")
    status.set_defaults(func=cmd_status)
