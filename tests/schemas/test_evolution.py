"""Schema evolution: every released schema version is kept, each change resolves in both
directions (Avro resolution rules), and the codec reads records of every kept version."""

from __future__ import annotations

import copy
import io
import json
import struct
from itertools import combinations
from pathlib import Path
from typing import Any

import fastavro
import pytest

from marketpipe.schemas import evolution
from marketpipe.schemas.codec import SCHEMA_NAMES, Codec, SchemaRegistry, _load, schemas
from tests.support.codec_samples import registry_url, sample  # noqa: F401  (registry_url is a fixture)

KEPT = evolution.kept_versions()
PAIRS = [(name, old, new) for name, versions in KEPT.items() for old, new in combinations(versions, 2)]


def test_every_current_schema_is_kept_as_its_newest_version() -> None:
    for name in SCHEMA_NAMES:
        assert name in KEPT, f"{name} has no kept version: run python -m marketpipe.schemas.evolution freeze"
        newest = KEPT[name][-1]
        assert json.loads(newest.document) == json.loads(schemas()[name].document), (
            f"{name} changed since {newest.path.name}: run python -m marketpipe.schemas.evolution freeze")


@pytest.mark.parametrize("name,old,new", PAIRS, ids=[f"{n}.v{o.version}-v{w.version}" for n, o, w in PAIRS])
def test_kept_versions_resolve_both_ways(name: str, old: evolution.KeptVersion, new: evolution.KeptVersion) -> None:
    assert evolution.compatibility_errors(old.schema, new.schema) == []


def _named(parsed: Any) -> dict[str, Any]:
    named: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("record", "enum") and "name" in node:
                named[node["name"]] = node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(parsed)
    return named


@pytest.mark.parametrize("name,old,new", PAIRS, ids=[f"{n}.v{o.version}-v{w.version}" for n, o, w in PAIRS])
def test_fastavro_agrees_on_kept_pairs(name: str, old: evolution.KeptVersion, new: evolution.KeptVersion) -> None:
    """The static check is cross-checked by really writing and reading both ways."""
    for writer_doc, reader_doc in ((old.schema, new.schema), (new.schema, old.schema)):
        writer = fastavro.parse_schema(writer_doc, named_schemas={})
        reader = fastavro.parse_schema(reader_doc, named_schemas={})
        record = sample(writer, _named(writer))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, record)
        buf.seek(0)
        read = fastavro.schemaless_reader(buf, writer, reader)
        common = {f["name"] for f in reader_doc["fields"]} & {f["name"] for f in writer_doc["fields"]}
        assert {k: read[k] for k in common} == {k: record[k] for k in common}


BAR = json.loads(schemas()["Bar"].document)


def _changed(edit: Any) -> Any:
    doc = copy.deepcopy(BAR)
    edit(doc["fields"])
    return doc


def _field(fields: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(f for f in fields if f["name"] == name)


@pytest.mark.parametrize("edit,direction", [
    (lambda f: f.append({"name": "venue", "type": "string"}), "new reader, old data"),
    (lambda f: f.remove(_field(f, "trade_count")), "old reader, new data"),
    (lambda f: _field(f, "symbol").update(type="long"), "new reader, old data"),
    (lambda f: _field(f, "volume").update(type="float"), "new reader, old data"),
    (lambda f: _field(f, "amount").update(type="double"), "new reader, old data"),
], ids=["field-without-default", "removed-required-field", "string-to-long", "double-narrowed", "union-to-plain"])
def test_breaking_changes_are_caught(edit: Any, direction: str) -> None:
    errors = evolution.compatibility_errors(BAR, _changed(edit))
    assert any(e.startswith(direction) for e in errors), errors


@pytest.mark.parametrize("edit", [
    lambda f: f.append({"name": "venue", "type": "string", "default": ""}),
    lambda f: f.append({"name": "note", "type": ["null", "string"], "default": None}),
    lambda f: _field(f, "revision").update(type="long"),  # int -> long: new reader promotes; old reader cannot
], ids=["field-with-default", "optional-field", "int-to-long"])
def test_compatible_changes_pass_where_avro_allows(edit: Any) -> None:
    new = _changed(edit)
    assert evolution.resolution_errors(BAR, new) == []


def test_int_to_long_breaks_old_readers() -> None:
    new = _changed(lambda f: _field(f, "revision").update(type="long"))
    assert evolution.resolution_errors(new, BAR) != []


def test_enum_symbols_removed_without_default_are_caught() -> None:
    side = json.loads(schemas()["OrderSide"].document)
    narrowed = dict(side, symbols=side["symbols"][:1])
    assert evolution.resolution_errors(side, narrowed) != []
    assert evolution.resolution_errors(narrowed, side) == []


def _bar_v1() -> Any:
    return next(v for v in KEPT["Bar"] if v.version == 1)


def _old_bar_record() -> dict[str, Any]:
    return {"provider": "jvquant", "symbol": "600519.SH", "interval_ms": 60_000, "window_start": 1_700_000_040_000,
            "window_end": 1_700_000_100_000, "event_time": 1_700_000_099_999, "receive_time_ns": 1,
            "open": 10.0, "high": 11.0, "low": 9.5, "close": 10.5, "volume": 300.0, "amount": 3150.0,
            "trade_count": 3, "revision": 0, "parser_version": "1"}


def test_codec_reads_records_written_with_the_previous_bar_schema() -> None:
    old = _load("Bar", _bar_v1().schema)
    assert old.fingerprint != schemas()["Bar"].fingerprint
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, _old_bar_record())
    decoded = Codec().decode(b"\xc3\x01" + old.fingerprint + body.getvalue(), expect="Bar")
    assert decoded.record == {**_old_bar_record(), "gap": False}


def test_new_bar_records_are_read_by_a_reader_holding_only_the_old_schema(registry_url: str) -> None:  # noqa: F811
    record = {**_old_bar_record(), "gap": True}
    old_reader = fastavro.parse_schema(_bar_v1().schema, named_schemas={})
    # Confluent framing: the old reader fetches the writer schema by id and resolves to what it knows
    registry = SchemaRegistry(registry_url)
    confluent = Codec(registry).encode("Bar", record, topic="md.bar")
    writer = SchemaRegistry(registry_url).writer_schema(struct.unpack(">I", confluent[1:5])[0])
    assert fastavro.schemaless_reader(io.BytesIO(confluent[5:]), writer, old_reader) == _old_bar_record()
    # single-object framing: the writer schema ships with the package history, so the old reader resolves too
    single = Codec().encode("Bar", record)
    kept_writer = next(v for v in KEPT["Bar"] if _load("Bar", v.schema).fingerprint == single[2:10])
    writer = fastavro.parse_schema(kept_writer.schema, named_schemas={})
    assert fastavro.schemaless_reader(io.BytesIO(single[10:]), writer, old_reader) == _old_bar_record()


def test_freeze_keeps_a_compatible_change_and_refuses_a_breaking_one(tmp_path: Path, monkeypatch: Any) -> None:
    for versions in KEPT.values():
        for v in versions:
            (tmp_path / v.path.name).write_text(v.document, encoding="utf-8")
    assert evolution.freeze(tmp_path) == []
    broken = _changed(lambda f: f.append({"name": "venue", "type": "string"}))
    (tmp_path / f"Bar.v{KEPT['Bar'][-1].version}.avsc").unlink()
    (tmp_path / "Bar.v1.avsc").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="venue"):
        evolution.freeze(tmp_path)
