"""The provider registry: every entry is complete and every dispatch site reads it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from marketpipe import providers, settings
from marketpipe.kafka import topics
from marketpipe.processors.decode import DecoderState, ParseError, RawFrame, decode, decoders
from marketpipe.rawframe import RawMeta
from marketpipe.simulators.runner import build
from marketpipe.simulators.server import SimServer


def frame(provider: str, value: bytes) -> RawFrame:
    return RawFrame(provider, value, RawMeta(provider, "c1", 1, 1, 1_700_000_000_000_000_000, "text", "data"))


ENTRIES = pytest.mark.parametrize("entry", providers.PROVIDERS, ids=lambda e: e.name)


def test_provider_names_are_unique() -> None:
    assert len(set(providers.names())) == len(providers.PROVIDERS) > 0


@ENTRIES
def test_raw_topic_is_declared_and_named_after_the_provider(entry: providers.Provider) -> None:
    spec = topics.by_name(entry.raw_topic)
    assert entry.raw_topic == f"raw.{entry.name}"
    assert spec.doc == entry.raw_topic_doc and entry.raw_topic_doc
    assert topics.RAW_TOPICS[entry.name] == entry.raw_topic
    assert int(spec.config["max.message.bytes"]) == topics.RAW_MAX_MESSAGE_BYTES


@ENTRIES
def test_decoder_is_callable_and_dispatched(entry: providers.Provider) -> None:
    decoder = entry.load_decoder()
    assert callable(decoder)
    assert decoders()[entry.name] is decoder
    for value in (b"", b"\xff\x00 not a frame", b"{}"):  # the contract: a list of records, or ParseError
        try:
            out = decode(frame(entry.name, value), DecoderState())
        except ParseError as exc:
            assert str(exc)
        else:
            assert isinstance(out, list)


@ENTRIES
def test_parts_live_in_the_provider_folder(entry: providers.Provider, tmp_path: Path) -> None:
    # one folder per provider: a part registered from elsewhere would scatter its wire knowledge again
    folder = f"marketpipe.providers.{entry.name}"
    assert entry.load_decoder().__module__ == f"{folder}.decode"
    assert entry.load_simulator().__module__ == f"{folder}.simulator"
    options = providers.FeedOptions(codes=entry.default_codes)
    feed = entry.feed(settings.load({"MARKETPIPE_HOME": str(tmp_path), **entry.sim_env(41234)}), options)
    assert type(feed).__module__ == f"{folder}.feed"
    if entry.sim_routes:
        assert type(entry.sim_routes()).__module__.startswith(f"{folder}.")


def test_an_unknown_provider_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="unknown provider 'nope'"):
        decode(frame("nope", b"x"))


@ENTRIES
def test_simulator_builds_and_speaks_for_its_provider(entry: providers.Provider) -> None:
    sim = build(entry.name)
    assert isinstance(sim, SimServer) and type(sim) is entry.load_simulator()
    assert sim.provider == entry.name
    assert sim.market.states  # a default symbol set it can serve


def test_runner_refuses_an_unknown_provider_by_name() -> None:
    with pytest.raises(ValueError, match="unknown provider 'nope' \\(known: jvquant, infoway, jin10\\)"):
        build("nope")


@ENTRIES
def test_feed_factory_reaches_the_simulator_with_its_settings(entry: providers.Provider, tmp_path: Path) -> None:
    env = {"MARKETPIPE_HOME": str(tmp_path), **entry.sim_env(41234)}
    assert entry.live_env in env, "the demo decides real-or-simulated from this variable"
    options = providers.FeedOptions(codes=entry.default_codes)
    feed = entry.feed(settings.load(env), options)
    assert feed.provider == entry.name
    assert ":41234" in feed.describe()
    assert entry.default_codes and entry.demo_codes


@ENTRIES
def test_sim_options_reach_the_simulator(entry: providers.Provider) -> None:
    from marketpipe.cli import sim as sim_cli

    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers())
    args = parser.parse_args(["sim", entry.name])
    opts = sim_cli.options(args)
    for option in entry.sim_options:
        assert opts[option.dest] == option.default
    sim = build(entry.name, **{k: v for k, v in opts.items() if k not in ("host", "port")})
    assert sim.provider == entry.name


def test_every_dispatch_site_offers_every_provider() -> None:
    from marketpipe.cli import produce as produce_cli

    parser = argparse.ArgumentParser()
    produce_cli.register(parser.add_subparsers())
    for name in providers.names():
        assert parser.parse_args(["produce", name]).provider == name
    with pytest.raises(SystemExit):
        parser.parse_args(["produce", "nope"])


def test_demo_plans_a_simulator_and_a_producer_per_provider(tmp_path: Path) -> None:
    from marketpipe import demo

    env = {"MARKETPIPE_HOME": str(tmp_path)}
    steps = demo.plan(settings.load(env), demo.DemoOptions(rate=10, clock_speed=1.0, bar="5s"), env)
    names = [s.name for s in steps]
    for entry in providers.PROVIDERS:
        assert f"sim-{entry.name}" in names
        producer = steps[names.index(f"producer-{entry.name}")]
        sim = steps[names.index(f"sim-{entry.name}")]
        assert producer.env == entry.sim_env(sim.port)
        assert producer.args[-1] == ",".join(entry.demo_codes)
    for topic in (e.raw_topic for e in providers.PROVIDERS):
        assert topic in demo.LIVE_TOPICS


def test_reading_the_registry_imports_no_provider_module() -> None:
    # a provider folder's protocol facts are pure and may be read with the registry; its feed, decoder,
    # simulators and trade API client (websocket-client, aiohttp, the decode tables) may not
    code = ("import sys, marketpipe.providers, marketpipe.kafka.topics; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['marketpipe', 'producers'], ['marketpipe', 'processors'], ['marketpipe', 'simulators'], "
            "['marketpipe', 'trader']) or (m.startswith('marketpipe.providers.') and m.count('.') > 2 "
            "and not m.endswith('.protocol')) or m.split('.')[0] in ('websocket', 'faust', 'aiohttp')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@ENTRIES
def test_decode_command_offers_the_provider(entry: providers.Provider) -> None:
    from marketpipe.cli import decode as decode_cli

    parser = argparse.ArgumentParser()
    decode_cli.register(parser.add_subparsers())
    assert parser.parse_args(["decode", entry.name]).provider == entry.name


def test_the_trader_reaches_its_trade_api_through_the_registry(tmp_path: Path) -> None:
    from marketpipe.trader import consumer

    entry = providers.get(consumer.TRADE_PROVIDER)
    assert entry.trade_api is not None
    env = {"MARKETPIPE_HOME": str(tmp_path), **entry.sim_env(41234)}
    with pytest.raises(SystemExit, match="TRADE_ACCOUNT"):  # credentials are the entry's to check
        consumer.trade_api(settings.load(env))
    env.update(JVQUANT_TRADE_ACCOUNT="000000000042", JVQUANT_TRADE_PASSWORD="pw")
    api = consumer.trade_api(settings.load(env))
    assert type(api).__module__ == f"marketpipe.providers.{entry.name}.trade_api"
    assert api.account == "000000000042"
