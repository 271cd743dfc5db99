"""marketpipe.client without a broker: the record dataclasses cannot drift from marketpipe/schemas/*.avsc,
both Avro framings decode to them, and duplicates are recognised by their identity."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from decimal import Decimal
from typing import Any

import pytest

from marketpipe import client
from marketpipe.schemas.codec import Codec, CodecError, SchemaRegistry, schemas
from tests.support.codec_samples import records, registry_url  # noqa: F401  (registry_url is a fixture)

CHECKED = {**client.RECORD_TYPES, **client.NESTED_TYPES}

AVRO_TO_PY = {"string": str, "long": int, "int": int, "double": float, "bytes": bytes, "boolean": bool}


def expected_hint(avro_type: Any) -> Any:
    """The Python type a field of this (parsed, self-contained) Avro type must be declared as."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        assert len(branches) == 1, avro_type
        inner = expected_hint(branches[0])
        return inner | None if "null" in avro_type else inner
    if isinstance(avro_type, str):
        return AVRO_TO_PY.get(avro_type) or CHECKED[avro_type.rsplit(".", 1)[-1]]
    if avro_type.get("logicalType") == "decimal":
        return Decimal
    kind = avro_type["type"]
    if kind == "record":
        return CHECKED[avro_type["name"].rsplit(".", 1)[-1]]
    if kind == "enum":
        return str
    if kind == "array":
        return tuple[expected_hint(avro_type["items"]), ...]
    if kind == "map":
        value_hint = expected_hint(avro_type["values"])
        return typing.Mapping[str, value_hint]
    return expected_hint(kind)


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_dataclass_fields_are_the_avro_fields_in_order_with_matching_types(name: str) -> None:
    parsed = schemas()[name].parsed
    cls = CHECKED[name]
    hints = typing.get_type_hints(cls)
    assert [f.name for f in dataclasses.fields(cls)] == [f["name"] for f in parsed["fields"]]
    for f in parsed["fields"]:
        assert hints[f["name"]] == expected_hint(f["type"]), f"{name}.{f['name']}"


def test_every_record_schema_a_consumer_meets_has_a_dataclass() -> None:
    topic_schemas = set(client.TOPIC_SCHEMAS.values())
    assert topic_schemas == set(client.RECORD_TYPES)
    record_schemas = {n for n, s in schemas().items() if s.parsed["type"] == "record"}
    # OrderCommand is written (trader.commands), never read, by a downstream service; LedgerEntry and
    # Position are the trader's own compacted state (marketpipe tail shows them); the completeness
    # ledger is read through client.completeness(), which answers with marketpipe.completeness types
    assert record_schemas - set(CHECKED) == {"OrderCommand", "LedgerEntry", "Position", "Completeness"}


READ = [(n, r) for n, r in records() if n in client.RECORD_TYPES]


def assert_same(obj: Any, record: Any) -> None:
    """A dataclass tree equals the codec's dict tree (lists become tuples)."""
    if dataclasses.is_dataclass(obj):
        assert set(record) == {f.name for f in dataclasses.fields(obj)}
        for key, value in record.items():
            assert_same(getattr(obj, key), value)
    elif isinstance(obj, tuple):
        assert len(obj) == len(record)
        for a, b in zip(obj, record):
            assert_same(a, b)
    else:
        assert obj == record and type(obj) is type(record)


@pytest.mark.parametrize("name,record", READ, ids=[n for n, _ in READ])
def test_deserializer_reads_single_object_and_confluent_framing(name: str, record: dict[str, Any],
                                                                registry_url: str) -> None:  # noqa: F811
    with_registry = Codec(SchemaRegistry(registry_url))
    deserialize = client.RecordDeserializer(with_registry)
    for payload in (Codec().encode(name, record), with_registry.encode(name, record, topic="md.x")):
        got = deserialize(payload)
        assert type(got) is client.RECORD_TYPES[name]
        assert_same(got, record)


def test_deserializer_rejects_other_schemas_and_garbage() -> None:
    tick = next(r for n, r in records() if n == "Tick")
    with pytest.raises(CodecError, match="expected a Quote record, got Tick"):
        client.RecordDeserializer(Codec(), expect="Quote")(Codec().encode("Tick", tick))
    command = next(r for n, r in records() if n == "OrderCommand")
    with pytest.raises(CodecError, match="OrderCommand records are not read"):
        client.RecordDeserializer(Codec())(Codec().encode("OrderCommand", command))
    with pytest.raises(CodecError, match="unknown framing"):
        client.RecordDeserializer(Codec())(b"{\"json\": 1}")
    assert client.RecordDeserializer(Codec())(None) is None  # a tombstone


