"""One sample record per schema (``records``, ``sample``) and a fake Schema Registry (the module fixture
``registry_url``): shared by the codec, client, fuzzing and schema-evolution tests."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from marketpipe.schemas.codec import SCHEMA_NAMES, schemas


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
    registry's answers, compatibility checks included, are tested in tests/integration/test_registry_real.py)."""

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
