"""The Avro contract: every schema round-trips in both framings, readers accept both,
and bad payloads fail with a clear CodecError."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from marketpipe.schemas.codec import Codec, CodecError, SchemaRegistry, schemas
from tests.support import codec_samples
from tests.support.codec_samples import FakeRegistry, records, sample

# a module fixture: one fake registry for this module's tests
registry_url = codec_samples.registry_url


@pytest.mark.parametrize("name,record", list(records()), ids=[n for n, _ in records()])
def test_round_trip_single_object(name: str, record: dict[str, Any]) -> None:
    data = Codec().encode(name, record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == schemas()[name].fingerprint
    decoded = Codec().decode(data)
    assert decoded.schema == name
    assert decoded.framing == "single-object"
    assert decoded.record == record


@pytest.mark.parametrize("name,record", list(records()), ids=[n for n, _ in records()])
def test_round_trip_confluent(name: str, record: dict[str, Any], registry_url: str) -> None:
    codec = Codec(SchemaRegistry(registry_url))
    data = codec.encode(name, record, topic="md.test")
    assert data[0] == 0
    decoded = codec.decode(data)
    assert (decoded.schema, decoded.framing, decoded.record) == (name, "confluent", record)
    # the subject follows TopicNameStrategy
    assert ("md.test-value", schemas()[name].document) in FakeRegistry.subjects


def test_each_subject_is_set_to_backward_transitive_before_its_first_schema(registry_url: str) -> None:
    # a registry's global default may be NONE (Apicurio's is): never rely on it
    name, record = next(records())
    Codec(SchemaRegistry(registry_url)).encode(name, record, topic="md.compat")
    assert FakeRegistry.compatibility["md.compat-value"] == "BACKWARD_TRANSITIVE"


def test_reader_accepts_the_other_framing(registry_url: str) -> None:
    name, record = next(records())
    with_registry = Codec(SchemaRegistry(registry_url))
    without = Codec()
    assert with_registry.decode(without.encode(name, record)).record == record
    confluent = with_registry.encode(name, record, topic="x")
    # a fresh registry-backed reader that never wrote anything resolves the id through the registry
    assert Codec(SchemaRegistry(registry_url)).decode(confluent).record == record
    with pytest.raises(CodecError, match="SCHEMA_REGISTRY_URL is not set"):
        without.decode(confluent)


def test_unknown_schema_id_is_a_clear_error(registry_url: str) -> None:
    codec = Codec(SchemaRegistry(registry_url))
    with pytest.raises(CodecError, match="HTTP 404"):
        codec.decode(b"\x00\x00\x00\x99\x99" + b"\x02")


def test_unknown_fingerprint_and_truncation() -> None:
    name, record = next(records())
    data = Codec().encode(name, record)
    with pytest.raises(CodecError, match="unknown schema fingerprint"):
        Codec().decode(data[:2] + b"\x00" * 8 + data[10:])
    with pytest.raises(CodecError, match="truncated"):
        Codec().decode(data[: len(data) - 3])
    with pytest.raises(CodecError, match="truncated single-object header"):
        Codec().decode(data[:6])
    with pytest.raises(CodecError, match="trailing bytes"):
        Codec().decode(data + b"\x00")
    with pytest.raises(CodecError, match="unknown framing"):
        Codec().decode(b"{\"json\": 1}")
    with pytest.raises(CodecError, match="empty payload"):
        Codec().decode(b"")


def test_expect_checks_the_schema_name() -> None:
    name, record = next(records())
    data = Codec().encode(name, record)
    with pytest.raises(CodecError, match="expected a Tick record"):
        Codec().decode(data, expect="Tick" if name != "Tick" else "Bar")


def test_a_record_that_does_not_fit_names_the_schema() -> None:
    with pytest.raises(CodecError, match="Tick record does not fit"):
        Codec().encode("Tick", {"provider": "x"})
    with pytest.raises(CodecError, match="unknown schema 'Nope'"):
        Codec().encode("Nope", {})


def test_order_price_is_exact_decimal() -> None:
    named = {f"marketpipe.{n}": s.parsed for n, s in schemas().items()}
    cmd = sample(schemas()["OrderCommand"].parsed, named)
    cmd["price"] = Decimal("1572.125")
    assert Codec().decode(Codec().encode("OrderCommand", cmd)).record["price"] == Decimal("1572.125")


def test_every_record_carries_the_common_fields() -> None:
    derived = {"Tick", "Depth", "Quote", "Kline", "Bar"}
    for name in derived | {"DeadLetter"}:
        fields = {f["name"] for f in schemas()[name].parsed["fields"]}
        assert {"provider", "symbol", "event_time", "receive_time_ns", "parser_version"} <= fields, name
    for name in ("OrderCommand", "OrderEvent"):
        fields = {f["name"] for f in schemas()[name].parsed["fields"]}
        assert {"provider", "symbol", "event_time"} <= fields, name
