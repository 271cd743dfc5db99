"""The Avro contract: every schema round-trips in both framings, readers accept both,
and bad payloads fail with a clear CodecError."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from marketpipe.schemas.codec import SCHEMA_NAMES, Codec, CodecError, SchemaRegistry, schemas


def sample(schema: Any, named: dict[str, Any], salt: int = 1) -> Any:
    """A valid value for any (parsed) schema, varied by ``salt`` so fields are not all equal."""
    if isinstance(schema, str):
        prim = {"string": f"s{salt}", "long": 1_700_000_000_000 + salt, "int": salt, "double": salt + 0.25,
                "float": 0.5, "boolean": salt % 2 == 0, "bytes": bytes([salt % 256, 0xC3, 0x00]), "null": None}
        return prim[schema] if schema in prim else sample(named[schema], named, salt)
    if isinstance(schema, list):  # union: pick the non-null branch to exercise it
        return sample(next(s for s in schema if s != "null"), named, salt)
    kind = schema["type"]
    if schema.get("logicalType") == "decimal":
        return Decimal(f"{salt}.125")
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: sample(f["type"], named, salt + i) for i, f in enumerate(schema["fields"])}
    if kind == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][salt % len(schema["symbols"])]
    if kind == "array":
        return [sample(schema["items"], named, salt + i) for i in range(2)]
    if kind == "map":
        return {"k": sample(schema["values"], named, salt)}
    return sample(kind, named, salt)


def records() -> Iterator[tuple[str, dict[str, Any]]]:
    named = {f"marketpipe.{n}": s.parsed for n, s in schemas().items()}
    for name in SCHEMA_NAMES:
        if schemas()[name].parsed["type"] == "record":
            yield name, sample(schemas()[name].parsed, named)


class FakeRegistry(BaseHTTPRequestHandler):
    """The Schema Registry endpoints the codec uses, enough to exercise Confluent framing (the real
    registry's answers, compatibility checks included, are tested in tests/test_registry_real.py)."""

    store: dict[int, str] = {}
    subjects: dict[tuple[str, str], int] = {}
    compatibility: dict[str, str] = {}

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.compatibility[self.path.split("/")[2]] = body["compatibility"]
        self._answer(200, body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        subject = self.path.split("/")[2]
        key = (subject, body["schema"])
        if key not in self.subjects:
            new_id = len(self.store) + 1
            self.store[new_id] = body["schema"]
            self.subjects[key] = new_id
        self._answer(200, {"id": self.subjects[key]})

    def do_GET(self) -> None:
        schema_id = int(self.path.rsplit("/", 1)[1])
        if schema_id in self.store:
            self._answer(200, {"schema": self.store[schema_id]})
        else:
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


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
