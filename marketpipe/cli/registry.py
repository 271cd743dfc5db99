"""``marketpipe registry up|down|status``."""

from __future__ import annotations

import argparse
import sys

from marketpipe.settings import Settings

DESCRIPTION = """\
A local Schema Registry for the Confluent wire format.

`up` runs Apicurio Registry (fetched once from Maven Central, run on Java 17 with in-memory
storage, bound to 127.0.0.1) and prints its Confluent-compatible URL:

  export SCHEMA_REGISTRY_URL=$(marketpipe registry up)

Every marketpipe process started with that variable writes the Confluent wire format and
registers its schemas under <topic>-value with BACKWARD_TRANSITIVE compatibility. The
storage is in memory: `down` forgets every schema id, so topics written with this registry
are readable only while it runs (or `replay` them before stopping it).
"""


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka.local import LauncherError
    from marketpipe.registry_local import local_registry

    try:
        print(local_registry(settings).up(timeout=args.timeout), flush=True)
    except LauncherError as exc:
        print(f"marketpipe registry up: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.registry_local import local_registry

    stopped = local_registry(settings).down()
    print("Schema Registry stopped" if stopped else "no local Schema Registry was running", file=sys.stderr, flush=True)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.registry_local import local_registry

    st = local_registry(settings).status()
    print(f"{'running' if st.running else 'stopped'}: {st.url} — {st.detail}; log: {st.log}")
    return 0 if st.running else 1


def register(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("registry", help="start, stop or inspect a local Schema Registry (Apicurio)",
                         description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    rsub = reg.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    up = rsub.add_parser("up", help="start Apicurio Registry on 127.0.0.1 (idempotent) and print its URL")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness (default 120)")
    up.set_defaults(func=cmd_up)
    down = rsub.add_parser("down", help="stop the registry started by `registry up`")
    down.set_defaults(func=cmd_down)
    status = rsub.add_parser("status", help="say whether the registry runs (exit 0) or not (exit 1)")
    status.set_defaults(func=cmd_status)
