"""The ``marketpipe`` command line: the top-level parser, and dispatch to the command modules.

Each module of :data:`COMMAND_MODULES` exposes ``register(subparsers)``; it adds its parser(s)
and sets ``func(args, settings) -> int``. Modules import their heavy dependencies (faust,
confluent-kafka) inside the handler, so ``marketpipe --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Iterator, Sequence

from marketpipe import settings as settings_mod
from marketpipe.runtime import logs

#: One module per command, named as the user types it. Order here is the order in ``--help``.
COMMAND_MODULES: tuple[str, ...] = tuple(f"marketpipe.cli.{name}" for name in (
    "kafka", "topics", "registry", "sim", "produce", "process", "decode", "trade", "order", "tail", "replay", "dlq",
    "status", "demo"))

EPILOG = """\
Configuration comes from environment variables (see README, "Configuration").
Typical local session:
  marketpipe kafka up            # start a local Kafka broker (or use KAFKA_BOOTSTRAP_SERVERS)
  marketpipe topics create       # create the declared topics
  marketpipe demo --seconds 60   # simulators -> producers -> processors -> trader, live view
"""


#: Modules only the `pipeline` extra installs: a command that needs one is unavailable on the
#: core install (the client and the pytest plugin), and says which extra brings it.
PIPELINE_MODULES = frozenset({"faust", "mode", "aiokafka", "websocket", "aiohttp", "orjson", "prometheus_client",
                              "rich", "cramjam", "uvloop"})
NEEDS_PIPELINE = 'this command runs the pipeline: pip install "marketpipe[pipeline]"'


def pipeline_missing(exc: BaseException) -> str | None:
    """The pipeline-only module whose absence raised `exc`, if that is what it is."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in PIPELINE_MODULES:
        return exc.name
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketpipe",
        description="Market data from jvQuant, Infoway and Jin10 through Apache Kafka, and orders back to the broker.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: MARKETPIPE_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    unavailable = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # every command ships with marketpipe: a missing one is a broken install
                raise SystemExit(f"marketpipe: command module {name} is missing (reinstall marketpipe)") from None
            if pipeline_missing(exc) is None:
                raise
            unavailable.append(name)
            continue
        module.register(sub)
    parser.set_defaults(core_install=bool(unavailable))
    if unavailable:
        parser.epilog = (parser.epilog or "") + (
            "\nThis is the core install (marketpipe.client, marketpipe.testing): the simulators, producers,\n"
            'processors, trader and demo need pip install "marketpipe[pipeline]".\n')
    return parser


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """This parser and every one below it (nested sub-commands included)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for i, w in enumerate(words)
                    if not w.startswith("-") and (i == 0 or words[i - 1] != "--log-level")), None)
    known = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    if command is not None and command not in known and parser.get_default("core_install"):
        print(f"marketpipe: {command}: {NEEDS_PIPELINE}", file=sys.stderr)
        return 2
    args = parser.parse_args(words)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # only a snapshot: each command parses the sections it uses, so a bad value of a setting the
    # command does not need cannot stop it
    settings = settings_mod.load()
    try:
        logs.setup(args.log_level or settings.log_level)
        return int(args.func(args, settings) or 0)
    except settings_mod.SettingsError as exc:
        print(f"marketpipe: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        logging.getLogger("marketpipe").info("interrupted")
        return 130
    except Exception as exc:  # sorted below: expected failures read as one line
        if (module := pipeline_missing(exc)) is not None:
            print(f"marketpipe: {args.command}: {NEEDS_PIPELINE} (no module {module})", file=sys.stderr)
            return 2
        line = user_error(exc, settings)
        if line is None:
            raise  # a bug: the traceback is what a developer needs
        logging.getLogger("marketpipe").debug("details", exc_info=True)
        print(f"marketpipe: {line}", file=sys.stderr)
        return 1


def user_error(exc: BaseException, settings: settings_mod.Settings) -> str | None:
    """One line for a failure a user can act on (broker down, bad setting, missing file ...);
    None for anything else. Client libraries are only looked at when already imported, so an
    error path never pays for importing them."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    kafka = sys.modules.get("confluent_kafka")
    if kafka is not None and isinstance(exc, kafka.KafkaException):
        err = exc.args[0] if exc.args else None
        detail = err.str() if isinstance(err, kafka.KafkaError) else text
        if isinstance(err, kafka.KafkaError) and err.name().endswith("AUTHORIZATION_FAILED"):
            who = settings.kafka.sasl_username or "this client"
            return (f"Kafka at {settings.kafka.bootstrap_servers}: {err.name()}: {who} is not allowed this "
                    "(the grants: `marketpipe topics acl --dry-run`)")
        if settings.kafka.security_protocol != "PLAINTEXT":  # a refused login looks like a dead broker
            from marketpipe.kafka.security import refusal

            why = refusal(settings.kafka.client_config())
            if why is not None:
                return f"Kafka at {settings.kafka.bootstrap_servers}: {why}"
        return f"Kafka at {settings.kafka.bootstrap_servers}: {detail} (is the broker up? `marketpipe kafka up`)"
    expected: list[type[BaseException]] = [OSError]
    for module, name in (("marketpipe.kafka.local", "LauncherError"), ("marketpipe.schemas.codec", "CodecError"),
                         ("marketpipe.producers.sink", "SinkFatal"), ("aiokafka.errors", "KafkaError"),
                         ("marketpipe.trader.ledger", "NotAcknowledged")):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None:
            expected.append(cls)
    if isinstance(exc, tuple(expected)):
        return text
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