def tick(offset: int, symbol: str = "600519.SH", index: int = 0) -> client.Tick:
    return client.Tick("jvquant", symbol, symbol[:6], 1, 2, 10.0, 100.0, None, "BUY", str(offset), None, "1",
                       client.SourceRef("raw.jvquant", 0, offset, index))


def test_dedupe_drops_a_replayed_record_within_the_window_and_forgets_after_it() -> None:
    now = [1000.0]
    dedupe = client.Deduper(seconds=300, clock=lambda: now[0])
    assert dedupe.first_time(tick(5))
    assert dedupe.first_time(tick(5, index=1))  # another row of the same frame
    assert not dedupe.first_time(tick(5))  # replay after a processor restart
    now[0] += 301
    assert dedupe.first_time(tick(6))  # evicts the old entries ...
    assert dedupe.first_time(tick(5))  # ... so a copy older than the window is not remembered


def test_dedupe_keeps_memory_bounded() -> None:
    dedupe = client.Deduper(seconds=300, clock=lambda: 0.0, max_entries=3)
    for i in range(10):
        assert dedupe.first_time(tick(i))
    assert len(dedupe._seen) == 3
    assert not dedupe.first_time(tick(9))


def test_identity_of_bars_and_order_events() -> None:
    bar = client.Bar("infoway", "BTCUSDT", 1000, 0, 1000, 999, 5, 1.0, 2.0, 0.5, 1.5, 3.0, None, 2, 0, "1")
    assert client.identity(bar) != client.identity(dataclasses.replace(bar, revision=1))  # a correction is new
    assert client.identity(bar) == client.identity(dataclasses.replace(bar, receive_time_ns=9))
    event = client.OrderEvent("c1:1", "c1", "a", "jvquant", "ACCEPTED", None, None, None, "600519.SH", "BUY",
                              Decimal("1.000"), 100, 0, None, 1, 0)
    assert client.identity(event) == ("order", "c1:1")


@pytest.mark.parametrize("start,ms", [("latest", None), ("earliest", None), ("committed", None), (1700000000000, 1700000000000),
                                      (dt.datetime(2024, 1, 2, 1, 30, tzinfo=dt.timezone.utc), 1704159000000)])
def test_start_positions(start: Any, ms: int | None) -> None:
    assert client._start_ms(start) == ms


@pytest.mark.parametrize("start", ["beginning", dt.datetime(2024, 1, 2), 1.5])
def test_bad_start_positions_are_one_line_errors(start: Any) -> None:
    with pytest.raises(ValueError, match="start"):
        client._start_ms(start)


def test_consumer_refuses_unknown_topics_and_committed_without_group() -> None:
    from marketpipe import settings

    s = settings.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    with pytest.raises(ValueError, match="not a record topic: raw.jvquant"):
        client.TopicConsumer(["raw.jvquant"], settings=s)
    with pytest.raises(ValueError, match="needs a group_id"):
        client.TopicConsumer(["md.tick"], settings=s, start="committed")


def test_wait_for_returns_an_order_event_when_it_is_readable_not_when_a_batch_fills() -> None:
    """wait_for read order.events with consume(500, 0.5), which waits for 500 records or the
    timeout: an event already there was seen up to half a second late."""
    from marketpipe import settings
    from tests.support.fake_consumer import Message, TimedConsumer

    s = settings.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    event = next(r for n, r in records() if n == "OrderEvent")
    orders = client.OrderClient(settings=s, signing_key="k", account="a")
    events = client.TopicConsumer(["order.events"], group_id="g", settings=s, dedupe_seconds=0)
    events.consumer.close()
    events.consumer = fake = TimedConsumer([Message(Codec().encode("OrderEvent", event), "order.events")])
    orders._events = events
    got = orders.wait_for(event["command_id"], states=[event["state"]], timeout=5)
    assert (got.command_id, got.state) == (event["command_id"], event["state"])
    assert fake.blocked() == 0
